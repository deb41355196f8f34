{#
    sum() of a double expression through decimal, which adds exactly: the
    result does not depend on the order Spark combines partial sums, so a
    rebuild reproduces it bit for bit. For per-row measures, not hot paths.
#}
{% macro exact_sum(expression) %}
    cast(sum(cast({{ expression }} as decimal(38, 16))) as double)
{%- endmacro %}
