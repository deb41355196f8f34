{#
    One invocation at a time in the target schema: on-run-start takes the
    schema's build lock (a view, stabilization_build_lock, naming its holder),
    waiting up to var build_lock_wait_minutes while another dbt build, run,
    test or unpublish_versions holds it; on-run-end gives it back. A lock whose
    holder was killed (its process gone, on this machine) or is older than var
    build_lock_expires_after_minutes is taken over. Two builds at once would
    overwrite each other's intermediate tables and align to the same base.
#}
{% macro acquire_build_lock() %}
    {%- if execute -%}
        {%- do adapter.acquire_build_lock(
            target.schema,
            var('embedding_version', ''),
            var('build_lock_wait_minutes'),
            var('build_lock_expires_after_minutes')) -%}
    {%- endif -%}
{% endmacro %}

{% macro release_build_lock(any_holder=false) %}
    {%- if execute -%}
        {%- set released = adapter.release_build_lock(target.schema, not any_holder) -%}
        {%- if any_holder -%}
            {{ log(("released the build lock of schema " if released
                    else "no build lock held in schema ") ~ target.schema, info=true) }}
        {%- endif -%}
    {%- endif -%}
{% endmacro %}
