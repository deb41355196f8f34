{# A Spark SQL string literal for `value` (backslash and quote escaped). #}
{% macro sql_string(value) %}
    {{- return("'" ~ (value | string | replace("\\", "\\\\") | replace("'", "\\'")) ~ "'") -}}
{% endmacro %}

{# A Spark SQL double for a number read back from a query (null stays null). #}
{% macro sql_double(value) %}
    {%- if value is none -%}{{ return("cast(null as double)") }}{%- endif -%}
    {{- return("cast('" ~ value ~ "' as double)") -}}
{% endmacro %}
