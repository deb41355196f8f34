{{ config(file_format=published_file_format()) }}
-- Published only after the audits of this version passed:
-- depends_on: {{ ref('int_dot_products_sampled') }}
-- published_partition publishes the audited rows of int_items_stabilized as this
-- version's partition (this select says what it holds; Delta copies them with it).

with

audited_items as (

    select
        id,
        embedding,
        {{ sql_string(embedding_version()) }} as embedding_version
    from {{ ref('int_items_stabilized') }}

)

select * from audited_items
