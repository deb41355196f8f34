{# Dot product of two numeric arrays, accumulated in double. #}
{% macro dot_product(left, right) %}
    aggregate(
        zip_with({{ left }}, {{ right }}, (x, y) -> cast(x as double) * cast(y as double)),
        cast(0 as double),
        (total, product) -> total + product
    )
{%- endmacro %}
