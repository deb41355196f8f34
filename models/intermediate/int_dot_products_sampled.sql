{#- The audit of losslessness: user·item dot products before and after, on
    sample_size users × sample_size items chosen by a hash of the id (stable
    across runs). One row per sampled pair. -#}

with

sampled_user_ids as (

    select id from {{ ref('stg_retrain__users') }}
    order by xxhash64(id), id
    limit {{ var('sample_size') }}

),

sampled_item_ids as (

    select id from {{ ref('stg_retrain__items') }}
    order by xxhash64(id), id
    limit {{ var('sample_size') }}

),

sampled_users as (

    -- broadcast the sampled ids: one scan of each large table, no shuffle
    select /*+ broadcast(sampled_user_ids) */
        raw_users.id,
        raw_users.embedding as raw_embedding,
        stabilized_users.embedding as stabilized_embedding
    from {{ ref('stg_retrain__users') }} as raw_users
    inner join sampled_user_ids
        on raw_users.id = sampled_user_ids.id
    inner join {{ ref('int_users_stabilized') }} as stabilized_users
        on sampled_user_ids.id = stabilized_users.id

),

sampled_items as (

    -- broadcast the sampled ids: one scan of each large table, no shuffle
    select /*+ broadcast(sampled_item_ids) */
        raw_items.id,
        raw_items.embedding as raw_embedding,
        stabilized_items.embedding as stabilized_embedding
    from {{ ref('stg_retrain__items') }} as raw_items
    inner join sampled_item_ids
        on raw_items.id = sampled_item_ids.id
    inner join {{ ref('int_items_stabilized') }} as stabilized_items
        on sampled_item_ids.id = stabilized_items.id

),

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
