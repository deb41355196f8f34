{#
    The new raw embeddings inner-joined on id to the published base version:
    (id, embedding, base_embedding). Empty, with the same columns, when there
    is no base version yet (the first version is published as is).
#}
{% macro joined_to_base(new_embeddings, published_embeddings) %}
{%- set base_version = resolve_base_version() -%}
with

new_embeddings as (

    select id, embedding from {{ new_embeddings }}

),

{% if base_version is not none -%}
base_embeddings as (

    select
        id,
        embedding as base_embedding
    from {{ published_embeddings }}
    where embedding_version = {{ sql_string(base_version) }}

),

joined as (

    select
        new_embeddings.id,
        new_embeddings.embedding,
        base_embeddings.base_embedding
    from new_embeddings
    inner join base_embeddings
        on new_embeddings.id = base_embeddings.id

)
{%- else -%}
joined as (

    select
        id,
        embedding,
        cast(null as array<float>) as base_embedding
    from new_embeddings
    where false

)
{%- endif %}

select * from joined
{%- endmacro %}
