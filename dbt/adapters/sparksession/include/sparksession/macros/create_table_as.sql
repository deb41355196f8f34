{#
    dbt-spark's create_table_as, after removing the files a killed run may
    have left at the table's location with no table owning them (Spark would
    refuse to create the table: LOCATION_ALREADY_EXISTS). See the adapter's
    remove_orphaned_table_location. SQL and Python models both come here.
#}
{% macro sparksession__create_table_as(temporary, relation, compiled_code, language='sql') -%}
    {%- if execute and not temporary -%}
        {%- do adapter.remove_orphaned_table_location(relation) -%}
    {%- endif -%}
    {{- spark__create_table_as(temporary, relation, compiled_code, language) -}}
{%- endmacro %}
