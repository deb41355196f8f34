{#
    No id lost, added or duplicated: `model`'s `column_name` holds exactly the
    ids of `compare_model` (same column name), each once and none null.
    Returns one row per problem with how many ids it affects.

    Checked first by fingerprint, reading only the two id columns, without a
    shuffle (as data-diff tools checksum two tables before diffing them): the
    rows, the non-null ids, and the sums of the four 16-bit parts of
    xxhash64(id), a hash of the multiset of ids. Equal fingerprints mean the
    same multiset of ids (unless 64 bits of hash sums collide), so each id
    once, as in `compare_model` (which its valid_ids test checks). Only when
    they differ are the ids joined, to count each problem.
#}
{% test same_ids_as(model, column_name, compare_model) %}
    {{ return(adapter.dispatch('test_same_ids_as')(model, column_name, compare_model)) }}
{% endtest %}

{% macro default__test_same_ids_as(model, column_name, compare_model) %}
{%- set holds = staged_version(model) if execute and model is not string else none -%}
{%- if holds is not none and holds != embedding_version() %}
-- {{ model }} holds version {{ holds }}'s rows, not this run's: compared once it is
-- rebuilt (publication requires this test to pass after that, audit_ledger.sql)
{{ log(model ~ " holds version " ~ holds ~ "'s rows: not compared with " ~ compare_model
       ~ " until it is built for version " ~ embedding_version(), info=true) }}
select cast(null as string) as problem
where false
{%- elif execute and run_query(
    "select (" ~ ids_fingerprint(model, column_name) ~ ") = ("
    ~ ids_fingerprint(compare_model, column_name) ~ ")").rows[0][0] %}
-- same fingerprint as {{ compare_model }}: no id lost, added or duplicated
select cast(null as string) as problem
where false
{%- else %}
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
{%- endif %}
{% endmacro %}


{#
    A query of one struct (rows, non-null ids, the sums of each 16-bit part of
    xxhash64(id)) of a relation: equal for two relations with the same multiset
    of ids. Each sum fits a bigint up to 2^47 rows (sums of the 32-bit halves
    would overflow, an error under ANSI mode, past 2^31 rows).
#}
{% macro ids_fingerprint(relation, column_name) %}
    {%- set hash = "xxhash64(" ~ column_name ~ ")" -%}
    select struct(
        count(*),
        count({{ column_name }})
        {%- for shift in (0, 16, 32, 48) %},
        coalesce(sum(shiftrightunsigned({{ hash }}, {{ shift }}) & 65535), 0)
        {%- endfor %}
    ) from {{ relation }}
{%- endmacro %}
