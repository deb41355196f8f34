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

-- (OᵀO)[a][b] = Σ_i O[i][a]·O[i][b], row by row: e×e numbers, no join or shuffle
not_orthogonal as (

    select
        matrix_id,
        'OᵀO differs from the identity' as problem,
        array_max(flatten(transform(sequence(0, dimension - 1), a ->
            transform(sequence(0, dimension - 1), b -> abs(
                aggregate(matrix, cast(0 as double), (total, matrix_row) ->
                    total + element_at(matrix_row, a + 1) * element_at(matrix_row, b + 1))
                - if(a = b, 1.0, 0.0)))))) as worst_error
    from matrices
    where dimension > 0
        and size(matrix) = dimension
        and not exists(matrix, matrix_row -> size(matrix_row) != dimension)

)

select * from wrong_shape
union all
select * from not_orthogonal
where worst_error > {{ tolerance }}
{% endmacro %}
