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
    {%- for node in graph.nodes.values()
          if node.resource_type == 'model' and node.package_name == 'embedding_stabilization'
             and node.name == 'stabilization_runs' -%}
        {{- return(api.Relation.create(
            database=node.database, schema=node.schema, identifier='stabilization_audits')) -}}
    {%- endfor -%}
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
    {%- set ledger = audit_ledger() -%}
    {%- if not adapter.table_exists(ledger) -%}
        {%- do run_query("create schema if not exists " ~ ledger.schema) -%}
        {%- do run_query(
            "create table if not exists " ~ ledger ~ " (node string, kind string, "
            ~ "embedding_version string, status string, failures bigint, invocation_id string, "
            ~ "command string, recorded_at timestamp) using parquet") -%}
    {%- endif -%}
    {%- do run_query(
        "insert into " ~ ledger ~ " select *, current_timestamp() from values "
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
    {%- if not execute -%}{{ return('') }}{%- endif -%}
    {%- set nodes = {} -%}
    {%- for node in graph.nodes.values()
          if node.package_name == model.package_name and node.resource_type in ('model', 'test') -%}
        {%- do nodes.update({node.unique_id: {
            'resource_type': node.resource_type,
            'parents': node.depends_on.nodes,
            'severity': node.config.severity}}) -%}
    {%- endfor -%}
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
