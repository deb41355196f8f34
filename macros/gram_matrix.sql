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
    - at most var gram_sql_block_size (64) sums per aggregate: past
      spark.sql.codegen.maxFields (100) columns Spark gives up whole-stage code
      generation and runs the aggregate interpreted (e = 256: 129 or 256 sums).
      Wider Grams are summed in blocks of offsets, as even as they can be: each
      row's (i, x) is repeated once per block, and block b sums the offsets
      b·B … b·B + B − 1 (right values padded with zeros; offsets past the last
      are dropped). The partial
      sums add the same products in the same order, so the values are the same
      bits as unblocked.
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
    {%- set offsets = range(width // 2 + 1) if symmetric else range(width) -%}
    {%- set largest_block = var('gram_sql_block_size', 64) | int -%}
    {%- set blocks = ((offsets | length) + largest_block - 1) // largest_block -%}
    {#- blocks as even as they can be: 65 offsets are 2 blocks of 33, not 64 and 1 -#}
    {%- set block_size = ((offsets | length) + blocks - 1) // blocks -%}
    {#- the right values' length the last block reads up to: e, or 2e (symmetric) -#}
    {%- set padding = [0, blocks * block_size - width] | max -%}
    {%- set block_start = ("block * " ~ block_size ~ " + ") if blocks > 1 else "" %}
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
                {%- if blocks > 1 %}
                block,
                {%- endif %}
                {%- for k in range(block_size) %}
                sum(x * right_values[{{ "i + " if symmetric }}{{ block_start }}{{ k }}]) as sum_{{ k }}
                {{- "," if not loop.last }}
                {%- endfor %}
            from (
                select
                    spark_partition_id() as partition_id,
                    cast({{ left_column }} as array<double>) as left_values,
                    {% if symmetric or padding > 0 -%}
                    concat(
                        cast({{ right_column }} as array<double>)
                        {%- if symmetric %},
                        cast({{ right_column }} as array<double>)
                        {%- endif %}
                        {%- if padding > 0 %},
                        array_repeat(cast(0 as double), {{ padding }})
                        {%- endif %}
                    ) as right_values
                    {%- else -%}
                    cast({{ right_column }} as array<double>) as right_values
                    {%- endif %}
                from {{ relation }}
            ) as rows_with_partition
            lateral view posexplode(left_values) left_values_exploded as i, x
            {%- if blocks > 1 %}
            lateral view explode(sequence(0, {{ blocks - 1 }})) block_numbers as block
            {%- endif %}
            group by partition_id, i{{ ", block" if blocks > 1 }}
        ) as partial_sums
        lateral view stack(
            {{ block_size }},
            {%- for k in range(block_size) %}
            {{ block_start }}{{ k }}, sum_{{ k }}{{ "," if not loop.last }}
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
        {%- if blocks * block_size > offsets | length %}
        where offset < {{ offsets | length }}  -- the last block's padding
        {%- endif %}
    ) as partials
    group by i, j
    {%- endif %}
{%- endmacro %}
