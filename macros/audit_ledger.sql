{#
    The audit ledger: what each dbt invocation built and which audits passed,
    for which version (dbt/adapters/sparksession/audits.py). A publishing model
    (the marts' pre-hook, require_audits_passed) reads it when its own
    invocation did not run every audit it depends on: dbt run, dbt run then
    dbt test, one process per model as orchestrators run it, a mart rebuilt
    alone. A whole dbt build never reads it.
#}

{# The ledger: stabilization_audits, in the published tables' schema. #}
{% macro audit_ledger() %}
    {%- if not execute -%}
        {#- parsing: the graph is not built yet -#}
        {{- return(api.Relation.create(schema=target.schema, identifier='stabilization_audits')) -}}
    {%- endif -%}
    {%- set runs = runs_model() -%}
    {{- return(api.Relation.create(
        database=runs.database, schema=runs.schema, identifier='stabilization_audits')) -}}
{% endmacro %}


{# The unique id of stabilization_runs, whose row publishes a version. #}
{% macro runs_model_id() %}
    {{- return('model.embedding_stabilization.stabilization_runs') -}}
{% endmacro %}


{# The node of stabilization_runs. #}
{% macro runs_model() %}
    {%- for node in graph.nodes.values()
          if node.resource_type == 'model' and node.package_name == 'embedding_stabilization'
             and node.name == 'stabilization_runs' -%}
        {{- return(node) -}}
    {%- endfor -%}
{% endmacro %}


{# Create the ledger if it does not exist yet (a first build, a reader view's). #}
{% macro ensure_audit_ledger() %}
    {%- set ledger = audit_ledger() -%}
    {%- if execute and not adapter.table_exists(ledger) -%}
        {%- do run_query("create schema if not exists " ~ ledger.schema) -%}
        {%- do run_query(
            "create table if not exists " ~ ledger ~ " (node string, kind string, "
            ~ "embedding_version string, status string, failures bigint, invocation_id string, "
            ~ "command string, recorded_at timestamp) using parquet") -%}
    {%- endif -%}
    {{- return('') -}}
{% endmacro %}


{#
    on-run-end: append this invocation's results for the project's nodes
    (models built or failed; tests passed, warned, failed or errored; skipped
    nodes changed nothing and are left out), with the version they were for.
#}
{% macro record_audits(results) %}
    {%- set version = var('embedding_version', '') | string | trim -%}
    {#- compile, docs generate, … run this hook too; --empty builds no rows: nothing to record -#}
    {%- if not execute or version in ('', 'None') or flags.WHICH not in ('build', 'run', 'test')
           or flags.EMPTY -%}
        {{ return('') }}
    {%- endif -%}
    {%- set rows = [] -%}
    {%- for result in results
          if result.node.package_name == 'embedding_stabilization' -%}
        {%- set status = result.status | string | lower -%}
        {%- set kind = result.node.resource_type -%}
        {%- if (kind == 'model' and status in ('success', 'error'))
               or (kind == 'test' and status in ('pass', 'warn', 'fail', 'error')) -%}
            {%- do rows.append("(" ~ sql_string(result.node.unique_id) ~ ", " ~ sql_string(kind)
                ~ ", " ~ sql_string(version) ~ ", " ~ sql_string(status) ~ ", "
                ~ (result.failures if result.failures is number else "null") ~ ", "
                ~ sql_string(invocation_id) ~ ", " ~ sql_string(flags.WHICH) ~ ")") -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if not rows -%}{{ return('') }}{%- endif -%}
    {%- do ensure_audit_ledger() -%}
    {%- do run_query(
        "insert into " ~ audit_ledger() ~ " select *, current_timestamp() from values "
        ~ rows | join(", ")) -%}
    {{- return('') -}}
{% endmacro %}


{#
    pre-hook of the published tables: refuse, before anything is written,
    unless every model upstream was last built for this version and every
    error-severity test of those models passed after their last build (in
    this invocation, or as the ledger records). The message lists what does
    not hold and how to run it.
#}
{% macro require_audits_passed() %}
    {%- if not execute or model.config.materialized == 'view' -%}{{ return('') }}{%- endif -%}
    {%- set nodes = project_dag() -%}
    {#- the audit relations whose rows this model publishes (config publish_to) -#}
    {%- set staged = {} -%}
    {%- for node in graph.nodes.values()
          if node.package_name == model.package_name and node.resource_type == 'model'
             and node.config.get('publish_to') == model.alias -%}
        {%- do staged.update({node.unique_id: api.Relation.create(
            database=node.database, schema=node.schema, identifier=node.alias)}) -%}
    {%- endfor -%}
    {%- set version = embedding_version() -%}
    {%- set problems = adapter.unaudited(
        model.unique_id, nodes, version, flags.WHICH, selected_resources, audit_ledger(),
        staged) -%}
    {%- if problems -%}
        {{ exceptions.raise_compiler_error(
            model.name ~ ": version " ~ version ~ " not published, nothing changed: its audits "
            ~ "have not all passed on the rows it would publish:\n  - "
            ~ problems | join("\n  - ")
            ~ "\nA FAILED audit needs new input; the others need to run: `dbt build --select +"
            ~ model.name ~ "` runs each audit before what it guards (or `dbt test` of the models "
            ~ "named, then this model again). See docs/how-it-works.md#what-readers-see-and-when") }}
    {%- endif -%}
    {{- return('') -}}
{% endmacro %}


{#
    The version whose rows an audit relation of write-audit-publish holds
    (labelled when they were staged), or none: a test comparing it with this
    run's staged inputs compares only when both hold this version's rows.
#}
{% macro staged_version(relation) %}
    {{- return(adapter.dispatch('staged_version')(relation)) -}}
{% endmacro %}

{% macro default__staged_version(relation) %}
    {{- return(none) -}}
{% endmacro %}

{% macro sparksession__staged_version(relation) %}
    {{- return(adapter.staged_version(relation)) -}}
{% endmacro %}


{# The project's models and tests as the adapter's audit rule reads them. #}
{% macro project_dag() %}
    {%- set nodes = {} -%}
    {%- for node in graph.nodes.values()
          if node.package_name == model.package_name and node.resource_type in ('model', 'test') -%}
        {%- do nodes.update({node.unique_id: {
            'resource_type': node.resource_type,
            'parents': node.depends_on.nodes,
            'severity': node.config.severity,
            'publishes': node.resource_type == 'model' and node.fqn[1] == 'marts'
                and node.config.materialized != 'view'}}) -%}
    {%- endfor -%}
    {{- return(nodes) -}}
{% endmacro %}


{#
    pre-hook of the published tables, after require_audits_passed: before a
    published table of an already published version changes, the ledger
    records that the version's publication has begun (kind 'publication',
    once per invocation). Until stabilization_runs is next built for it,
    after every published table holds this run's rows, the reader views
    (published_versions, …) leave the version out: a rebuild killed between
    two tables never shows readers users and items of different runs.
    Nothing is recorded for a new version (it has no row in
    stabilization_runs yet) nor when this table's publication changes
    nothing (its parents were not rebuilt since it last published).
#}
{% macro begin_publication() %}
    {%- if not execute or model.config.materialized == 'view'
           or model.unique_id == runs_model_id() -%}
        {{ return('') }}
    {%- endif -%}
    {%- set version = embedding_version() -%}
    {%- set published = [] -%}
    {%- for row in published_versions_read() -%}
        {%- do published.append(row[0] | string) -%}
    {%- endfor -%}
    {%- if version not in published -%}{{ return('') }}{%- endif -%}
    {%- if adapter.publication_changes(model.unique_id, project_dag(), version, flags.WHICH,
                                       selected_resources, audit_ledger()) -%}
        {%- do ensure_audit_ledger() -%}
        {#- once per invocation, whichever published table gets here first -#}
        {%- do query_once(
            "insert into " ~ audit_ledger() ~ " select *, current_timestamp() from values ("
            ~ sql_string(runs_model_id()) ~ ", 'publication', " ~ sql_string(version)
            ~ ", 'begun', null, " ~ sql_string(invocation_id) ~ ", " ~ sql_string(flags.WHICH)
            ~ ")") -%}
    {%- endif -%}
    {{- return('') -}}
{% endmacro %}


{#
    The published versions (rows of stabilization_runs), latest first, with
    whether readers may read each: not while a publication that began for it
    (begin_publication) has not been followed by a successful build of
    stabilization_runs for it. Read once per invocation.
#}
{% macro published_versions_read() %}
    {%- set runs = adapter.get_relation(
        database=none, schema=target.schema, identifier='stabilization_runs') -%}
    {%- if runs is none -%}{{ return([]) }}{%- endif -%}
    {%- set ledger = audit_ledger() -%}
    {%- if adapter.get_relation(
            database=ledger.database, schema=ledger.schema, identifier=ledger.identifier) is none -%}
        {{- return(query_once(
            "select runs.embedding_version, runs.base_version, true as readable from " ~ runs
            ~ " as runs order by runs.published_at desc, runs.embedding_version desc").rows) -}}
    {%- endif -%}
    {{- return(query_once(
        "select runs.embedding_version, runs.base_version, "
        ~ version_readable('publications') ~ " as readable from " ~ runs ~ " as runs "
        ~ "left join (" ~ publications(ledger) ~ ") as publications "
        ~ "on runs.embedding_version = publications.embedding_version "
        ~ "order by runs.published_at desc, runs.embedding_version desc").rows) -}}
{% endmacro %}


{# Per version: when a publication last began, when stabilization_runs was last built for it. #}
{% macro publications(ledger) %}
    {%- set runs_id = sql_string(runs_model_id()) -%}
    select
        embedding_version,
        max(if(kind = 'publication', recorded_at, null)) as last_begun_at,
        max(if(kind = 'model' and status = 'success', recorded_at, null)) as last_published_at
    from {{ ledger }}
    where node = {{ runs_id }} and kind in ('publication', 'model')
    group by embedding_version
{%- endmacro %}


{# Whether a version may be read, from its row of publications(). #}
{% macro version_readable(publications) -%}
    ({{ publications }}.last_begun_at is null
        or {{ publications }}.last_published_at > {{ publications }}.last_begun_at)
{%- endmacro %}
