{{ config(file_format=published_file_format()) }}
-- Published only after the audits of this version passed:
-- depends_on: {{ ref('int_dot_products_sampled') }}

with

solved as (

    select
        side,
        base_version,
        dimension,
        rank,
        condition_number,
        singular_values,
        rotation,
        transform,
        embedding_version
    from {{ ref('int_transforms_solved') }}

)

select * from solved
