{# The sides the Procrustes rotation is fitted on (var `align_on`). #}
{% macro aligned_sides() %}
    {%- set align_on = var('align_on', 'items') | string | trim -%}
    {%- set sides = {'items': ['items'], 'users': ['users'], 'both': ['users', 'items']} -%}
    {%- if align_on not in sides -%}
        {{ exceptions.raise_compiler_error(
            "var 'align_on' = '" ~ align_on ~ "' must be one of: items, users, both") }}
    {%- endif -%}
    {{- return(sides[align_on]) -}}
{% endmacro %}
