{#
    An embedding column fit to stabilize, checked in one pass: no null
    embedding, no null/NaN/±Inf value, one length for every row, at least one
    row. Returns one row per problem found, with a `problem` that says what is
    wrong and how many rows it affects.
#}
{% test valid_embeddings(model, column_name) %}
    {{ return(adapter.dispatch('test_valid_embeddings')(model, column_name)) }}
{% endtest %}

{% macro default__test_valid_embeddings(model, column_name) %}
with

rows_checked as (

    select
        {{ column_name }} is null as is_null,
        exists(
            {{ column_name }},
            x -> x is null or isnan(x) or x in (double('inf'), double('-inf'))
        ) as has_bad_value,
        size({{ column_name }}) as dimension
    from {{ model }}

),

summary as (

    select
        count(*) as row_count,
        count_if(is_null) as null_rows,
        count_if(has_bad_value) as bad_value_rows,
        min(dimension) filter (where not is_null) as min_dimension,
        max(dimension) filter (where not is_null) as max_dimension
    from rows_checked

),

problems as (

    select 'the relation is empty' as problem from summary where row_count = 0
    union all
    select concat(null_rows, ' rows have a null {{ column_name }}')
    from summary where null_rows > 0
    union all
    select concat(bad_value_rows, ' rows have a null, NaN or infinite value in {{ column_name }}')
    from summary where bad_value_rows > 0
    union all
    select concat(
        '{{ column_name }} lengths differ between rows: from ', min_dimension,
        ' to ', max_dimension
    )
    from summary where min_dimension != max_dimension
    union all
    select '{{ column_name }} has length 0' from summary where max_dimension = 0

)

select * from problems
{% endmacro %}
