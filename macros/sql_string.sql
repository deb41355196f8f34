{# A Spark SQL string literal for `value` (backslash and quote escaped). #}
{% macro sql_string(value) %}
    {{- return("'" ~ (value | string | replace("\\", "\\\\") | replace("'", "\\'")) ~ "'") -}}
{% endmacro %}
