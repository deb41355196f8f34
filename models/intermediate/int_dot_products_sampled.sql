{#- The audit of losslessness: user·item dot products before and after, on
    sample_size users × sample_size items chosen by a hash of the id (stable
    across runs). One row per sampled pair. -#}

{%- set sides = [
    ('users', ref('stg_retrain__users'), ref('int_users_stabilized')),
    ('items', ref('stg_retrain__items'), ref('int_items_stabilized')),
] -%}

with

{% for side, raw, stabilized in sides %}
sampled_{{ side }}_ids as (

    select id from {{ raw }}
    order by xxhash64(id), id
    limit {{ var('sample_size') }}

),

sampled_{{ side }} as (

    -- broadcast the sampled ids: one scan of each large table, no shuffle
    select /*+ broadcast(sampled_{{ side }}_ids) */
        raw_{{ side }}.id,
        raw_{{ side }}.embedding as raw_embedding,
        stabilized_{{ side }}.embedding as stabilized_embedding
    from {{ raw }} as raw_{{ side }}
    inner join sampled_{{ side }}_ids
        on raw_{{ side }}.id = sampled_{{ side }}_ids.id
    inner join {{ stabilized }} as stabilized_{{ side }}
        on sampled_{{ side }}_ids.id = stabilized_{{ side }}.id

),
{% endfor %}

pairs_scored as (

    select
        sampled_users.id as user_id,
        sampled_items.id as item_id,
        {{ dot_product('sampled_users.raw_embedding', 'sampled_items.raw_embedding') }}
            as raw_dot_product,
        {{ dot_product('sampled_users.stabilized_embedding', 'sampled_items.stabilized_embedding') }}
            as stabilized_dot_product,
        {{ vector_norm('sampled_users.raw_embedding') }}
            * {{ vector_norm('sampled_items.raw_embedding') }} as raw_norm_product
    from sampled_users
    cross join sampled_items

),

errors_measured as (

    select
        *,
        abs(stabilized_dot_product - raw_dot_product)
            / if(raw_norm_product > 0, raw_norm_product, 1.0) as relative_error
    from pairs_scored

)

select * from errors_measured
