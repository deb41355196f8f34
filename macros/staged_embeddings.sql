{#
    One retrain's embeddings renamed to (id, embedding) — the input columns are
    named by vars id_column and embedding_column — and labelled with this
    run's embedding_version. The input (named by var `input_var`) is read
    through its filter var if one is set (a partition of a versioned table:
    Spark prunes the other partitions), and must have both columns with
    usable types: checked before the view is created.
#}
{% macro staged_embeddings(source_relation, input_var) %}
{%- do check_input_columns(source_relation, input_var) -%}
with

source as (

    {{ filtered_input(source_relation, input_var) | indent(4) }}

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
{%- endmacro %}
