{%- set base_version = resolve_base_version() -%}

with

resolved as (

    select
        {{ sql_string(embedding_version()) }} as embedding_version,
        {% if base_version is not none -%}
        {{ sql_string(base_version) }}
        {%- else -%}
        cast(null as string)
        {%- endif %} as base_version,
        {{ sql_string(var('align_on')) }} as align_on

)

select * from resolved
