"""Inputs as partitions of versioned tables: a filter var selects one retrain,
Spark prunes the other partitions, and a filter that selects nothing or does
not parse stops the run before anything is built."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import spark_session

from stabilization_tools.synthetic import first_retrain, next_retrain

pytestmark = pytest.mark.integration

PARTITIONS = ("2026-11-20", "2026-11-21", "2026-11-22")


def retrain_frame(ids, matrix, ds: str) -> pd.DataFrame:
    # Python floats (of float32 values): Spark 3.5 does not take numpy's float32 as FloatType
    embeddings = matrix.astype(np.float32).tolist()
    return pd.DataFrame({"id": ids, "embedding": embeddings, "ds": ds})


@pytest.fixture(scope="module")
def partitioned(module_project):
    """Tables user_emb and item_emb of three retrains, partitioned by ds (Hive tables)."""
    module_project.start_spark()
    spark = spark_session()
    spark.sql(f"create schema if not exists {module_project.schema}")
    retrains = [first_retrain(users=80, items=40, dimension=4, seed=0)]
    for seed in range(1, len(PARTITIONS)):
        retrains.append(next_retrain(retrains[-1], seed=seed))
    for side, table in (("users", "user_emb"), ("items", "item_emb")):
        frames = [
            retrain_frame(getattr(r, side[:-1] + "_ids"), getattr(r, side), ds)
            for r, ds in zip(retrains, PARTITIONS)
        ]
        schema = "id bigint, embedding array<float>, ds string"
        (
            spark.createDataFrame(pd.concat(frames, ignore_index=True), schema=schema)
            .write.partitionBy("ds")
            .format("parquet")
            .saveAsTable(f"{module_project.schema}.{table}")
        )
    relations = {
        "user_embeddings": f"{module_project.schema}.user_emb",
        "item_embeddings": f"{module_project.schema}.item_emb",
    }
    return {"retrains": dict(zip(PARTITIONS, retrains)), **relations}


def build(project, partitioned, version: str, **filters):
    return project.build(
        version, partitioned["user_embeddings"], partitioned["item_embeddings"], **filters
    )


@pytest.fixture(scope="module")
def published(module_project, partitioned):
    """The first two partitions built as versions, each read through a filter."""
    first, second = PARTITIONS[:2]
    run = build(module_project, partitioned, first, embeddings_filter=f"ds = '{first}'")
    assert run.success, run.output
    run = build(
        module_project,
        partitioned,
        second,
        user_embeddings_filter=f"ds = '{second}'",
        item_embeddings_filter=f"ds = '{second}'",
    )
    assert run.success, run.output
    return module_project.published_tables()


def test_each_version_holds_its_partition_only(module_project, partitioned, published):
    for version in PARTITIONS[:2]:
        retrain = partitioned["retrains"][version]
        ids, _ = module_project.embeddings("stabilized_user_embeddings", version)
        assert np.array_equal(ids, np.sort(retrain.user_ids))
        ids, _ = module_project.embeddings("stabilized_item_embeddings", version)
        assert np.array_equal(ids, np.sort(retrain.item_ids))
    runs = module_project.table("stabilization_runs")
    assert runs["base_version"].tolist() == [None, PARTITIONS[0]]


def test_the_filter_prunes_partitions_in_the_scan(module_project, published):
    plan = "\n".join(
        row[0]
        for row in spark_session()
        .sql(f"explain formatted select * from {module_project.schema}.stg_retrain__users")
        .collect()
    )
    scans = [line for line in plan.splitlines() if line.startswith("PartitionFilters:")]
    assert scans, plan
    # the filter of the last build, pushed into the file scan as a partition filter
    assert any(f"= {PARTITIONS[1]})" in line and "ds#" in line for line in scans), plan


def test_a_filter_that_selects_no_rows_stops_the_run(module_project, partitioned, published):
    run = build(
        module_project,
        partitioned,
        PARTITIONS[2],
        user_embeddings_filter="ds = '2031-01-01'",
        item_embeddings_filter=f"ds = '{PARTITIONS[2]}'",
    )
    assert not run.success
    assert (
        f"{partitioned['user_embeddings']} (var user_embeddings), column embedding: the relation "
        "has no rows for filter ds = '2031-01-01' (var user_embeddings_filter)"
    ) in run.output, run.output[-3000:]
    assert module_project.published_tables() == published


@pytest.mark.parametrize(
    ("predicate", "reason"),
    [
        (
            "dss = '2026-11-22'",
            # Spark's reason, whose wording differs between 3.5 and 4.x
            ("[UNRESOLVED_COLUMN.WITH_SUGGESTION] A column", "with name `dss` cannot be resolved"),
        ),
        ("ds =", ("[PARSE_SYNTAX_ERROR] Syntax error at or near ')'.",)),
    ],
)
def test_a_filter_spark_cannot_read_stops_the_run_before_anything_runs(
    module_project, partitioned, published, predicate, reason
):
    run = build(module_project, partitioned, PARTITIONS[2], embeddings_filter=predicate)
    assert not run.success
    expected = (
        f"{partitioned['user_embeddings']} (var user_embeddings) with filter {predicate} "
        f"(var embeddings_filter) cannot be read: {reason[0]}"
    )
    assert expected in run.output, run.output[-3000:]
    assert all(part in run.output for part in reason[1:]), run.output[-3000:]
    # refused while compiling the staging views: only the base-version lookup ran
    ran = {
        r.node.name
        for r in run.results
        if r.status in ("success", "pass") and r.node.resource_type != "operation"
    }
    assert ran <= {"int_versions_resolved"}, ran
    assert module_project.published_tables() == published
