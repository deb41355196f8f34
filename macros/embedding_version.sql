{#
    The label of the retrain being stabilized (var `embedding_version`),
    validated: required, and safe as a partition value and a SQL literal.
#}
{% macro embedding_version() %}
    {%- set version = var('embedding_version', '') | string | trim -%}
    {%- if execute and version in ('', 'None') -%}
        {{ exceptions.raise_compiler_error(
            "var 'embedding_version' is required and must not be empty: "
            ~ "dbt build --vars '{embedding_version: \"2026-11-22\", ...}'") }}
    {%- endif -%}
    {%- if execute and not modules.re.match('^[A-Za-z0-9_.:+-]+$', version) -%}
        {{ exceptions.raise_compiler_error(
            "var 'embedding_version' = '" ~ version ~ "' may only contain letters, digits "
            ~ "and _ . : + - (it names a table partition)") }}
    {%- endif -%}
    {{- return(version) -}}
{% endmacro %}
