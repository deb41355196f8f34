{#
    Unpublish versions: a bad retrain taken back, or old versions let go.

        dbt run-operation unpublish_versions --args '{versions: ["2026-11-22"]}'
        dbt run-operation unpublish_versions --args '{keep_latest: 90}'

    `keep_latest` keeps the most recently published versions (by first
    publication, the order the base-version default follows) and unpublishes
    the others. For each version, in this order: its row leaves
    `stabilization_runs` (readers, who read the versions listed there, stop
    seeing it; the next build aligns to the latest version still listed), then
    its partitions of the other published tables go, then the folder of its
    staged rows. On Iceberg and Delta each removal is a delete commit: time
    travel still reads the version in earlier snapshots. Killed half-way, a version is already unpublished for readers;
    the same command with its name finishes the job. A name in none of the
    published tables is an error (nothing is dropped).
#}
{% macro unpublish_versions(versions=none, keep_latest=none) %}
    {%- if not execute -%}{{ return([]) }}{%- endif -%}
    {%- set runs = ref('stabilization_runs') -%}
    {%- set staged = [ref('stabilized_user_embeddings'), ref('stabilized_item_embeddings')] -%}
    {%- set partitioned = [ref('stabilization_transforms')] + staged -%}
    {%- if (versions is none) == (keep_latest is none) -%}
        {{ exceptions.raise_compiler_error(
            "unpublish_versions: give either versions (a list of names) or keep_latest "
            ~ "(how many of the latest versions to keep), not both or neither") }}
    {%- endif -%}
    {%- if not adapter.table_exists(runs) -%}
        {{ exceptions.raise_compiler_error(
            "unpublish_versions: nothing is published in schema " ~ runs.schema
            ~ " (no table " ~ runs ~ ")") }}
    {%- endif -%}
    {#- one invocation at a time in the schema: not while a build publishes -#}
    {%- do acquire_build_lock() -%}
    {%- set published = run_query(
        "select embedding_version from " ~ runs
        ~ " order by published_at desc, embedding_version desc").columns[0].values() | list -%}

    {%- if keep_latest is not none -%}
        {%- if keep_latest is not integer or keep_latest < 1 -%}
            {%- do release_build_lock() -%}
            {{ exceptions.raise_compiler_error(
                "unpublish_versions: keep_latest must be a whole number ≥ 1, not "
                ~ keep_latest ~ " (to unpublish every version, name them in versions)") }}
        {%- endif -%}
        {%- set chosen = published[keep_latest:] -%}
    {%- else -%}
        {%- if versions is string or versions | length == 0 -%}
            {%- do release_build_lock() -%}
            {{ exceptions.raise_compiler_error(
                "unpublish_versions: versions must be a non-empty list of names, e.g. "
                ~ "'{versions: [\"2026-11-22\"]}'; got " ~ versions) }}
        {%- endif -%}
        {%- set chosen = versions | map('string') | list -%}
        {%- for version in chosen if version not in published -%}
            {%- set leftovers = [] -%}
            {%- for table in partitioned if adapter.table_exists(table)
                    and holds_version(table, version) -%}
                {%- do leftovers.append(table) -%}
            {%- endfor -%}
            {%- if leftovers | length == 0 -%}
                {%- do release_build_lock() -%}
                {{ exceptions.raise_compiler_error(
                    "unpublish_versions: version '" ~ version ~ "' is not published in schema "
                    ~ runs.schema ~ " (stabilization_runs lists " ~ (published | join(', ') or 'none')
                    ~ "); nothing was unpublished") }}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}

    {%- for version in chosen -%}
        {%- do drop_version(runs, version) -%}
        {%- for table in partitioned if adapter.table_exists(table) -%}
            {%- do drop_version(table, version) -%}
        {%- endfor -%}
        {%- for table in staged if adapter.table_exists(table) -%}
            {%- do adapter.remove_version_files(table, version, adapter.table_provider(table)) -%}
        {%- endfor -%}
        {{ log("unpublished version " ~ version, info=true) }}
    {%- endfor -%}
    {%- if chosen | length == 0 -%}
        {{ log("nothing to unpublish: " ~ published | length ~ " versions published, keep_latest "
               ~ keep_latest, info=true) }}
    {%- endif -%}
    {%- do release_build_lock() -%}
    {{ return(chosen) }}
{% endmacro %}


{# One version's rows leave a published table: a partition dropped (a Hive
   table), a delete commit (Iceberg, Delta: earlier snapshots still hold them).
   Told by the table itself, whatever var table_format says. #}
{% macro drop_version(table, version) %}
    {%- if adapter.table_provider(table) not in ('iceberg', 'delta') -%}
        {%- do run_query("alter table " ~ table ~ " drop if exists " ~ version_partition(version)) -%}
    {%- else -%}
        {%- do run_query(
            "delete from " ~ table ~ " where embedding_version = " ~ sql_string(version)) -%}
    {%- endif -%}
{% endmacro %}


{# Whether a published table holds rows of a version. #}
{% macro holds_version(table, version) %}
    {%- if adapter.table_provider(table) not in ('iceberg', 'delta') -%}
        {{- return(adapter.partition_location(table, version_partition(version)) is not none) -}}
    {%- endif -%}
    {%- set found = run_query("select 1 from " ~ table ~ " where embedding_version = "
                              ~ sql_string(version) ~ " limit 1") -%}
    {{- return(found.rows | length > 0) -}}
{% endmacro %}


{# The partition spec of one version: partition (embedding_version = '…'). #}
{% macro version_partition(version) %}
    {{- return("partition (embedding_version = " ~ sql_string(version) ~ ")") -}}
{% endmacro %}
