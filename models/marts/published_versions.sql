{{ config(materialized='view', pre_hook=["{{ ensure_audit_ledger() }}"]) }}
{#- The versions readers may read: rows of stabilization_runs, less any version
    whose rebuild began and has not finished (its published tables may hold rows
    of different runs until it does). See begin_publication. -#}

with

runs as (

    select * from {{ ref('stabilization_runs') }}

),

publications as (

    {{ publications(audit_ledger()) }}

),

readable as (

    select runs.*
    from runs
    left join publications
        on runs.embedding_version = publications.embedding_version
    where {{ version_readable('publications') }}

)

select * from readable
