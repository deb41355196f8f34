-- Published only after the audits of this version passed:
-- depends_on: {{ ref('int_dot_products_sampled') }}

with

audited_items as (

    select
        id,
        embedding,
        embedding_version
    from {{ ref('int_items_stabilized') }}

)

select * from audited_items
