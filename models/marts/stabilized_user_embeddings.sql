-- Published only after the audits of this version passed:
-- depends_on: {{ ref('int_dot_products_sampled') }}

with

audited_users as (

    select
        id,
        embedding,
        embedding_version
    from {{ ref('int_users_stabilized') }}

)

select * from audited_users
