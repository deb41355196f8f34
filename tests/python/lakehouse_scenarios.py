"""The published tables as Iceberg or Delta Lake tables (var ``table_format``).

Not collected by itself: ``test_lakehouse.py`` runs it in a pytest process of
its own per format (``TABLE_FORMAT``), whose Spark session has that format's
session catalog (the ``local_iceberg`` / ``local_delta`` target,
``DBT_TARGET``), on the home a killed build left (``DBT_SPARK_HOME``): v1
published, v2's rows written but not published when the build was SIGKILLed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import PUBLISHED_TABLES, DbtProject, max_relative_score_error, spark_session

pytestmark = pytest.mark.integration

TABLE_FORMAT = os.environ.get("TABLE_FORMAT", "")
EMBEDDING_TABLES = ("stabilized_user_embeddings", "stabilized_item_embeddings")


@pytest.fixture(scope="module")
def project():
    if TABLE_FORMAT not in ("iceberg", "delta"):
        pytest.skip("run by test_lakehouse.py, with TABLE_FORMAT iceberg or delta")
    spec = json.loads(os.environ["LAKEHOUSE_SPEC"])
    project = DbtProject(
        os.environ["DBT_SCHEMA"], Path(spec["target_path"]), Path(spec["data_dir"])
    )
    project.retrains = spec["retrains"]
    project.start_spark()
    return project


def build(project, version: str, **extra_vars):
    return project.build(
        version, *project.retrains[version], table_format=TABLE_FORMAT, **extra_vars
    )


def commits(table: str) -> list:
    """The commits readers of ``table`` see, oldest first (Iceberg: the snapshots of
    ``main``; Delta: the table's versions)."""
    if TABLE_FORMAT == "iceberg":
        rows = spark_session().sql(
            f"select snapshot_id from {table}.history where is_current_ancestor "
            "order by made_current_at"
        )
    else:
        rows = spark_session().sql(f"describe history {table}").select("version").orderBy("version")
    return [row[0] for row in rows.collect()]


def staged_leftovers(project, table: str) -> list[str]:
    """What a run left of the rows it staged (Iceberg: branches; Delta: staged folders)."""
    if TABLE_FORMAT == "iceberg":
        rows = spark_session().sql(f"select name from {table}.refs where name != 'main'")
        return [row[0] for row in rows.collect()]
    location = spark_session().sql(f"describe detail {table}").collect()[0]["location"]
    staged = Path(location.removeprefix("file:")) / "_staged"
    return [str(path) for path in staged.glob("*/*")] if staged.exists() else []


def versions_in(project, table: str) -> list[str]:
    rows = spark_session().sql(
        f"select distinct embedding_version from {project.schema}.{table} order by 1"
    )
    return [row[0] for row in rows.collect()]


@pytest.fixture(scope="module")
def after_the_kill(project):
    """What the killed build left published, then v2 built again (the next run)."""
    tables = [f"{project.schema}.{name}" for name in EMBEDDING_TABLES]
    left = {
        "versions": {name: versions_in(project, name) for name in PUBLISHED_TABLES},
        "commits": {table: commits(table) for table in tables},
        "staged": {table: staged_leftovers(project, table) for table in tables},
    }
    run = build(project, "v2")
    assert run.success, run.output[-5000:]
    return left


def test_a_build_killed_before_publishing_changed_nothing_published(project, after_the_kill):
    """v1 only, with the commits of v1's publication; the next run of v2 published it
    and removed what the killed one had staged."""
    assert after_the_kill["versions"] == {name: ["v1"] for name in PUBLISHED_TABLES}
    for table, before in after_the_kill["commits"].items():
        # the table's creation and v1's publication; then v2's, on top of them
        assert len(before) == 2, before
        assert commits(table)[: len(before)] == before
        assert len(commits(table)) == len(before) + 1
        assert staged_leftovers(project, table) == []
    assert any(after_the_kill["staged"].values()), "the kill came before any row was staged"


def test_versions_are_published_in_the_format_aligned_and_every_score_kept(project, after_the_kill):
    for name in PUBLISHED_TABLES:
        detail = spark_session().sql(f"describe table extended {project.schema}.{name}")
        provider = {row[0]: row[1] for row in detail.collect()}["Provider"]
        assert provider == TABLE_FORMAT, name
    runs = project.table("stabilization_runs")
    assert list(runs.embedding_version) == ["v1", "v2"]
    assert list(runs.base_version.fillna("-")) == ["-", "v1"]
    assert runs.mean_cosine_stabilized.iloc[1] > 0.9
    for version in ("v1", "v2"):
        users, items = project.retrains[version]
        raw_users = spark_session().sql(f"select * from {users} order by id").toPandas()
        raw_items = spark_session().sql(f"select * from {items} order by id").toPandas()
        _, published_users = project.embeddings("stabilized_user_embeddings", version)
        _, published_items = project.embeddings("stabilized_item_embeddings", version)
        error = max_relative_score_error(
            np.stack(raw_users.embedding),
            np.stack(raw_items.embedding),
            published_users,
            published_items,
        )
        assert error < 1e-5


def test_a_rebuild_replaces_the_version_in_one_commit(project, after_the_kill):
    tables = [f"{project.schema}.{name}" for name in EMBEDDING_TABLES]
    before, commits_before = (
        project.published_tables(("published_at",)),
        {table: commits(table) for table in tables},
    )
    run = build(project, "v2")
    assert run.success, run.output[-5000:]
    assert project.published_tables(("published_at",)) == before
    for table in tables:
        assert commits(table)[:-1] == commits_before[table]
        assert staged_leftovers(project, table) == []


def test_bad_input_and_a_failed_audit_leave_every_published_table_as_it_was(
    project, after_the_kill
):
    tables = [f"{project.schema}.{name}" for name in PUBLISHED_TABLES]
    before = {table: commits(table) for table in tables}
    users, items = project.retrains["v2"]
    # bad input: refused by the input checks, before any row is written
    spark_session().sql(
        "select id, transform(embedding, x -> if(id = 3, cast('NaN' as float), x)) "
        f"as embedding from {users}"
    ).write.mode("overwrite").parquet(str(project.data_dir / "spoiled"))
    run = project.build(
        "v3", f"parquet.`{project.data_dir / 'spoiled'}`", items, table_format=TABLE_FORMAT
    )
    assert not run.success
    assert "null, NaN or infinite value" in run.output
    # a failed audit: v3's rows written (Iceberg: on a branch), not published
    run = build(project, "v3", dot_product_tolerance=1e-15)
    assert not run.success and "inner_products_preserved" in run.output
    assert {table: commits(table) for table in tables} == before
    assert versions_in(project, "stabilization_runs") == ["v1", "v2"]


def test_time_travel_reads_an_earlier_published_state_after_unpublishing(project, after_the_kill):
    table = f"{project.schema}.stabilized_user_embeddings"
    with_v2 = commits(table)[-1]
    run = project.invoke("run-operation", "unpublish_versions", "--args", "{versions: [v2]}")
    assert run.success, run.output[-3000:]
    assert {name: versions_in(project, name) for name in PUBLISHED_TABLES} == {
        name: ["v1"] for name in PUBLISHED_TABLES
    }
    # Iceberg: a snapshot id; Delta: a version number (the README shows both)
    travelled = spark_session().sql(
        f"select count(*) from {table} version as of {with_v2} where embedding_version = 'v2'"
    )
    assert travelled.collect()[0][0] == len(
        spark_session().sql(f"select * from {project.retrains['v2'][0]}").collect()
    )
