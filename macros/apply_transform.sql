{#
    Stabilize an embedding in SQL with a published transform:
    result[j] = Σ_i embedding[i] · transform[i][j]   (row vector times matrix).
    Use it for embeddings computed after publication (a new user at serving time):

        select {{ apply_transform('u.embedding', 't.transform') }} as embedding
        from new_users u
        cross join stabilization_transforms t
        where t.embedding_version = '2026-11-22' and t.side = 'users'
#}
{% macro apply_transform(embedding, transform) %}
    transform(
        sequence(0, size({{ transform }}) - 1),
        j -> cast(aggregate(
            sequence(0, size({{ embedding }}) - 1),
            cast(0 as double),
            (total, i) -> total + cast({{ embedding }}[i] as double) * {{ transform }}[i][j]
        ) as float)
    )
{%- endmacro %}
