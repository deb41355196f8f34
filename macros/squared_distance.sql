{# Squared Euclidean distance ‖a − b‖² of two numeric arrays, in double. #}
{% macro squared_distance(left, right) %}
    aggregate(
        zip_with({{ left }}, {{ right }}, (x, y) -> cast(x as double) - cast(y as double)),
        cast(0 as double),
        (total, difference) -> total + difference * difference
    )
{%- endmacro %}
