{#- WᵀW and TᵀT over all rows, and the cross Grams new·base on the ids of the
    aligned side(s); long form (gram_name, i, j, value). -#}
{%- set sides = aligned_sides() -%}

{%- if var('gram_method') in ('auto', 'arrow') %}
-- depends_on: {{ ref('int_gram_matrices_arrow') }}
{%- endif %}

{%- if gram_method() == 'arrow' %}

select * from {{ ref('int_gram_matrices_arrow') }}

{%- else %}

with

user_gram as (
    {{ gram_matrix(ref('stg_retrain__users'), 'embedding', 'embedding', 'users') }}
),

item_gram as (
    {{ gram_matrix(ref('stg_retrain__items'), 'embedding', 'embedding', 'items') }}
),

{% if 'users' in sides -%}
user_cross_gram as (
    {{ gram_matrix(ref('int_users_joined_to_base'), 'embedding', 'base_embedding', 'users_cross') }}
),
{%- endif %}

{% if 'items' in sides -%}
item_cross_gram as (
    {{ gram_matrix(ref('int_items_joined_to_base'), 'embedding', 'base_embedding', 'items_cross') }}
),
{%- endif %}

unioned as (

    select * from user_gram
    union all
    select * from item_gram
    {%- for side in sides %}
    union all
    select * from {{ side[:-1] }}_cross_gram
    {%- endfor %}

)

select * from unioned

{%- endif %}
