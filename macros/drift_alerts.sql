{#
    Versions whose retrain moved the embedding space far more than usual,
    one row per (version, alert): its figure, the threshold it crossed and a
    message naming all three. Read from stabilization_runs (`runs`), each
    version against its base version's row. Thresholds are vars; defaults
    sit outside the ranges measured on real ALS retrains (docs/evaluation.md):
    stabilized cosine 0.90–1.00 and Procrustes residual 0.05–0.45 at lag 1.

    - stabilized_cosine: mean same-id cosine of the aligned side(s),
      stabilized vs base, below var `drift_min_stabilized_cosine`;
    - procrustes_residual: ‖A·O − B‖ / ‖B‖ above var `drift_max_procrustes_residual`;
    - shape_change: the rank or the dimension differs from the base's;
    - aligned_share: ids the rotation was fitted on, as a share of the base
      version's ids of the aligned side(s), below var `drift_min_aligned_share`.
#}
{% macro drift_alerts(runs) %}
{%- set min_cosine = var('drift_min_stabilized_cosine') | float -%}
{%- set max_residual = var('drift_max_procrustes_residual') | float -%}
{%- set min_share = var('drift_min_aligned_share') | float -%}
with

runs_with_base as (

    select
        run.embedding_version,
        run.base_version,
        run.mean_cosine_stabilized,
        run.procrustes_residual,
        run.rank,
        run.dimension,
        base.rank as base_rank,
        base.dimension as base_dimension,
        run.aligned_ids / nullif(
            case run.align_on
                when 'items' then base.items
                when 'users' then base.users
                else base.users + base.items
            end, 0
        ) as aligned_share
    from {{ runs }} as run
    inner join {{ runs }} as base
        on run.base_version = base.embedding_version

),

alerts as (

    select
        embedding_version,
        'stabilized_cosine' as alert,
        mean_cosine_stabilized as figure,
        {{ min_cosine }} as threshold,
        concat(
            'stabilized cosine to base version ', base_version, ' is ',
            format_number(mean_cosine_stabilized, 3), ', below ', {{ min_cosine }},
            ' (var drift_min_stabilized_cosine)'
        ) as detail
    from runs_with_base
    where mean_cosine_stabilized < {{ min_cosine }}

    union all

    select
        embedding_version,
        'procrustes_residual',
        procrustes_residual,
        {{ max_residual }},
        concat(
            'Procrustes residual relative to base version ', base_version, ' is ',
            format_number(procrustes_residual, 3), ', above ', {{ max_residual }},
            ' (var drift_max_procrustes_residual)'
        )
    from runs_with_base
    where procrustes_residual > {{ max_residual }}

    union all

    select
        embedding_version,
        'shape_change',
        cast(rank as double),
        cast(base_rank as double),
        concat(
            'rank ', rank, ' and dimension ', dimension, ' differ from base version ',
            base_version, '''s (rank ', base_rank, ', dimension ', base_dimension, ')'
        )
    from runs_with_base
    where rank != base_rank or dimension != base_dimension

    union all

    select
        embedding_version,
        'aligned_share',
        aligned_share,
        {{ min_share }},
        concat(
            'aligned ids are ', format_number(aligned_share, 3), ' of base version ',
            base_version, '''s ids, below ', {{ min_share }}, ' (var drift_min_aligned_share)'
        )
    from runs_with_base
    where aligned_share < {{ min_share }}

)

select
    embedding_version,
    alert,
    figure,
    threshold,
    concat('drift alert, version ', embedding_version, ': ', detail) as message
from alerts
{%- endmacro %}
