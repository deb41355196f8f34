{{ config(materialized='view') }}
-- The items of the versions readers may read (published_versions): never a
-- version whose tables are being rebuilt.

with

items as (

    select * from {{ ref('stabilized_item_embeddings') }}

),

readable as (

    select items.*
    from items
    where items.embedding_version in (
        select published_versions.embedding_version
        from {{ ref('published_versions') }} as published_versions
    )

)

select * from readable
