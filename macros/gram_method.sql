{#
    The Gram path this build takes: var gram_method, unless it is auto (the
    default), which takes arrow for embeddings wider than var gram_arrow_above
    (16) and sql otherwise. The SQL Gram explodes each row e times and adds each
    product in generated code, ~e² per row; numpy adds X_bᵀX_b per Arrow batch
    with BLAS. In a build at 1M users the SQL Gram is 0.8× the arrow one at e = 16,
    1.4× at e = 32, 2.6× at 64, 12× at 256
    (docs/performance.md). int_gram_matrices_arrow.py decides the
    same way (python_udfs.spark.gram_method_for).
#}
{% macro gram_method() %}
    {%- set method = var('gram_method') -%}
    {%- if method not in ('auto', 'sql', 'arrow') -%}
        {{ exceptions.raise_compiler_error(
            "var 'gram_method' = '" ~ method ~ "' must be auto, sql or arrow") }}
    {%- endif -%}
    {%- if method != 'auto' -%}
        {{ return(method) }}
    {%- endif -%}
    {%- set width = array_length(ref('stg_retrain__users'), 'embedding') -%}
    {%- set wide = width is not none and width > var('gram_arrow_above') | int -%}
    {{ return('arrow' if wide else 'sql') }}
{% endmacro %}
