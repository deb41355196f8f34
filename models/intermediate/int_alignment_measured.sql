{#- How close the new version is to its base, per side, on the ids present in
    both: cosine similarity of the raw and of the stabilized embedding to the
    base embedding, and the squared Procrustes residual ‖t' − b‖². -#}

{%- set sides = [
    ('users', ref('int_users_joined_to_base'), ref('int_users_stabilized')),
    ('items', ref('int_items_joined_to_base'), ref('int_items_stabilized')),
] -%}

with

{% for side, joined, stabilized in sides %}
{{ side }}_compared as (

    select
        {{ side }}_joined.embedding as raw_embedding,
        {{ side }}_stabilized.embedding as stabilized_embedding,
        {{ side }}_joined.base_embedding
    from {{ joined }} as {{ side }}_joined
    inner join {{ stabilized }} as {{ side }}_stabilized
        on {{ side }}_joined.id = {{ side }}_stabilized.id

),

{{ side }}_measured as (

    select
        {{ sql_string(side) }} as side,
        count(*) as aligned_ids,
        {{ exact_sum(cosine_similarity('raw_embedding', 'base_embedding')) }}
            as cosine_raw_sum,
        {{ exact_sum(cosine_similarity('stabilized_embedding', 'base_embedding')) }}
            as cosine_stabilized_sum,
        {{ exact_sum(squared_distance('stabilized_embedding', 'base_embedding')) }}
            as squared_residual_sum,
        {{ exact_sum(dot_product('base_embedding', 'base_embedding')) }}
            as base_squared_norm_sum
    from {{ side }}_compared

),
{% endfor %}

unioned as (

    select * from users_measured
    union all
    select * from items_measured

)

select * from unioned
