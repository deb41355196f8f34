{#
    Ids fit to publish, checked in one pass: none null, none repeated. Fails
    with a message naming the input (var `input`), its id column, and how
    many rows each problem affects, with an example.
#}
{% test valid_ids(model, column_name, input) %}
    {{ return(adapter.dispatch('test_valid_ids')(model, column_name, input)) }}
{% endtest %}

{% macro default__test_valid_ids(model, column_name, input) %}
with

id_counts as (

    select {{ column_name }} as id, count(*) as copies
    from {{ model }}
    group by 1

),

summary as (

    select
        sum(if(id is null, copies, 0)) as null_rows,
        count_if(id is not null and copies > 1) as repeated_ids,
        min(if(id is not null and copies > 1, id, null)) as repeated_example
    from id_counts

),

-- one row in, one row per problem out: the summary is computed once
problems as (

    select problem
    from summary
    lateral view explode(array(
        if(null_rows > 0, concat(null_rows, ' rows have a null id'), null),
        if(repeated_ids > 0,
            concat(repeated_ids, ' ids appear more than once (e.g. ', repeated_example, ')'),
            null)
    )) listed as problem
    where problem is not null

)

{{ fail_with_problems('problems', input_label(input, 'id_column')) }}
{% endmacro %}
