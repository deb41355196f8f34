{#
    Each row's `column_name` (an e×e array<array<double>>, e = `dimension`)
    is an orthogonal matrix: OᵀO = I within `tolerance`, and e×e exactly.
    Returns the rows (and the worst entry) that fail.
#}
{% test orthogonal(model, column_name, tolerance=1e-9) %}
    {{ return(adapter.dispatch('test_orthogonal')(model, column_name, tolerance)) }}
{% endtest %}

{% macro default__test_orthogonal(model, column_name, tolerance) %}
with

matrices as (

    select
        monotonically_increasing_id() as matrix_id,
        dimension,
        {{ column_name }} as matrix
    from {{ model }}

),

wrong_shape as (

    select matrix_id, 'not dimension × dimension' as problem, cast(null as double) as worst_error
    from matrices
    where size(matrix) != dimension
        or exists(matrix, matrix_row -> size(matrix_row) != dimension)

),

entries as (

    select matrix_id, row_index, column_index, value
    from matrices
    lateral view posexplode(matrix) matrix_rows as row_index, matrix_row
    lateral view posexplode(matrix_row) row_values as column_index, value

),

-- (OᵀO)[a][b] = Σ_i O[i][a]·O[i][b]
products as (

    select
        left_entries.matrix_id,
        left_entries.column_index as a,
        right_entries.column_index as b,
        sum(left_entries.value * right_entries.value) as product
    from entries as left_entries
    inner join entries as right_entries
        on left_entries.matrix_id = right_entries.matrix_id
        and left_entries.row_index = right_entries.row_index
    group by 1, 2, 3

),

not_orthogonal as (

    select
        matrix_id,
        'OᵀO differs from the identity' as problem,
        max(abs(product - if(a = b, 1.0, 0.0))) as worst_error
    from products
    group by matrix_id
    having max(abs(product - if(a = b, 1.0, 0.0))) > {{ tolerance }}

)

select * from wrong_shape
union all
select * from not_orthogonal
{% endmacro %}
