{#
    Checks of the inputs that stop a run before anything is built on them,
    each with a message naming the relation, the column and the problem.
    Data problems (nulls, NaN, duplicates...) are found by the generic tests
    in macros/generic_tests, which fail through `fail_with_problems`.
#}

{# How an input is named in messages: `retrain.users (var user_embeddings), column user_id`. #}
{% macro input_label(input_var, column_var=none) %}
    {%- set label = var(input_var) ~ " (var " ~ input_var ~ ")" -%}
    {%- if column_var is not none -%}
        {%- set label = label ~ ", column " ~ var(column_var) -%}
    {%- endif -%}
    {{- return(label) -}}
{% endmacro %}

{#
    The predicate that selects this retrain's rows of an input, e.g.
    ds = '2026-11-22' on a table partitioned by ds: var `<input_var>_filter`,
    else var `embeddings_filter` (both inputs); none when neither is set.
    Returned with the name of the var that set it, for messages.
#}
{% macro input_filter(input_var) %}
    {%- for filter_var in [input_var ~ '_filter', 'embeddings_filter'] -%}
        {%- set predicate = var(filter_var, '') | string | trim -%}
        {%- if predicate not in ('', 'None') -%}
            {{- return({'predicate': predicate, 'var': filter_var}) -}}
        {%- endif -%}
    {%- endfor -%}
    {{- return(none) -}}
{% endmacro %}

{# `filter ds = '2026-11-22' (var embeddings_filter)`, or '' when the input is not filtered. #}
{% macro filter_label(input_var) %}
    {%- set filter = input_filter(input_var) -%}
    {%- if filter is none -%}
        {{- return("") -}}
    {%- endif -%}
    {{- return("filter " ~ filter.predicate ~ " (var " ~ filter.var ~ ")") -}}
{% endmacro %}

{# The rows of an input this run reads: the relation, filtered when a filter var is set. #}
{% macro filtered_input(relation, input_var) %}
    {%- set filter = input_filter(input_var) -%}
    {%- if filter is none -%}
        {{- return("select * from " ~ relation) -}}
    {%- endif -%}
    {{- return("select * from " ~ relation ~ "\nwhere (" ~ filter.predicate ~ ")") -}}
{% endmacro %}

{#
    {column name (lower case): Spark SQL type} of a query's result, found by
    Spark's analysis (`describe query`) without running it. A query Spark
    cannot analyse (a missing relation or column, a filter that does not
    parse) is an error that starts with `described_as`.
#}
{% macro query_column_types(query, described_as) %}
    {{- return(adapter.dispatch('query_column_types')(query, described_as)) -}}
{% endmacro %}

{% macro default__query_column_types(query, described_as) %}
    {%- set types = {} -%}
    {%- for row in run_query("describe query " ~ query).rows -%}
        {%- do types.update({row[0] | lower: row[1] | lower}) -%}
    {%- endfor -%}
    {{- return(types) -}}
{% endmacro %}

{# The sparksession adapter names the input and gives Spark's reason on one line. #}
{% macro sparksession__query_column_types(query, described_as) %}
    {{- return(adapter.query_column_types(query, described_as)) -}}
{% endmacro %}

{# {column name (lower case): Spark SQL type} of any relation, including parquet.`/path`. #}
{% macro relation_column_types(relation) %}
    {{- return(query_column_types("select * from " ~ relation, relation | string)) -}}
{% endmacro %}

{#
    The input named by var `input_var` can be read (with its filter, if any)
    and has the id and embedding columns (vars `id_column`,
    `embedding_column`) with usable types: an integer or string id, an
    array<float> or array<double> embedding.
#}
{% macro check_input_columns(relation, input_var) %}
    {%- if not execute -%}{{ return(none) }}{%- endif -%}
    {%- set filter = filter_label(input_var) -%}
    {%- set types = query_column_types(
        filtered_input(relation, input_var),
        input_label(input_var) ~ (" with " ~ filter if filter else "") ~ " cannot be read") -%}
    {%- set expected = {
        'id_column': ('tinyint', 'smallint', 'int', 'bigint', 'string'),
        'embedding_column': ('array<float>', 'array<double>'),
    } -%}
    {%- for column_var, allowed in expected.items() -%}
        {%- set column = var(column_var) | lower -%}
        {%- if column not in types -%}
            {{ exceptions.raise_compiler_error(
                input_label(input_var) ~ " has no column " ~ var(column_var)
                ~ " (var " ~ column_var ~ "); its columns are: " ~ types.keys() | join(", ")) }}
        {%- endif -%}
        {%- set type = types[column] -%}
        {%- set is_text_id = column_var == 'id_column'
                             and type.startswith(('varchar(', 'char(')) -%}
        {%- if type not in allowed and not is_text_id -%}
            {{ exceptions.raise_compiler_error(
                input_label(input_var, column_var) ~ " has type " ~ type
                ~ "; expected " ~ allowed | join(" or ")) }}
        {%- endif -%}
    {%- endfor -%}
{% endmacro %}

{#
    The test query for a CTE `problems` (one `problem` text per row): no row
    when there is none, else the test fails with every problem in its message,
    prefixed by `label`. raise_error sits in a filter, not in a projected
    column, which the count(*) dbt wraps tests in would prune.
#}
{% macro fail_with_problems(problems, label) %}
select problems
from (
    select concat_ws('; ', collect_list(problem)) as problems
    from {{ problems }}
    having count(*) > 0
) as found
where raise_error(concat({{ sql_string(label ~ ': ') }}, problems)) is null
{% endmacro %}
