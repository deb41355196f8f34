{#
    The published version this retrain is aligned to, or none for a first version.

    - var `base_version` set: that version, which must have been published;
    - this version already published: the base recorded for it in
      `stabilization_runs`, so a rebuild reproduces it exactly (an error if that
      base has since been unpublished);
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

    {#- the recorded base, and whether it is still published (one query) -#}
    {%- set recorded = query_once(
        "select version_run.base_version, base_run.embedding_version is not null"
        ~ " from " ~ runs ~ " as version_run left join " ~ runs ~ " as base_run"
        ~ " on base_run.embedding_version = version_run.base_version"
        ~ " where version_run.embedding_version = " ~ sql_string(version)).rows -%}
    {%- if recorded | length > 0 -%}
        {%- set base_version, base_published = recorded[0][0], recorded[0][1] -%}
        {%- if base_version is not none and not base_published -%}
            {{ exceptions.raise_compiler_error(
                "version " ~ version ~ " is published aligned to version " ~ base_version
                ~ ", which is no longer published (no row for it in " ~ runs
                ~ "): a rebuild could not reproduce " ~ version ~ "'s coordinates. "
                ~ "Set var base_version to align it to a published version (its rows will "
                ~ "change), or leave " ~ version ~ " as it is") }}
        {%- endif -%}
        {{- return(base_version) -}}
    {%- endif -%}

    {%- set latest = query_once(
        "select embedding_version from " ~ runs
        ~ " order by published_at desc, embedding_version desc limit 1").rows -%}
    {{- return(latest[0][0] if latest | length > 0 else none) -}}
{% endmacro %}
