{#
    The published version this retrain is aligned to, or none for a first version.

    - var `base_version` set: that version, which must have been published;
    - this version already published: the base recorded for it in
      `stabilization_runs`, so a rebuild reproduces it exactly (an error if that
      base has since been unpublished);
    - otherwise: the most recently published version (by first publication).

    Whichever it is, a base whose rebuild began and has not finished is refused
    (its published tables may hold rows of different runs).

    Resolved once per build (query_once): every node of a build sees the same
    base version, and the metastore is asked once, not by every node.
#}
{% macro resolve_base_version() %}
    {%- if not execute -%}{{ return(none) }}{%- endif -%}
    {%- set version = embedding_version() -%}
    {%- set requested = var('base_version', '') | string | trim -%}
    {%- set runs = adapter.get_relation(
        database=none, schema=target.schema, identifier='stabilization_runs') -%}
    {%- if requested == version -%}
        {{ exceptions.raise_compiler_error(
            "var 'base_version' = '" ~ requested ~ "' is the version being built; "
            ~ "a version cannot be aligned to itself") }}
    {%- endif -%}

    {#- every published version, its base and whether readers may read it, latest
        first, in one read (one row per version): each read of a Delta or Iceberg
        table pays for its log or metadata, and this is the build's first -#}
    {%- set published = published_versions_read() -%}
    {%- set base_of, readable = {}, {} -%}
    {%- for row in published -%}
        {%- do base_of.update({row[0] | string: row[1]}) -%}
        {%- do readable.update({row[0] | string: row[2]}) -%}
    {%- endfor -%}

    {%- if requested not in ('', 'None') -%}
        {%- if requested not in base_of -%}
            {{ exceptions.raise_compiler_error(
                "var 'base_version' = '" ~ requested ~ "' was never published: "
                ~ "no row for it in " ~ target.schema ~ ".stabilization_runs") }}
        {%- endif -%}
        {#- the requested base's own bases must not lead back to this version -#}
        {%- set through = [requested] -%}
        {%- for _ in base_of if base_of.get(through[-1]) is not none
                and (through[-1] | string) != version -%}
            {%- do through.append(base_of[through[-1]] | string) -%}
        {%- endfor -%}
        {%- if version in through -%}
            {{ exceptions.raise_compiler_error(
                "var 'base_version' = '" ~ requested ~ "' is published aligned to version "
                ~ version ~ " itself (" ~ (through | join(' → ')) ~ "): aligning " ~ version
                ~ " to it would make the chain of versions a cycle. Leave base_version unset "
                ~ "to keep " ~ version ~ "'s recorded base") }}
        {%- endif -%}
        {{- return(base_version_readable(requested, readable)) -}}
    {%- endif -%}

    {#- a rebuild: the recorded base, which must still be published -#}
    {%- if version in base_of -%}
        {%- set base_version = base_of[version] -%}
        {%- if base_version is not none and (base_version | string) not in base_of -%}
            {{ exceptions.raise_compiler_error(
                "version " ~ version ~ " is published aligned to version " ~ base_version
                ~ ", which is no longer published (no row for it in " ~ runs
                ~ "): a rebuild could not reproduce " ~ version ~ "'s coordinates. "
                ~ "Set var base_version to align it to a published version (its rows will "
                ~ "change), or leave " ~ version ~ " as it is") }}
        {%- endif -%}
        {{- return(base_version if base_version is none
                   else base_version_readable(base_version | string, readable)) -}}
    {%- endif -%}

    {{- return(base_version_readable(published[0][0] | string, readable)
               if published | length > 0 else none) -}}
{% endmacro %}


{# base_version, unless a rebuild of it was interrupted: its tables may then hold
   rows of different runs, and a version aligned to them would be aligned to neither. #}
{% macro base_version_readable(base_version, readable) %}
    {%- if not readable[base_version] -%}
        {{ exceptions.raise_compiler_error(
            "version " ~ base_version ~ " is the base version, but a rebuild of it began and "
            ~ "has not finished: its published tables may hold rows of different runs, and "
            ~ "readers do not see it (published_versions). Finish it first: `dbt build --vars "
            ~ "'{embedding_version: " ~ base_version ~ ", …}'` with its inputs. "
            ~ "See docs/how-it-works.md#what-readers-see-and-when") }}
    {%- endif -%}
    {{- return(base_version) -}}
{% endmacro %}


{#
    At publication (stabilization_runs' pre-hook, just before a version's row is
    written): a new version aligned by default to the latest published version
    must still be aligned to the latest. Another run may have published a
    version, or unpublished this one's base, since this build resolved it (an
    orchestrator's per-model runs; two builds at once); publishing then would
    fork the chain, or leave it without this version's base. Read afresh, not
    once per build: this is the moment that counts. A rebuild (its recorded
    base) and var base_version (a base asked for) are not checked.
#}
{% macro require_latest_base() %}
    {%- if not execute or var('base_version', '') | string | trim not in ('', 'None') -%}
        {{ return('') }}
    {%- endif -%}
    {%- set runs = adapter.get_relation(
        database=none, schema=target.schema, identifier='stabilization_runs') -%}
    {%- if runs is none -%}{{ return('') }}{%- endif -%}
    {%- set version = embedding_version() -%}
    {%- set resolved = run_query(
        "select base_version from " ~ ref('int_versions_resolved')).rows -%}
    {%- set base = resolved[0][0] if resolved | length > 0 else none -%}
    {%- set base = base | string if base is not none else none -%}
    {#- latest first, as resolve_base_version orders them -#}
    {%- set published = run_query(
        "select embedding_version from " ~ runs
        ~ " order by published_at desc, embedding_version desc").columns[0].values() | map('string') | list -%}
    {%- if version in published -%}{{ return('') }}{%- endif -%}
    {%- set latest = published[0] if published | length > 0 else none -%}
    {%- if base == latest -%}{{ return('') }}{%- endif -%}
    {%- set base_gone = base is not none and base not in published -%}
    {%- set aligned = ("aligned " ~ version ~ " to version " ~ base) if base is not none
        else ("built " ~ version ~ " as a first version (no base)") -%}
    {%- set since = base ~ " has been unpublished since" if base_gone
        else latest ~ " has been published since" -%}
    {{ exceptions.raise_compiler_error(
        "This build " ~ aligned ~ ", but version " ~ since ~ " (another run): publishing "
        ~ version ~ " would fork the chain of versions. Nothing of " ~ version ~ " is visible "
        ~ "to readers. Build it again from the start (dbt build with its inputs) to align it "
        ~ "to the latest published version"
        ~ ("" if base is none or base_gone
           else ", or set var base_version: " ~ base ~ " to keep " ~ base ~ " as its base")
        ~ ".") }}
{% endmacro %}
