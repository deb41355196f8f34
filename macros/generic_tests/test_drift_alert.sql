{#
    One drift alert (macro drift_alerts) on stabilization_runs: fails, by
    default with severity warn (var drift_alert_severity), when the version
    being built raised it — or, without var embedding_version (`dbt test`),
    any published version. Each alert raised is also logged as a warning
    line naming the version, the figure and the threshold.

    The four alert tests of a build share one query (query_once): the first
    to run reads stabilization_runs, and every test selects its own alert's
    rows from that result, as literal rows.
#}
{% test drift_alert(model, alert) %}
    {{ return(adapter.dispatch('test_drift_alert')(model, alert)) }}
{% endtest %}

{% macro default__test_drift_alert(model, alert) %}
{%- set version = var('embedding_version', '') | string | trim -%}
{%- if not execute or load_relation(model) is none -%}
select embedding_version, figure, threshold, message
from ({{ drift_alerts(model) }}) as alerts
where alert = {{ sql_string(alert) }}
{%- else -%}
{%- set raised = [] -%}
{%- for row in query_once(drift_alerts(model)).rows -%}
    {%- set this_version = version in ('', 'None') or row['embedding_version'] == version -%}
    {%- if row['alert'] == alert and this_version -%}
        {%- do exceptions.warn(row['message']) -%}
        {%- do raised.append(row) -%}
    {%- endif -%}
{%- endfor -%}
select
    cast(embedding_version as string) as embedding_version,
    cast(figure as double) as figure,
    cast(threshold as double) as threshold,
    cast(message as string) as message
from values
{%- for row in raised %}
    ({{ sql_string(row['embedding_version']) }}, {{ sql_double(row['figure']) }},
        {{ sql_double(row['threshold']) }}, {{ sql_string(row['message']) }}){{ "," if not loop.last }}
{%- else %}
    (null, null, null, null)
{%- endfor %} as raised (embedding_version, figure, threshold, message)
{%- if raised | length == 0 %}
where false
{%- endif %}
{%- endif %}
{% endmacro %}
