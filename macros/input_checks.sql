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

{# {column name (lower case): Spark SQL type} of any relation, including parquet.`/path`. #}
{% macro relation_column_types(relation) %}
    {%- set types = {} -%}
    {%- for row in run_query("describe query select * from " ~ relation).rows -%}
        {%- do types.update({row[0] | lower: row[1] | lower}) -%}
    {%- endfor -%}
    {{- return(types) -}}
{% endmacro %}

{#
    The input named by var `input_var` has the id and embedding columns (vars
    `id_column`, `embedding_column`) with usable types: an integer or string
    id, an array<float> or array<double> embedding.
#}
{% macro check_input_columns(relation, input_var) %}
    {%- if not execute -%}{{ return(none) }}{%- endif -%}
    {%- set types = relation_column_types(relation) -%}
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
        {%- set is_text_id = column_var == 'id_column' and type.startswith(('varchar(', 'char(')) -%}
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
