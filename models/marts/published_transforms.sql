{{ config(materialized='view') }}
-- The transforms of the versions readers may read (published_versions).

with

transforms as (

    select * from {{ ref('stabilization_transforms') }}

),

readable as (

    select transforms.*
    from transforms
    where transforms.embedding_version in (
        select published_versions.embedding_version
        from {{ ref('published_versions') }} as published_versions
    )

)

select * from readable
