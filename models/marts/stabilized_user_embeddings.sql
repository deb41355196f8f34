-- Published only after the audits of this version passed:
-- depends_on: {{ ref('int_dot_products_sampled') }}
-- Not run: published_partition publishes the audited files of int_users_stabilized
-- as this version's partition (this select says what it holds).

with

audited_users as (

    select
        id,
        embedding,
        {{ sql_string(embedding_version()) }} as embedding_version
    from {{ ref('int_users_stabilized') }}

)

select * from audited_users
