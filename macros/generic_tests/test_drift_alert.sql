{#
    One drift alert (macro drift_alerts) on stabilization_runs: fails, by
    default with severity warn (var drift_alert_severity), when the version
    being built raised it — or, without var embedding_version (`dbt test`),
    any published version. Each alert raised is also logged as a warning
    line naming the version, the figure and the threshold.
#}
{% test drift_alert(model, alert) %}
    {{ return(adapter.dispatch('test_drift_alert')(model, alert)) }}
{% endtest %}

{% macro default__test_drift_alert(model, alert) %}
{%- set version = var('embedding_version', '') | string | trim -%}
{%- set raised -%}
select embedding_version, figure, threshold, message
from ({{ drift_alerts(model) }}) as alerts
where alert = {{ sql_string(alert) }}
{%- if version not in ('', 'None') %}
    and embedding_version = {{ sql_string(version) }}
{%- endif %}
{%- endset -%}
{%- if execute and load_relation(model) is not none -%}
    {%- for row in run_query(raised).rows -%}
        {%- do exceptions.warn(row['message']) -%}
    {%- endfor -%}
{%- endif -%}
{{ raised }}
{% endmacro %}
