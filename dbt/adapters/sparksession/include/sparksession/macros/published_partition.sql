{#
    Write once, publish by metadata (see dbt/adapters/sparksession/publication.py).

    A model materialized as published_partition is a partitioned table that
    receives one partition per run, `partition_value` of column `partition_by`
    (configs). Its rows are not written by this node: its parent configured
    with `publish_to: <this model>` wrote them once, into a folder inside this
    table, and they were audited there by that parent's tests. This node
    points the partition at that folder (add partition … location, or set
    location on a rebuild): one metastore operation, atomic for readers. Then
    the files no partition points at any more are removed (the partition's
    former folder on a rebuild, folders of runs killed before publishing).

    The table's file_format config says how it publishes: a plain format
    (parquet) as above; iceberg: the parent wrote the rows onto a branch of
    the table and `main` is fast-forwarded to it (a metadata commit); delta:
    the staged files are committed to the table in one transaction that
    replaces the version's rows (no row rewritten; copied by `insert … replace
    where` where Delta's transaction API is out of reach, as on Spark Connect).
    Either way the audit relation then reads the published rows and the staged
    rows no table version needs (branches, folders) are removed.

    The model's SQL selects the published columns from that parent; it is not
    run, but it must describe this table: its columns and types are checked
    against the table's before publishing.
#}
{% materialization published_partition, adapter='sparksession' %}
    {%- set column = config.require('partition_by') -%}
    {%- set column = column if column is string else column[0] -%}
    {%- set value = config.require('partition_value') | string -%}
    {%- set target_relation = this.incorporate(type='table') -%}
    {%- set staged = staging_parent_of(model) -%}

    {{ run_hooks(pre_hooks) }}

    {%- if not adapter.table_exists(target_relation) -%}
        {{ exceptions.raise_compiler_error(
            this ~ " does not exist: " ~ staged ~ " (publish_to: " ~ this.identifier
            ~ ") creates it when it stages a first version; build it first") }}
    {%- endif -%}
    {#- utf8_binary is the default collation: a table created on Spark Connect names it -#}
    {%- set selected, published = {}, {} -%}
    {%- for name, type in adapter.query_column_types(
            sql, "the SQL of " ~ this ~ " (published_partition)").items() -%}
        {%- do selected.update({name: type | replace(' collate utf8_binary', '')}) -%}
    {%- endfor -%}
    {%- for col in adapter.get_columns_in_relation(target_relation) -%}
        {%- do published.update({col.name | lower:
            col.data_type | lower | replace(' collate utf8_binary', '')}) -%}
    {%- endfor -%}
    {%- if selected != published -%}
        {{ exceptions.raise_compiler_error(
            "the SQL of " ~ this ~ " selects " ~ selected ~ " but the table has " ~ published
            ~ ": a published_partition model selects exactly the table's columns") }}
    {%- endif -%}

    {%- set file_format = config.get('file_format', 'parquet') -%}
    {%- set literal = "'" ~ (value | replace("\\", "\\\\") | replace("'", "\\'")) ~ "'" -%}
    {%- if file_format == 'iceberg' -%}
        {#- main fast-forwarded to the branch the audited rows were written on (or, when
            main moved meanwhile, that branch's commit cherry-picked): a metadata commit -#}
        {%- do store_result('main', response=adapter.publish_branch(target_relation, staged, value)) -%}
        {%- do adapter.after_publishing(target_relation, staged, column, value, file_format) -%}
    {%- elif file_format == 'delta' -%}
        {#- the audited files committed in one transaction that replaces the version's rows -#}
        {%- set committed = adapter.commit_staged_files(target_relation, staged, column, value) -%}
        {%- if committed is not none -%}
            {%- do store_result('main', response=committed) -%}
        {%- else -%}
            {% call statement('main') -%}
                insert into {{ target_relation }}
                replace where {{ column }} = {{ literal }}
                select {{ published.keys() | join(', ') }}
                from (
                    {{ sql }}
                ) as audited
            {%- endcall %}
            {%- do adapter.after_publishing(target_relation, staged, column, value, file_format) -%}
        {%- endif -%}
    {%- else -%}
        {%- set location = adapter.table_location(staged) -%}
        {%- set partition = "partition (" ~ column ~ " = " ~ literal ~ ")" -%}
        {%- set replaced = adapter.partition_location(target_relation, partition) -%}

        {% call statement('main') -%}
            {%- if replaced is none -%}
            alter table {{ target_relation }} add {{ partition }} location '{{ location }}'
            {%- else -%}
            alter table {{ target_relation }} {{ partition }} set location '{{ location }}'
            {%- endif -%}
        {%- endcall %}
        {%- do adapter.remove_unpublished_files(target_relation, value, location, replaced, column) -%}
    {%- endif -%}

    {{ run_hooks(post_hooks) }}

    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}


{# The parent model that stages this model's rows (config publish_to), as a relation. #}
{% macro staging_parent_of(model) %}
    {%- set parents = [] -%}
    {%- for node_id in model.depends_on.nodes -%}
        {%- set node = graph.nodes.get(node_id) -%}
        {%- if node and node.config.get('publish_to') == model.alias -%}
            {%- do parents.append(api.Relation.create(
                database=node.database, schema=node.schema, identifier=node.alias)) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if parents | length != 1 -%}
        {{ exceptions.raise_compiler_error(
            model.alias ~ " (published_partition) must select from exactly one model configured "
            ~ "with publish_to: " ~ model.alias ~ "; found " ~ parents | length) }}
    {%- endif -%}
    {{- return(parents[0]) -}}
{% endmacro %}


{# The published_partition model a staging model publishes to (its config
   publish_to): (relation, partition column, partition value, file format). #}
{% macro published_partition_target(model) %}
    {%- set name = model.config.get('publish_to') -%}
    {%- for node in graph.nodes.values() -%}
        {%- if node.resource_type == 'model' and node.alias == name
               and node.package_name == model.package_name -%}
            {%- set column = node.config.get('partition_by') -%}
            {{- return((
                api.Relation.create(database=node.database, schema=node.schema, identifier=node.alias),
                column if column is string else column[0],
                node.config.get('partition_value') | string,
                node.config.get('file_format') or 'parquet',
            )) -}}
        {%- endif -%}
    {%- endfor -%}
    {{ exceptions.raise_compiler_error(
        model.alias ~ ": publish_to " ~ name ~ " names no model of " ~ model.package_name) }}
{% endmacro %}
