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

sampled_raw_{{ side }} as (

    -- broadcast the sampled ids: one scan of each large table, no shuffle
    select /*+ broadcast(sampled_{{ side }}_ids) */ raw.id, raw.embedding
    from {{ raw }} as raw
    inner join sampled_{{ side }}_ids on raw.id = sampled_{{ side }}_ids.id

),

sampled_stabilized_{{ side }} as (

    select /*+ broadcast(sampled_{{ side }}_ids) */ stabilized.id, stabilized.embedding
    from {{ stabilized }} as stabilized
    inner join sampled_{{ side }}_ids on stabilized.id = sampled_{{ side }}_ids.id

),

sampled_{{ side }} as (

    -- both sides are sample_size rows: joined without shuffling a large table
    select /*+ broadcast(sampled_stabilized_{{ side }}) */
        sampled_raw_{{ side }}.id,
        sampled_raw_{{ side }}.embedding as raw_embedding,
        sampled_stabilized_{{ side }}.embedding as stabilized_embedding
    from sampled_raw_{{ side }}
    inner join sampled_stabilized_{{ side }}
        on sampled_raw_{{ side }}.id = sampled_stabilized_{{ side }}.id

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
