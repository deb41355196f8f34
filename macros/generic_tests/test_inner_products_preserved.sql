{#
    Losslessness: every sampled user·item pair keeps its dot product,
    |w'·t' − w·t| ≤ tolerance · ‖w‖·‖t‖. Fails on each pair that does not
    (or whose error could not be computed).
#}
{% test inner_products_preserved(model, tolerance=1e-5) %}
    {{ return(adapter.dispatch('test_inner_products_preserved')(model, tolerance)) }}
{% endtest %}

{% macro default__test_inner_products_preserved(model, tolerance) %}
select
    user_id,
    item_id,
    raw_dot_product,
    stabilized_dot_product,
    relative_error
from {{ model }}
where relative_error > {{ tolerance }}
    or relative_error is null
{% endmacro %}
