with

source as (

    select * from {{ source('retrain_items', 'item_embeddings') }}

),

renamed as (

    select
        ---------- ids
        {{ adapter.quote(var('id_column')) }} as id,

        ---------- embedding
        {{ adapter.quote(var('embedding_column')) }} as embedding,
        {{ sql_string(embedding_version()) }} as embedding_version

    from source

)

select * from renamed
