{#
    Gram matrix Xᵀ·Y of two array columns of one relation, in long form
    (gram_name, i, j, value): value = Σ_rows x[i]·y[j], accumulated in double.

    Shape of the SQL (the fastest of the forms measured, see docs/performance.md):
    - one posexplode of x gives (i, x[i]); the products with y are unrolled as
      columns, sum(x[i] * y[j]), so each input row explodes e times, not e²;
    - arrays are cast to double once per row (a codegen'd cast);
    - XᵀX is symmetric: column d holds G[i, i+d mod e] for d ≤ e/2 only, read
      from y ‖ y so no modulo is needed; the rest is mirrored at the end;
    - deterministic: rows are summed per input partition (file splits are
      stable), then the partials are added in partition order, so a rebuild
      reproduces the Gram bit for bit (a plain sum() adds partials in whatever
      order the shuffle delivers them).
    The width e is read from one row at run time (var embedding_dimension
    overrides it; unit tests set it).
#}
{% macro gram_matrix(relation, left_column, right_column, gram_name) %}
    {%- set symmetric = left_column == right_column -%}
    {%- set width = array_length(relation, right_column) -%}
    {%- if width is none %}
    {#- an empty relation (no base version yet): no rows, same columns -#}
    select
        {{ sql_string(gram_name) }} as gram_name,
        0 as i,
        0 as j,
        cast(0 as double) as value
    where false
    {%- else -%}
    {%- set offsets = range(width // 2 + 1) if symmetric else range(width) %}
    select
        {{ sql_string(gram_name) }} as gram_name,
        i,
        j,
        aggregate(
            array_sort(collect_list(struct(partition_id, partial_value))),
            cast(0 as double),
            (total, partial) -> total + partial.partial_value
        ) as value
    from (
        select
            partition_id,
            cell.i,
            cell.j,
            partial_value
        from (
            select
                partition_id,
                i,
                {%- for offset in offsets %}
                sum(x * right_values[{{ "i + " if symmetric }}{{ offset }}]) as sum_{{ offset }}
                {{- "," if not loop.last }}
                {%- endfor %}
            from (
                select
                    spark_partition_id() as partition_id,
                    cast({{ left_column }} as array<double>) as left_values,
                    {% if symmetric -%}
                    concat(
                        cast({{ right_column }} as array<double>),
                        cast({{ right_column }} as array<double>)
                    ) as right_values
                    {%- else -%}
                    cast({{ right_column }} as array<double>) as right_values
                    {%- endif %}
                from {{ relation }}
            ) as rows_with_partition
            lateral view posexplode(left_values) left_values_exploded as i, x
            group by partition_id, i
        ) as partial_sums
        lateral view stack(
            {{ offsets | length }},
            {%- for offset in offsets %}
            {{ offset }}, sum_{{ offset }}{{ "," if not loop.last }}
            {%- endfor %}
        ) unstacked as offset, partial_value
        {%- if symmetric %}
        -- G[i, i+d] is also G[i+d, i], except on the diagonal (d = 0) and for
        -- d = e/2, which rows i and i+e/2 each give once
        lateral view explode(
            if(
                offset > 0 and 2 * offset != {{ width }},
                array(
                    named_struct('i', i, 'j', (i + offset) % {{ width }}),
                    named_struct('i', (i + offset) % {{ width }}, 'j', i)
                ),
                array(named_struct('i', i, 'j', (i + offset) % {{ width }}))
            )
        ) cells as cell
        {%- else %}
        lateral view explode(array(named_struct('i', i, 'j', offset))) cells as cell
        {%- endif %}
    ) as partials
    group by i, j
    {%- endif %}
{%- endmacro %}
