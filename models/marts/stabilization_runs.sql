{{ config(file_format=published_file_format(), pre_hook="{{ require_latest_base() }}") }}
{#- One row per published version. Written last: a version is published once
    its row is here (the base-version default reads this table). -#}
{%- set version = sql_string(embedding_version()) -%}
{%- set sides = aligned_sides() -%}
-- written after every other published table: depends_on: {{ ref('stabilization_transforms') }}

with

versions as (

    select
        embedding_version,
        base_version,
        align_on
    from {{ ref('int_versions_resolved') }}

),

solved as (

    select
        max(dimension) as dimension,
        max(rank) as rank,
        max(condition_number) as condition_number
    from {{ ref('int_transforms_solved') }}

),

published_users as (

    select count(*) as users
    from {{ ref('stabilized_user_embeddings') }}
    where embedding_version = {{ version }}

),

published_items as (

    select count(*) as items
    from {{ ref('stabilized_item_embeddings') }}
    where embedding_version = {{ version }}

),

alignment as (

    -- over the side(s) the rotation was fitted on
    select
        sum(aligned_ids) as aligned_ids,
        sum(cosine_raw_sum) / nullif(sum(aligned_ids), 0) as mean_cosine_raw,
        sum(cosine_stabilized_sum) / nullif(sum(aligned_ids), 0)
            as mean_cosine_stabilized,
        sqrt(
            sum(squared_residual_sum)
            / nullif(sum(base_squared_norm_sum), 0)
        ) as procrustes_residual
    from {{ ref('int_alignment_measured') }}
    where side in (
        {%- for side in sides %}{{ sql_string(side) }}{{ ", " if not loop.last }}{% endfor -%}
    )

),

alignment_by_side as (

    select
        -- a side not aligned on is measured on a hash sample of its shared ids
        {%- for side in ('users', 'items') %}
        {% if side in sides -%}
        sum(if(side = '{{ side }}', aligned_ids, 0))
        {%- else -%}
        cast(null as bigint)
        {%- endif %} as aligned_{{ side }},
        sum(if(side = '{{ side }}', aligned_ids, 0)) as measured_{{ side }},
        {%- endfor %}
        max(if(side = 'users', cosine_raw_sum / nullif(aligned_ids, 0), null))
            as user_cosine_raw,
        max(if(side = 'users', cosine_stabilized_sum / nullif(aligned_ids, 0), null))
            as user_cosine_stabilized,
        max(if(side = 'items', cosine_raw_sum / nullif(aligned_ids, 0), null))
            as item_cosine_raw,
        max(if(side = 'items', cosine_stabilized_sum / nullif(aligned_ids, 0), null))
            as item_cosine_stabilized
    from {{ ref('int_alignment_measured') }}

),

dot_products as (

    select max(relative_error) as max_dot_product_error
    from {{ ref('int_dot_products_sampled') }}

),

first_publication as (

    {% if is_incremental() -%}
    select max(published_at) as published_at
    from {{ this }}
    where embedding_version = {{ version }}
    {%- else -%}
    select cast(null as timestamp) as published_at
    {%- endif %}

),

run_summarized as (

    -- the partition column last (an insert into a partitioned table needs it there)
    select  -- noqa: ST06
        versions.base_version,
        versions.align_on,
        published_users.users,
        published_items.items,
        alignment.aligned_ids,
        solved.dimension,
        solved.rank,
        solved.condition_number,
        alignment.procrustes_residual,
        dot_products.max_dot_product_error,
        alignment.mean_cosine_raw,
        alignment.mean_cosine_stabilized,
        alignment_by_side.aligned_users,
        alignment_by_side.aligned_items,
        alignment_by_side.measured_users,
        alignment_by_side.measured_items,
        alignment_by_side.user_cosine_raw,
        alignment_by_side.user_cosine_stabilized,
        alignment_by_side.item_cosine_raw,
        alignment_by_side.item_cosine_stabilized,
        coalesce(first_publication.published_at, current_timestamp()) as published_at,
        versions.embedding_version
    from versions
    cross join solved
    cross join published_users
    cross join published_items
    cross join alignment
    cross join alignment_by_side
    cross join dot_products
    cross join first_publication

)

select * from run_summarized
