{#
    No id lost, added or duplicated: `model`'s `column_name` holds exactly the
    ids of `compare_model` (same column name), each once and none null. One
    pass over both; returns one row per problem with how many ids it affects.
#}
{% test same_ids_as(model, column_name, compare_model) %}
    {{ return(adapter.dispatch('test_same_ids_as')(model, column_name, compare_model)) }}
{% endtest %}

{% macro default__test_same_ids_as(model, column_name, compare_model) %}
with

model_ids as (

    select {{ column_name }} as id, count(*) as copies
    from {{ model }}
    group by 1

),

compare_ids as (

    select {{ column_name }} as id, count(*) as copies
    from {{ compare_model }}
    group by 1

),

compared as (

    select
        model_ids.id is null and compare_ids.id is not null as is_missing,
        compare_ids.id is null and model_ids.id is not null as is_extra,
        coalesce(model_ids.copies, 0) > 1 as is_duplicated,
        model_ids.id is null and compare_ids.id is null as is_null
    from model_ids
    full outer join compare_ids
        on model_ids.id = compare_ids.id

),

summary as (

    select
        count_if(is_missing) as missing_ids,
        count_if(is_extra) as extra_ids,
        count_if(is_duplicated) as duplicated_ids,
        count_if(is_null) as null_ids
    from compared

),

problems as (

    select concat(missing_ids, ' ids of {{ compare_model }} are missing') as problem
    from summary where missing_ids > 0
    union all
    select concat(extra_ids, ' ids are not in {{ compare_model }}')
    from summary where extra_ids > 0
    union all
    select concat(duplicated_ids, ' ids appear more than once')
    from summary where duplicated_ids > 0
    union all
    select 'null ids' from summary where null_ids > 0

)

select * from problems
{% endmacro %}
