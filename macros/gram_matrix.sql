{#
    Gram matrix Xᵀ·Y of two array columns of one relation, in long form
    (gram_name, i, j, value): value = Σ_rows x[i]·y[j], accumulated in double.

    The sum is made deterministic so that rebuilding a version reproduces it
    bit for bit: rows are summed per input partition (file splits are stable),
    then the partials are added in partition order. A plain sum() adds the
    partials in whatever order the shuffle delivers them.
#}
{% macro gram_matrix(relation, left_column, right_column, gram_name) %}
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
            i,
            j,
            sum(cast(x as double) * cast(y as double)) as partial_value
        from (
            select
                spark_partition_id() as partition_id,
                {{ left_column }} as left_vector,
                {{ right_column }} as right_vector
            from {{ relation }}
        ) as rows_with_partition
        lateral view posexplode(left_vector) left_values as i, x
        lateral view posexplode(right_vector) right_values as j, y
        group by partition_id, i, j
    ) as partials
    group by i, j
{%- endmacro %}
