"""Write once, publish by metadata: the stabilized rows are written once, into a
folder of the published table, audited there and published by pointing the
version's partition at that folder. What a failed audit, a killed run and a
rebuild leave on disk."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from conftest import build_arguments, spark_session

from dbt.adapters.sparksession.publication import stage_for_publication
from python_udfs.spark import transformed
from stabilization_tools.synthetic import first_retrain, next_retrain

pytestmark = pytest.mark.integration

EMBEDDINGS = ("stabilized_user_embeddings", "stabilized_item_embeddings")


def location(schema: str, table: str, partition: str | None = None) -> Path:
    spec = f" partition (embedding_version = '{partition}')" if partition else ""
    rows = spark_session().sql(f"describe table extended {schema}.{table}{spec}").collect()
    return Path(urlparse(next(r.data_type for r in rows if r.col_name == "Location")).path)


def files(schema: str) -> dict[str, str]:
    """Every file under the published embedding tables: path → sha256 of its bytes."""
    found = {}
    for table in EMBEDDINGS:
        root = location(schema, table)
        for path in sorted(root.rglob("*")):
            if path.is_file():
                found[f"{table}/{path.relative_to(root)}"] = hashlib.sha256(
                    path.read_bytes()
                ).hexdigest()
    return found


def parquet_contents(found: dict[str, str]) -> list[tuple[str, str]]:
    """(table, sha256) of every Parquet file: what the tables hold, whatever the file names."""
    return sorted(
        (path.split("/", 1)[0], digest)
        for path, digest in found.items()
        if path.endswith(".parquet")
    )


@pytest.fixture(scope="module")
def published(module_project):
    """v1 and v2 published; v3 and v4, retrains after them, written for the unpublish test."""
    retrains = {"v1": first_retrain(users=300, items=80, dimension=6, seed=0)}
    for number in (2, 3, 4):
        retrains[f"v{number}"] = next_retrain(retrains[f"v{number - 1}"], seed=number - 1)
    relations = {
        version: module_project.write_retrain(version, r) for version, r in retrains.items()
    }
    for version in ("v1", "v2"):
        run = module_project.build(version, *relations[version])
        assert run.success, run.output
    return relations


def test_each_version_is_one_folder_of_the_published_table(module_project, published):
    schema = module_project.schema
    for table in EMBEDDINGS:
        root = location(schema, table)
        for version in ("v1", "v2"):
            folder = location(schema, table, version)
            # inside the table, in a folder partition discovery skips
            assert folder.parent.parent == root / "_staged", folder
            assert folder.parent.name.startswith(f"{version}-")
            # written by the Python workers that computed the rows (ArrowMapped), one
            # file per input partition, not by Spark's writer (part-…-<uuid>-c000, _SUCCESS)
            names = sorted(path.name for path in folder.iterdir())
            assert names and all(re.fullmatch(r"part-\d{5}\.snappy\.parquet", n) for n in names), (
                names
            )
        # the audit table is the very same folder: nothing was copied to publish it
        audit = "int_users_stabilized" if "user" in table else "int_items_stabilized"
        assert location(schema, audit) == location(schema, table, "v2")


def test_a_failed_audit_publishes_nothing_and_a_rebuild_keeps_only_what_readers_may_scan(
    module_project, published
):
    schema = module_project.schema
    tables_before = module_project.published_tables()
    files_before = files(schema)
    # a query that started before the rebuild: its tasks read the files it listed then
    in_flight = spark_session().table(f"{schema}.stabilized_user_embeddings")
    in_flight_files = in_flight.where("embedding_version = 'v2'").inputFiles()
    in_flight_rows = in_flight.where("embedding_version = 'v2'").count()
    replaced = location(schema, "stabilized_user_embeddings", "v2")

    # an audit fails (every float32 rounding is above this tolerance): nothing published
    run = module_project.build("v2", *published["v2"], dot_product_tolerance=1e-15)
    assert not run.success
    assert "inner_products_preserved" in run.output
    assert module_project.published_tables() == tables_before
    audited_but_refused = location(schema, "int_users_stabilized")
    assert audited_but_refused != location(schema, "stabilized_user_embeddings", "v2")
    assert {k: v for k, v in files(schema).items() if k in files_before} == files_before

    # a run killed after writing v2's rows, before publishing them, leaves a folder too
    killed = audited_but_refused.with_name("killed-run")
    shutil.copytree(audited_but_refused, killed)

    # rebuilt (a published version built again): same tables, same bytes; the refused and
    # killed runs' folders removed, the replaced one kept until v2's next publication
    run = module_project.build("v2", *published["v2"])
    assert run.success, run.output
    assert module_project.published_tables() == tables_before
    files_after = files(schema)
    new_v2 = {k: v for k, v in files_after.items() if k not in files_before}
    assert parquet_contents(new_v2) == parquet_contents(
        {k: v for k, v in files_before.items() if "/_staged/v2-" in k}
    )  # byte for byte
    assert {k: v for k, v in files_after.items() if k in files_before} == files_before
    assert not audited_but_refused.exists() and not killed.exists()
    assert replaced.exists() and replaced != location(schema, "stabilized_user_embeddings", "v2")
    assert spark_session().read.parquet(*in_flight_files).count() == in_flight_rows
    # v1 untouched: the same files at the same paths
    v1 = {k: v for k, v in files_before.items() if "/_staged/v1-" in k}
    assert {k: v for k, v in files_after.items() if "/_staged/v1-" in k} == v1


def test_a_table_of_an_earlier_release_is_published_into_the_same_way(module_project, published):
    """Tables written by the old insert_overwrite (a partition in its key=value folder):
    a rebuild points the partition at the new folder and keeps the old one (readers in
    flight), as it keeps the folder it replaced, and no older one: two runs' folders."""
    schema = module_project.schema
    spark = spark_session()
    table = f"{schema}.stabilized_item_embeddings"
    old_style = location(schema, "stabilized_item_embeddings") / "embedding_version=v2"
    spark.sql(f"select id, embedding from {table} where embedding_version = 'v2'").write.parquet(
        str(old_style)
    )
    spark.sql(
        f"alter table {table} partition (embedding_version = 'v2') set location '{old_style}'"
    )
    before = module_project.published_tables()

    run = module_project.build("v2", *published["v2"])
    assert run.success, run.output
    assert module_project.published_tables() == before
    assert location(schema, "stabilized_item_embeddings", "v2").parent.parent.name == "_staged"
    assert old_style.exists()
    for table in EMBEDDINGS:  # the published run; users: the run it replaced (items: old_style)
        runs = list((location(schema, table) / "_staged").glob("v2-*/[!_]*"))
        assert len(runs) == (2 if table == "stabilized_user_embeddings" else 1), runs


def unpublish(project, **arguments):
    return project.invoke("run-operation", "unpublish_versions", "--args", json.dumps(arguments))


def runs_listed(project) -> list[str]:
    return project.table("stabilization_runs")["embedding_version"].tolist()


def test_versions_are_unpublished_by_name_or_all_but_the_latest(module_project, published):
    """A bad latest version taken back: a build that aligned to it before is refused at
    publication, the next build aligns to the one before it; old versions let go with
    keep_latest; the other versions' files untouched. (On the module's v1 and v2, after
    the tests above rebuilt v2.)"""
    schema = module_project.schema
    run = module_project.build("v3", *published["v3"])
    assert run.success, run.output
    # v4 built up to its runs row (an orchestrator's per-model runs), aligned to v3
    v4_build = build_arguments("v4", *published["v4"])
    run = module_project.invoke(*v4_build, "--exclude", "stabilization_runs")
    assert run.success, run.output
    before = files(schema)
    v2_files = {k: v for k, v in before.items() if "/_staged/v2-" in k}
    assert v2_files

    # names checked before anything is dropped
    for arguments, message in [
        ({"versions": ["v2", "v9"]}, "version 'v9' is not published in schema " + schema),
        ({"versions": ["v2"], "keep_latest": 1}, "give either versions"),
        ({"keep_latest": 0}, "keep_latest must be a whole number"),
        ({"versions": "v2"}, "versions must be a non-empty list"),
    ]:
        run = unpublish(module_project, **arguments)
        assert not run.success and message in run.output, run.output
    assert runs_listed(module_project) == ["v1", "v2", "v3"] and files(schema) == before

    run = unpublish(module_project, versions=["v3"])
    assert run.success, run.output
    assert "unpublished version v3" in run.output
    assert runs_listed(module_project) == ["v1", "v2"]
    for table in ("stabilization_transforms", *EMBEDDINGS):  # and v4's, with no runs row yet
        assert set(module_project.table(table)["embedding_version"]) == {"v1", "v2", "v4"}, table
    assert "v4" not in set(module_project.table("published_item_embeddings")["embedding_version"])
    after = files(schema)
    for table in EMBEDDINGS:  # its rows' folder removed, not only its files
        assert list((location(schema, table) / "_staged").glob("v3-*")) == [], table
    assert after == {k: v for k, v in before.items() if "/_staged/v3-" not in k}  # byte for byte

    # v3 taken back while v4 was built: v4 would be published aligned to no version
    run = module_project.invoke(*v4_build, "--select", "stabilization_runs")
    assert not run.success
    assert (
        "This build aligned v4 to version v3, but version v3 has been unpublished since "
        "(another run): publishing v4 would fork the chain of versions."
    ) in run.output, run.output[-3000:]
    assert runs_listed(module_project) == ["v1", "v2"]
    run = module_project.build("v4", *published["v4"])
    assert run.success, run.output
    runs = module_project.table("stabilization_runs").set_index("embedding_version")
    assert runs.loc["v4", "base_version"] == "v2"  # the latest version still published

    run = unpublish(module_project, keep_latest=2)
    assert run.success, run.output
    assert runs_listed(module_project) == ["v2", "v4"]
    for table in EMBEDDINGS:
        assert list((location(schema, table) / "_staged").glob("v1-*")) == [], table
    assert {k: v for k, v in files(schema).items() if "/_staged/v2-" in k} == v2_files
    run = unpublish(module_project, keep_latest=2)
    assert run.success and "nothing to unpublish: 2 versions published" in run.output, run.output

    # v2 was aligned to v1, now let go: a rebuild could not reproduce v2, so it stops
    tables = module_project.published_tables()
    run = module_project.build("v2", *published["v2"])
    assert not run.success
    assert (
        "version v2 is published aligned to version v1, which is no longer published (no row "
        f"for it in {schema}.stabilization_runs)"
    ) in run.output, run.output[-3000:]
    assert module_project.published_tables() == tables


def test_a_published_table_with_other_columns_is_refused_before_publishing(
    module_project, published
):
    """A published table whose columns are not the ones its model selects (here one
    added by hand) stops that model before its partition is touched, naming both."""
    schema = module_project.schema
    latest = runs_listed(module_project)[-1]  # v4 after the unpublish test, else v2
    table = f"{schema}.stabilized_item_embeddings"
    spark_session().sql(f"alter table {table} add columns (model_name string)")
    folder = location(schema, "stabilized_item_embeddings", latest)
    before = module_project.published_tables()

    run = module_project.build(latest, *published[latest])
    assert not run.success
    assert (
        f"the SQL of {table} selects {{'id': 'bigint', 'embedding': 'array<float>', "
        "'embedding_version': 'string'} but the table has {'id': 'bigint', 'embedding': "
        "'array<float>', 'model_name': 'string', 'embedding_version': 'string'}: a "
        "published_partition model selects exactly the table's columns"
    ) in run.output, run.output
    assert location(schema, "stabilized_item_embeddings", latest) == folder
    assert module_project.published_tables() == before


@pytest.mark.parametrize("file_format, by_workers", [("parquet", True), ("orc", False)])
def test_rows_computed_on_arrow_batches_are_staged_by_their_workers_or_else_by_spark(
    spark_home, file_format, by_workers
):
    """Parquet on a local file system: the Python workers write the rows they
    computed; any other format: Spark's writer writes them. Either way the audit
    table over the staged folder holds exactly the rows, without the partition column."""
    spark = spark_session()
    schema = "staged_by_workers"
    spark.sql(f"create database if not exists {schema}")
    source = spark.createDataFrame(
        [(i, [float(i), 1.0], "v1") for i in range(20)],
        "id long, embedding array<float>, embedding_version string",
    ).repartition(3)
    swapped = transformed(source, np.array([[0.0, 1.0], [1.0, 0.0]]))

    staged = stage_for_publication(
        spark,
        swapped,
        audit_table=f"{schema}.audit_{file_format}",
        published_table=f"{schema}.published_{file_format}",
        partition_column="embedding_version",
        partition_value="v1",
        run_id="run-1",
        file_format=file_format,
    )

    audited = spark.table(f"{schema}.audit_{file_format}")
    assert audited.columns == ["id", "embedding"]
    assert sorted((r.id, list(r.embedding)) for r in audited.collect()) == [
        (i, [1.0, float(i)]) for i in range(20)
    ]
    names = sorted(p.name for p in Path(urlparse(staged).path).iterdir() if p.suffix != ".crc")
    workers_named = [re.fullmatch(r"part-\d{5}\.snappy\.parquet", n) is not None for n in names]
    assert names and all(named == by_workers for named in workers_named), names
