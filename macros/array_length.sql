{#
    The length of the arrays in `column` of `relation`, read from one row at
    run time (all rows have it: the valid_embeddings test checks), or none if
    the relation has no row. var `embedding_dimension` overrides it.
#}
{% macro array_length(relation, column) %}
    {%- set fixed = var('embedding_dimension', none) -%}
    {%- if fixed not in (none, '', 'None') -%}
        {{ return(fixed | int) }}
    {%- endif -%}
    {%- if not execute -%}
        {{ return(1) }}
    {%- endif -%}
    {#- once per build: the Gram and the base checks ask for the same lengths -#}
    {%- set rows = query_once(
        "select size(" ~ column ~ ") from " ~ relation
        ~ " where " ~ column ~ " is not null limit 1").rows -%}
    {{ return(rows[0][0] if rows | length > 0 else none) }}
{% endmacro %}
