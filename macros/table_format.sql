{#
    The format of the four published tables (var `table_format`), validated:
    hive (Parquet files in a Hive-style partitioned table; the default),
    iceberg or delta (each needs its session catalog: docs/configuration.md).
#}
{% macro table_format() %}
    {%- set chosen = var('table_format', 'hive') | string | trim | lower -%}
    {%- if chosen not in ('hive', 'iceberg', 'delta') -%}
        {{ exceptions.raise_compiler_error(
            "var 'table_format' = '" ~ chosen ~ "': expected hive, iceberg or delta") }}
    {%- endif -%}
    {{- return(chosen) -}}
{% endmacro %}


{# The file_format config of a published table: parquet for hive, else the format. #}
{% macro published_file_format() %}
    {{- return('parquet' if table_format() == 'hive' else table_format()) -}}
{% endmacro %}
