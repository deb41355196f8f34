{# Cosine similarity of two numeric arrays; 0 when either is the zero vector. #}
{% macro cosine_similarity(left, right) %}
    coalesce(
        {{ dot_product(left, right) }}
        / nullif({{ vector_norm(left) }} * {{ vector_norm(right) }}, 0),
        cast(0 as double)
    )
{%- endmacro %}
