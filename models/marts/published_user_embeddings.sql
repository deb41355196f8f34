{{ config(materialized='view') }}
-- The users of the versions readers may read (published_versions): never a
-- version whose tables are being rebuilt.

with

users as (

    select * from {{ ref('stabilized_user_embeddings') }}

),

readable as (

    select users.*
    from users
    where users.embedding_version in (
        select published_versions.embedding_version
        from {{ ref('published_versions') }} as published_versions
    )

)

select * from readable
