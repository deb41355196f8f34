{#
    The published version this retrain is aligned to, or none for a first version.

    - var `base_version` set: that version, which must have been published;
    - this version already published: the base recorded for it in
      `stabilization_runs`, so a rebuild reproduces it exactly;
    - otherwise: the most recently published version (by first publication).

    Resolved once per build (query_once): every node of a build sees the same
    base version, and the metastore is asked once, not by every node.
#}
{% macro resolve_base_version() %}
    {%- if not execute -%}{{ return(none) }}{%- endif -%}
    {%- set version = embedding_version() -%}
    {%- set requested = var('base_version', '') | string | trim -%}
    {%- set runs = adapter.get_relation(
        database=none, schema=target.schema, identifier='stabilization_runs') -%}

    {%- if requested not in ('', 'None') -%}
        {%- if requested == version -%}
            {{ exceptions.raise_compiler_error(
                "var 'base_version' = '" ~ requested ~ "' is the version being built; "
                ~ "a version cannot be aligned to itself") }}
        {%- endif -%}
        {%- set found = [] if runs is none else query_once(
            "select embedding_version from " ~ runs
            ~ " where embedding_version = " ~ sql_string(requested)).rows -%}
        {%- if found | length == 0 -%}
            {{ exceptions.raise_compiler_error(
                "var 'base_version' = '" ~ requested ~ "' was never published: "
                ~ "no row for it in " ~ target.schema ~ ".stabilization_runs") }}
        {%- endif -%}
        {{- return(requested) -}}
    {%- endif -%}

    {%- if runs is none -%}{{ return(none) }}{%- endif -%}

    {%- set recorded = query_once(
        "select base_version from " ~ runs
        ~ " where embedding_version = " ~ sql_string(version)).rows -%}
    {%- if recorded | length > 0 -%}
        {{- return(recorded[0][0]) -}}
    {%- endif -%}

    {%- set latest = query_once(
        "select embedding_version from " ~ runs
        ~ " order by published_at desc, embedding_version desc limit 1").rows -%}
    {{- return(latest[0][0] if latest | length > 0 else none) -}}
{% endmacro %}
