{#
    An aligned side (var `align_on`) shares enough ids with its base version
    to fit the rotation: at least var `min_aligned_ids`, by default the
    dimension e. `model` is the side's join to the base; nothing is checked
    for a first version or a side not aligned on.
#}
{% test enough_aligned_ids(model, side, input) %}
    {{ return(adapter.dispatch('test_enough_aligned_ids')(model, side, input)) }}
{% endtest %}

{% macro default__test_enough_aligned_ids(model, side, input) %}
{%- set base_version = resolve_base_version() -%}
{%- set minimum = var('min_aligned_ids') -%}
{%- set checked = base_version is not none and side in aligned_sides() -%}
with

aligned as (

    select
        count(*) as aligned_ids,
        {{ minimum | int if minimum not in (none, '', 'None') else 'max(size(embedding))' }}
            as minimum_ids
    from {{ model }}
    where {{ checked }}

),

problems as (

    select
        if(
            aligned_ids = 0,
            'no id is also in base version {{ base_version }}',
            concat(
                'only ', aligned_ids, ' ids are also in base version {{ base_version }}; at least ',
                minimum_ids, ' are needed to fit the rotation (var min_aligned_ids, default: the '
                || 'dimension)'
            )
        ) as problem
    from aligned
    where {{ checked }} and aligned_ids < coalesce(minimum_ids, 1)

)

{{ fail_with_problems('problems', input_label(input, 'id_column')) }}
{% endmacro %}
