{#
    The new raw embeddings inner-joined on id to the published base version:
    (id, embedding, base_embedding). Empty, with the same columns, when there
    is no base version yet (the first version is published as is). Checked
    first: the new ids have the base's id type, and the same dimension unless
    var `allow_dimension_change` is true.

    The join is a sort-merge join whatever the relations' size estimates say:
    Iceberg counts an array<float> as 4 bytes a row, so 200k published items
    (46 MB) were broadcast from the driver (1M users: Iceberg's build 1.23× Hive's
    with the broadcast, 1.13× without; docs/performance.md).

    A side the rotation is fitted on (var `align_on`) joins every shared id.
    The other side is only measured (cosine to base, residual): it joins a
    hash sample of about var `alignment_sample_size` ids, the same ids in
    every version, filtered on both inputs before the join shuffles them.
#}
{% macro joined_to_base(new_embeddings, published_embeddings, input_var, side) %}
{%- set base_version = resolve_base_version() -%}
{%- if execute and base_version is not none -%}
    {%- do check_matches_base(new_embeddings, published_embeddings, base_version, input_var) -%}
{%- endif -%}
{%- set base_rows -%}
    {{ published_embeddings }} where embedding_version = {{ sql_string(base_version) }}
{%- endset -%}
{%- set sampled = side not in aligned_sides() -%}
with

new_embeddings as (

    select id, embedding from {{ new_embeddings }}
    {%- if sampled and base_version is not none %}
    where {{ id_sampled('id', base_rows) }}
    {%- endif %}

),

{% if base_version is not none -%}
base_embeddings as (

    select
        id,
        embedding as base_embedding
    from {{ base_rows }}
    {%- if sampled %}
        and {{ id_sampled('id', base_rows) }}
    {%- endif %}

),

joined as (

    select /*+ merge(base_embeddings) */
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


{% macro check_matches_base(new_embeddings, published_embeddings, base_version, input_var) %}
    {%- set base = "version " ~ base_version ~ " of " ~ published_embeddings -%}
    {%- set new_id_type = relation_column_types(new_embeddings)['id'] -%}
    {%- set base_id_type = relation_column_types(published_embeddings)['id'] -%}
    {%- if new_id_type != base_id_type -%}
        {{ exceptions.raise_compiler_error(
            input_label(input_var, 'id_column') ~ " has type " ~ new_id_type ~ " but the ids of "
            ~ base ~ " have type " ~ base_id_type
            ~ ": ids must keep their type from version to version (cast them in the input)") }}
    {%- endif -%}
    {%- set new_dimension = array_length(new_embeddings, 'embedding') -%}
    {%- set base_dimension = run_query(
        "select size(embedding) from " ~ published_embeddings
        ~ " where embedding_version = " ~ sql_string(base_version) ~ " limit 1").rows[0][0] -%}
    {%- if new_dimension != base_dimension and not var('allow_dimension_change') -%}
        {{ exceptions.raise_compiler_error(
            input_label(input_var, 'embedding_column') ~ " has dimension " ~ new_dimension
            ~ " but " ~ base ~ " has dimension " ~ base_dimension
            ~ ": set var allow_dimension_change: true to pad the narrower one with zero "
            ~ "columns (every score is kept), or align to a base of the same dimension") }}
    {%- endif -%}
{% endmacro %}


{#
    True for a deterministic sample of ids: those whose hash falls in the
    lowest sample_size / n of its range, n the rows of `population` (a
    relation and its where clause; counted from Parquet footers). About
    sample_size ids are kept (default var alignment_sample_size), the same
    ids whatever the version and whichever table holds them; all of them
    when n is not larger.
#}
{% macro id_sampled(id_column, population, sample_size=none) %}
    {%- set buckets = 1000000000 -%}
    {%- set sample_size = var('alignment_sample_size') if sample_size is none else sample_size -%}
    pmod(xxhash64({{ id_column }}), {{ buckets }}) < {{ buckets }} * least(1.0,
        {{ sample_size | int }} / (select nullif(count(*), 0) from {{ population }}))
{%- endmacro %}
