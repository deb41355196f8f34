{#
    The rows of a read-only query that several nodes of one build ask at
    compile time (the base version, the drift alerts): run once per dbt
    invocation on the sparksession adapter (the first node to ask runs it, the
    others reuse its rows), every time on other adapters.
#}
{% macro query_once(sql) %}
    {{- return(adapter.dispatch('query_once')(sql)) -}}
{% endmacro %}

{% macro default__query_once(sql) %}
    {{- return(run_query(sql)) -}}
{% endmacro %}

{% macro sparksession__query_once(sql) %}
    {{- return(adapter.query_once(sql)) -}}
{% endmacro %}
