"""The published tables as Iceberg or Delta Lake tables (var ``table_format``).

Not collected by itself: ``test_lakehouse.py`` runs it in a pytest process of
its own per format (``TABLE_FORMAT``), whose Spark session has that format's
session catalog (the ``local_iceberg`` / ``local_delta`` target,
``DBT_TARGET``), on the home a killed build left (``DBT_SPARK_HOME``): v1 and
v2 published by a backfill, then a rebuild of v2 SIGKILLed after it began
writing v2's rows again; on Spark 3.5 (no kill), on the home of the steps it
runs first itself (``LAKEHOUSE_STEPS``: child_process.py's, the backfill). The
inputs are tables of the format partitioned by ds (``LAKEHOUSE_SPEC``).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    PROJECT_DIR,
    PUBLISHED_TABLES,
    DbtProject,
    build_arguments,
    max_relative_score_error,
    spark_session,
)

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
    project.inputs, project.parquet = spec["inputs"], spec["parquet"]
    project.start_spark()
    if os.environ.get("LAKEHOUSE_STEPS"):  # the steps first, in this process (Spark 3.5)
        import child_process

        assert child_process.main(os.environ["LAKEHOUSE_STEPS"]) == 0, "the steps failed"
    return project


def build(project, version: str, partition: str | None = None, select=None, **extra_vars):
    """Build ``version`` from the inputs' partition ``partition`` (default: the version's);
    the nodes ``select`` selects (default: all)."""
    arguments = build_arguments(
        version,
        *project.inputs,
        table_format=TABLE_FORMAT,
        embeddings_filter=f"ds = '{partition or version}'",
        gram_method="arrow",  # Python models that write plain tables too
        **extra_vars,
    )
    return project.invoke(*arguments, *(["--select", select] if select else []))


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
    """What runs left of the rows they staged that no commit references (Iceberg:
    branches; Delta: staged folders no table version reads)."""
    if TABLE_FORMAT == "iceberg":
        rows = spark_session().sql(f"select name from {table}.refs where name != 'main'")
        return [row[0] for row in rows.collect()]
    location = spark_session().sql(f"describe detail {table}").collect()[0]["location"]
    staged = Path(location.removeprefix("file:")) / "staged"
    read = set()
    for version in commits(table):
        read |= set(files_read(f"{table} version as of {version}"))
    return [
        str(run)
        for run in staged.glob("*/[!_]*")
        if not any(file.startswith(f"{run}/") for file in read)
    ]


def files_read(relation: str, where: str = "true") -> list[str]:
    """The files the rows of ``relation`` (that satisfy ``where``) are read from."""
    rows = (
        spark_session()
        .sql(f"select distinct input_file_name() from {relation} where {where}")
        .collect()
    )
    return [row[0].removeprefix("file:").removeprefix("//") for row in rows]


def versions_in(project, table: str) -> list[str]:
    rows = spark_session().sql(
        f"select distinct embedding_version from {project.schema}.{table} order by 1"
    )
    return [row[0] for row in rows.collect()]


@pytest.fixture(scope="module")
def after_the_kill(project):
    """What the killed rebuild of v2 left published, then v2 rebuilt (the next run).
    On Spark 3.5 (test_lakehouse.py's 3.5 part) what the backfill published."""
    tables = [f"{project.schema}.{name}" for name in EMBEDDING_TABLES]
    left = {
        "versions": {name: versions_in(project, name) for name in PUBLISHED_TABLES},
        "tables": project.published_tables(("published_at",)),
        "readable": list(project.table("published_versions").embedding_version),
        "commits": {table: commits(table) for table in tables},
        "staged": {table: staged_leftovers(project, table) for table in tables},
        # Iceberg: how long each branch the killed run left outlives it (max ref age, ms)
        "retention": {
            table: [
                row[0]
                for row in spark_session()
                .sql(f"select max_reference_age_in_ms from {table}.refs where name != 'main'")
                .collect()
            ]
            for table in tables
        }
        if TABLE_FORMAT == "iceberg"
        else {},
    }
    if not os.environ.get("LAKEHOUSE_SPARK35"):  # on Spark 3.5: no kill, nothing to rebuild
        run = build(project, "v2")
        assert run.success, run.output[-5000:]
    return left


def test_a_killed_rebuild_changed_nothing_and_the_next_replaced_it_in_one_commit(
    project, after_the_kill
):
    """The rebuild SIGKILLed after writing v2's rows again left v1 and v2 as published,
    with their commits only; the next rebuild succeeded, added one commit per table,
    changed no row, and removed what the killed one had staged."""
    assert after_the_kill["versions"] == {name: ["v1", "v2"] for name in PUBLISHED_TABLES}
    assert after_the_kill["readable"] == ["v1", "v2"]  # the reader views
    assert any(after_the_kill["staged"].values()), "the kill came before any row was staged"
    for ages in after_the_kill["retention"].values():  # Iceberg: expiry removes them in 7 days
        assert all(age == 7 * 24 * 3600 * 1000 for age in ages), ages
    for table, before in after_the_kill["commits"].items():
        assert len(before) == 3, before  # the table's creation, v1's and v2's publication
        assert commits(table)[:-1] == before
        assert staged_leftovers(project, table) == []
    assert project.published_tables(("published_at",)) == after_the_kill["tables"]


def test_versions_are_published_in_the_format_aligned_and_every_score_kept(project, after_the_kill):
    for name in PUBLISHED_TABLES:
        detail = spark_session().sql(f"describe table extended {project.schema}.{name}")
        provider = {row[0]: row[1] for row in detail.collect()}["Provider"]
        assert provider == TABLE_FORMAT, name
    if TABLE_FORMAT == "delta":  # the staged files were committed by Delta's classes, not copied
        for name in EMBEDDING_TABLES:
            published = files_read(f"{project.schema}.{name}", "embedding_version = 'v2'")
            assert published and all("/staged/v2-" in file for file in published), published
    runs = project.table("stabilization_runs")
    assert list(runs.embedding_version) == ["v1", "v2"]
    assert list(runs.base_version.fillna("-")) == ["-", "v1"]
    assert runs.mean_cosine_stabilized.iloc[1] > 0.9
    for version in ("v1", "v2"):
        users, items = (project.parquet[f"{version}/{side}"] for side in ("users", "items"))
        raw_users = spark_session().sql(f"select * from {users} order by id").toPandas()
        raw_items = spark_session().sql(f"select * from {items} order by id").toPandas()
        # through the reader views, Spark views over the format's tables
        _, published_users = project.embeddings("published_user_embeddings", version)
        _, published_items = project.embeddings("published_item_embeddings", version)
        error = max_relative_score_error(
            np.stack(raw_users.embedding),
            np.stack(raw_items.embedding),
            published_users,
            published_items,
        )
        assert error < 1e-5


def test_the_input_filter_prunes_the_other_partitions_in_the_scan(project, after_the_kill):
    """The last build read partition ds = 'v2' of each input table only: the filter
    reaches the table's scan (Delta: a partition filter of the file scan; Iceberg:
    a filter of its batch scan, which skips the other partitions' files)."""
    plan = "\n".join(
        row[0]
        for row in spark_session()
        .sql(f"explain formatted select * from {project.schema}.stg_retrain__users")
        .collect()
    )
    if TABLE_FORMAT == "delta":
        scans = [line for line in plan.splitlines() if line.startswith("PartitionFilters:")]
        assert any("ds#" in line and "= v2)" in line for line in scans), plan
    else:
        scans = [line for line in plan.splitlines() if "users_input" in line and "filters=" in line]
        assert any("ds = 'v2'" in line for line in scans), plan


def test_bad_input_leaves_every_published_table_as_it_was(project, after_the_kill):
    tables = [f"{project.schema}.{name}" for name in PUBLISHED_TABLES]
    before = {table: commits(table) for table in tables}
    users, items = (project.parquet[f"v2/{side}"] for side in ("users", "items"))
    spark_session().sql(
        "select id, transform(embedding, x -> if(id = 3, cast('NaN' as float), x)) "
        f"as embedding from {users}"
    ).write.mode("overwrite").parquet(str(project.data_dir / "spoiled"))
    run = project.build(
        "v3", f"parquet.`{project.data_dir / 'spoiled'}`", items, table_format=TABLE_FORMAT
    )
    assert not run.success
    assert "null, NaN or infinite value" in run.output
    assert {table: commits(table) for table in tables} == before


def test_delta_commits_carry_row_counts_and_a_row_tracking_table_takes_them(
    project, after_the_kill
):
    """The staged files committed to a Delta table carry their row counts (numRecords,
    as Delta's log records them: what readers skip and count with); a table with row
    tracking, which needs them, takes a rebuild's commit and numbers its rows."""
    if TABLE_FORMAT != "delta":
        pytest.skip("Delta's statistics")
    table = f"{project.schema}.stabilized_user_embeddings"
    inputs = len(spark_session().sql(f"select * from {project.parquet['v2/users']}").collect())

    def committed_counts() -> list:
        """numRecords of each file of v2 the table holds, from Delta's log."""
        files = spark_session().sql(f"select * from {table}").inputFiles()
        location = spark_session().sql(f"describe detail {table}").collect()[0]["location"]
        log = Path(location.removeprefix("file:")) / "_delta_log"
        adds = {}
        for commit in sorted(log.glob("*.json")):
            for line in commit.read_text().splitlines():
                action = json.loads(line)
                if "add" in action:
                    adds[action["add"]["path"]] = action["add"].get("stats")
        counts = []
        for path, stats in adds.items():
            if path.startswith("staged/v2-") and any(file.endswith(path) for file in files):
                counts.append(json.loads(stats)["numRecords"] if stats else None)
        return counts

    counts = committed_counts()
    assert counts and None not in counts and sum(counts) == inputs, counts
    spark_session().sql(f"alter table {table} set tblproperties ('delta.enableRowTracking' = true)")
    run = build(project, "v2")
    assert run.success, run.output[-5000:]
    assert sum(committed_counts()) == inputs
    row_ids = spark_session().sql(
        f"select count(distinct _metadata.row_id) from {table} where embedding_version = 'v2'"
    )
    assert row_ids.collect()[0][0] == inputs


def test_delta_copies_the_rows_where_its_transaction_api_is_out_of_reach(
    project, after_the_kill, monkeypatch
):
    """Where Delta's own transaction classes cannot be reached (Spark Connect, a Delta
    build without them) the audited rows are copied by one ``replace where``
    transaction instead: one commit per table, the same rows, no staged leftovers."""
    if TABLE_FORMAT != "delta":
        pytest.skip("Delta's fallback")
    from dbt.adapters.sparksession import publication

    monkeypatch.setattr(publication, "commit_staged_files", lambda *arguments: None)
    tables = [f"{project.schema}.{name}" for name in EMBEDDING_TABLES]
    before = {table: commits(table) for table in tables}
    published = project.published_tables(("published_at",))
    run = build(project, "v2")
    assert run.success, run.output[-5000:]
    for table in tables:
        assert commits(table)[:-1] == before[table]
        copied = files_read(table, "embedding_version = 'v2'")
        assert copied and not any("/staged/" in file for file in copied), copied
        assert staged_leftovers(project, table) == []
    assert project.published_tables(("published_at",)) == published


def test_iceberg_publishes_when_main_moved_during_the_audit_one_process_per_step(
    project, after_the_kill
):
    """v3 (v1's retrain again) staged and audited by one dbt invocation, ``main`` moved by a compaction of
    every published table, then the marts built by another invocation (as an
    orchestrator runs them): the branch's commit lands on the moved ``main``."""
    if TABLE_FORMAT != "iceberg":
        pytest.skip("Iceberg's branches")
    run = build(
        project, "v3", partition="v1", select="path:models/staging path:models/intermediate"
    )
    assert run.success, run.output[-5000:]
    tables = [f"{project.schema}.{name}" for name in EMBEDDING_TABLES]
    for table in tables:
        compacted = spark_session().sql(
            f"call spark_catalog.system.rewrite_data_files(table => '{table}', "
            "options => map('rewrite-all', 'true'))"
        )
        assert compacted.collect()[0][0] > 0, table  # files rewritten: main moved
    before = {table: commits(table) for table in tables}
    published = project.published_tables(("published_at",))
    run = build(project, "v3", partition="v1", select="path:models/marts")
    assert run.success, run.output[-5000:]
    assert "CHERRYPICK" in run.output
    for table in tables:
        assert commits(table)[:-1] == before[table]  # one commit on the moved main
        assert versions_in(project, table.split(".")[1]) == ["v1", "v2", "v3"]
    after = project.published_tables(("published_at",))
    for name, rows in published.items():  # the versions published before are unchanged
        assert [r for r in after[name] if r["embedding_version"] != "v3"] == rows, name
    run = project.invoke("run-operation", "unpublish_versions", "--args", "{versions: [v3]}")
    assert run.success, run.output[-3000:]


#: the library each format's example in docs/reading.md reads with
READERS = {"iceberg": "pyiceberg", "delta": "deltalake"}
#: the placeholder of the examples' schema folder
EXAMPLE_FOLDER = 'Path("/data/warehouse/embeddings.db")'


def reading_example(library: str) -> str:
    """The Python example of docs/reading.md that reads with ``library``."""
    page = (PROJECT_DIR / "docs" / "reading.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", page, flags=re.DOTALL)
    [example] = [block for block in blocks if f"from {library}" in block]
    assert EXAMPLE_FOLDER in example
    return example


def sorted_by_id(rows) -> np.ndarray:
    """The embeddings of a pyarrow table, float64, ordered by id."""
    order = np.argsort(rows["id"].to_numpy())
    return np.stack(rows["embedding"].to_numpy(zero_copy_only=False))[order].astype(np.float64)


def test_python_readers_read_the_latest_version_and_travel_back_as_documented(
    project, after_the_kill
):
    """docs/reading.md's example for the format (PyIceberg, delta-rs: no Spark), run as
    written but for the schema's folder: the latest version is v2, the one published
    last; its scores are the input retrain's; the first publication, read by time
    travel, holds v1 only, with v1's scores."""
    location = (
        spark_session()
        .sql(f"describe table extended {project.schema}.stabilization_runs")
        .where("col_name = 'Location'")
        .collect()[0][1]
    )
    schema_folder = Path(location.removeprefix("file:")).parent
    example = reading_example(READERS[TABLE_FORMAT])
    example = example.replace(EXAMPLE_FOLDER, f"Path({str(schema_folder)!r})")
    read = {}
    exec(compile(example, "docs/reading.md", "exec"), read)  # noqa: S102 - the docs' own code

    def raw(version: str, side: str) -> np.ndarray:
        rows = spark_session().sql(f"select * from {project.parquet[f'{version}/{side}']}")
        return np.stack(rows.orderBy("id").toPandas().embedding).astype(np.float64)

    assert read["latest"] == "v2"
    assert set(read["users"]["embedding_version"].to_pylist()) == {"v2"}
    error = max_relative_score_error(
        raw("v2", "users"),
        raw("v2", "items"),
        sorted_by_id(read["users"]),
        sorted_by_id(read["items"]),
    )
    assert error < 1e-5
    first = read["first_published"]
    assert set(first["embedding_version"].to_pylist()) == {"v1"}
    _, items_v1 = project.embeddings("stabilized_item_embeddings", "v1")
    error = max_relative_score_error(
        raw("v1", "users"), raw("v1", "items"), sorted_by_id(first), items_v1
    )
    assert error < 1e-5


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
        spark_session().sql(f"select * from {project.parquet['v2/users']}").collect()
    )
