{# Euclidean norm of a numeric array, accumulated in double. #}
{% macro vector_norm(vector) %}
    sqrt({{ dot_product(vector, vector) }})
{%- endmacro %}
