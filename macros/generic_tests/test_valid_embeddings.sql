{#
    An embedding column fit to stabilize, checked in one pass: at least one
    row, no null embedding, no null/NaN/±Inf value, one length for every row.
    Fails with a message naming the input (var `input`), its embedding column,
    and how many rows each problem affects, with an example id.
#}
{% test valid_embeddings(model, column_name, input) %}
    {{ return(adapter.dispatch('test_valid_embeddings')(model, column_name, input)) }}
{% endtest %}

{% macro default__test_valid_embeddings(model, column_name, input) %}
{%- set filter = filter_label(input) -%}
with

rows_checked as (

    select
        id,
        {{ column_name }} is null as is_null,
        -- a null, NaN or infinite value, found without a lambda (Spark does not
        -- generate code for higher-order functions: `exists` took 2.7x as long at
        -- 4M users): array_contains finds a NaN (NaN equals NaN in Spark) and is
        -- null when the array holds a null and no NaN; array_max and array_min
        -- are the infinities an array holds
        {{ column_name }} is not null and (
            coalesce(array_contains({{ column_name }}, float('NaN')), true)
            or coalesce(
                array_max({{ column_name }}) = float('inf')
                or array_min({{ column_name }}) = float('-inf'),
                false
            )
        ) as has_bad_value,
        size({{ column_name }}) as dimension
    from {{ model }}

),

summary as (

    select
        count(*) as row_count,
        count_if(is_null) as null_rows,
        min(if(is_null, id, null)) as null_example,
        count_if(has_bad_value) as bad_value_rows,
        min(if(has_bad_value, id, null)) as bad_value_example,
        min(dimension) filter (where not is_null) as min_dimension,
        max(dimension) filter (where not is_null) as max_dimension,
        min_by(id, dimension) filter (where not is_null) as min_dimension_example,
        max_by(id, dimension) filter (where not is_null) as max_dimension_example
    from rows_checked

),

-- one row in, one row per problem out: the summary is computed once
problems as (

    select problem
    from summary
    lateral view explode(array(
        if(row_count = 0,
            {{ sql_string('the relation has no rows' ~ (' for ' ~ filter if filter else '')) }},
            null),
        if(null_rows > 0,
            concat(null_rows, ' rows have a null embedding (e.g. id ', null_example, ')'),
            null),
        if(bad_value_rows > 0,
            concat(bad_value_rows, ' rows have a null, NaN or infinite value (e.g. id ',
                bad_value_example, ')'),
            null),
        if(min_dimension != max_dimension,
            concat('embeddings have different lengths: ', min_dimension, ' (e.g. id ',
                min_dimension_example, ') to ', max_dimension, ' (e.g. id ',
                max_dimension_example, ')'),
            null),
        if(max_dimension = 0, 'embeddings have length 0', null)
    )) listed as problem
    where problem is not null

)

{{ fail_with_problems('problems', input_label(input, 'embedding_column')) }}
{% endmacro %}
