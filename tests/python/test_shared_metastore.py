"""Runs at once on a shared warehouse: a Hive metastore service on PostgreSQL
(scripts/shared_metastore.py, started and stopped here), each dbt run a process of its
own with the ``shared`` target (``shared_iceberg``, ``shared_delta``), as an
orchestrator starts them; the same runs for the published tables as Hive Parquet,
Iceberg (committing with the metastore's locks) and Delta tables, each format in a
schema of its own.

``make test-shared-metastore`` runs this (a CI step of its own: ``make test`` leaves
it out), each format on an xdist worker of its own with its own metastore: the runs of
one format mostly wait for each other, and the other formats' runs use the cores
meanwhile. The embedded Derby metastore admits one process at a time: these runs
could not share it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    PROJECT_DIR,
    SHORT_LIVED_JVM,
    build_arguments,
    max_relative_score_error,
    stabilized_by_numpy,
    write_retrain,
)

from stabilization_tools.synthetic import first_retrain, next_retrain

pytestmark = pytest.mark.integration

sys.path.insert(0, str(PROJECT_DIR / "scripts"))
import shared_metastore

DBT = Path(sys.executable).with_name("dbt")
FIRST = first_retrain(users=120, items=40, dimension=6, seed=0)
RETRAINS = {
    "v1": FIRST,
    **{f"v{n}": next_retrain(FIRST, seed=n - 1) for n in range(2, 6)},
}
#: the target of each format (profiles/profiles.yml)
TARGETS = {"hive": "shared", "iceberg": "shared_iceberg", "delta": "shared_delta"}
JARS = PROJECT_DIR / ".venv" / "jars"


@pytest.fixture(
    scope="module",
    params=[pytest.param(name, marks=pytest.mark.xdist_group(name)) for name in TARGETS],
)
def table_format(request) -> str:
    return request.param


def schema_of(table_format: str) -> str:
    return f"shared_{table_format}"


@pytest.fixture(scope="module")
def metastore(tmp_path_factory):
    """PostgreSQL and a Hive metastore service in front of it; both stopped at the end."""
    folder = tmp_path_factory.mktemp("shared_metastore")
    try:
        yield {**shared_metastore.start(folder), "folder": folder}
    finally:
        shared_metastore.stop(folder)
        assert not (folder / "postgres" / "postmaster.pid").exists(), "PostgreSQL still runs"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shared_inputs")
    return {version: write_retrain(folder / version, r) for version, r in RETRAINS.items()}


@pytest.fixture(scope="module")
def spark(metastore):
    """A Spark session of this process on the shared metastore, as a reader's: Delta's
    session catalog (Delta and Hive tables) and Iceberg's catalog as ``iceberg``."""
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[1]")
        .enableHiveSupport()
        .config("spark.sql.warehouse.dir", metastore["DBT_WAREHOUSE_DIR"])
        .config("spark.hadoop.hive.metastore.uris", metastore["HIVE_METASTORE_URIS"])
        .config("spark.jars", ",".join(map(str, sorted(JARS.glob("*.jar")))))
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config(
            "spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog"
        )
        .config("spark.sql.catalog.iceberg", "org.apache.iceberg.spark.SparkCatalog")
        .config("spark.sql.catalog.iceberg.type", "hive")
        .config("spark.sql.catalog.iceberg.uri", metastore["HIVE_METASTORE_URIS"])
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    yield session
    session.stop()


@pytest.fixture(scope="module")
def reader(spark, table_format):
    """What a reader reads of ``table_format``'s schema: its reader views
    (``published_…``), and for Iceberg the tables themselves through Iceberg's catalog
    (the views name them in the session catalog, which reads no Iceberg table here;
    Iceberg's own tables hold no unpublished row)."""
    schema = schema_of(table_format)

    def relation(name: str) -> str:
        if table_format == "iceberg":
            return f"iceberg.{schema}.{name.replace('published_', 'stabilized_')}"
        return f"{schema}.{name}"

    return {"spark": spark, "relation": relation, "schema": schema}


def start(metastore, table_format: str, folder: Path, command: list[str]) -> subprocess.Popen:
    """``command`` in a process of its own with ``table_format``'s shared target and the
    variables docs/shared-warehouse.md names; its output in ``folder``/output.txt."""
    folder.mkdir(parents=True, exist_ok=True)
    environment = {
        **{name: value for name, value in os.environ.items() if not name.startswith("PYSPARK")},
        **SHORT_LIVED_JVM,
        "DBT_TARGET": TARGETS[table_format],
        "DBT_PROFILES_DIR": str(PROJECT_DIR / "profiles"),
        "DBT_SCHEMA": schema_of(table_format),
        "DBT_LAKEHOUSE_JARS": str(JARS),
        "HIVE_METASTORE_URIS": metastore["HIVE_METASTORE_URIS"],
        "DBT_WAREHOUSE_DIR": metastore["DBT_WAREHOUSE_DIR"],
        "SPARK_MASTER": "local[1]",
        "DBT_TARGET_PATH": str(folder / "target"),
        "DBT_LOG_PATH": str(folder / "logs"),
    }
    with open(folder / "output.txt", "w") as output:
        return subprocess.Popen(
            command,
            cwd=PROJECT_DIR,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def start_dbt(metastore, table_format: str, folder: Path, arguments: list[str]):
    """dbt in a process of its own (:func:`start`)."""
    return start(metastore, table_format, folder, [str(DBT), *arguments])


def finished(process: subprocess.Popen, folder: Path) -> str:
    """The process's output and dbt's log, once it ended; fails unless it succeeded."""
    code = process.wait(timeout=900)
    output = (folder / "output.txt").read_text()
    assert code == 0, output[-5000:]
    log = folder / "logs" / "dbt.log"
    return output + (log.read_text(errors="replace") if log.exists() else "")


def build(inputs, table_format: str, version: str) -> list[str]:
    return build_arguments(version, *inputs[version], table_format=table_format)


def published_chain(reader) -> dict[str, str | None]:
    """{version: its base version} as readers see stabilization_runs."""
    rows = reader["spark"].sql(
        f"select embedding_version, base_version from {reader['relation']('stabilization_runs')}"
    )
    return {row[0]: row[1] for row in rows.collect()}


def in_chain_order(chain: dict[str, str | None]) -> list[str]:
    """The versions from the first (no base) along their bases; fails unless they form
    one line (one first version, no base shared by two versions, none left out)."""
    following = {}
    for version, base in chain.items():
        assert base not in following, (
            f"versions {following.get(base)} and {version} share base {base}: {chain}"
        )
        following[base] = version
    order, version = [], following.get(None)
    while version is not None:
        order.append(version)
        version = following.get(version)
    assert sorted(order) == sorted(chain), f"not one line: {chain}"
    return order


def published_embeddings(reader, table: str, version: str):
    rows = (
        reader["spark"]
        .sql(
            f"select id, embedding from {reader['relation'](table)} "
            f"where embedding_version = '{version}' order by id"
        )
        .collect()
    )
    return np.array([row[0] for row in rows]), np.array([row[1] for row in rows], np.float64)


def assert_published_as_numpy(reader, order: list[str]) -> None:
    """Each version readers see holds all its rows, every score of its retrain, and the
    rows of the same chain computed in numpy."""
    expected = stabilized_by_numpy({version: RETRAINS[version] for version in order})
    for version in order:
        tables = {}
        for table, (expected_ids, expected_rows) in expected[version].items():
            reader_view = table.replace("stabilized_", "published_")
            ids, rows = published_embeddings(reader, reader_view, version)
            np.testing.assert_array_equal(ids, expected_ids)
            np.testing.assert_allclose(
                rows, expected_rows, rtol=1e-5, atol=1e-5 * np.abs(expected_rows).max()
            )
            tables[table] = rows
        retrain = RETRAINS[version]
        w = retrain.users[np.argsort(retrain.user_ids)]
        t = retrain.items[np.argsort(retrain.item_ids)]
        error = max_relative_score_error(
            w, t, tables["stabilized_user_embeddings"], tables["stabilized_item_embeddings"]
        )
        assert error < 1e-5, f"{version}: scores changed by up to {error}"


#: Per format, what runs at once: a backfill of these versions (one process, a build of
#: each in turn, in a session that outlives each build) beside these daily builds (each
#: a process). Hive: the backfill beside the daily build of another version and its
#: retry while the first try still runs; Iceberg and Delta: the backfill beside a daily
#: build of one of its versions (the same version published twice, by each format's
#: commits), fewer builds: the lock that orders them is the same for every format.
AT_ONCE = {
    "hive": (["v1", "v2", "v3"], ["v4", "v4"]),
    "iceberg": (["v1", "v2"], ["v2"]),
    "delta": (["v1", "v2"], ["v2"]),
}


def runs_at_once(metastore, inputs, table_format, reader, tmp_path) -> None:
    """:data:`AT_ONCE`'s runs, started together on an empty schema: one build at a time
    in the schema (the others wait); the versions form one line, whichever took the
    lock first; every version holds its rows."""
    backfilled, daily = AT_ONCE[table_format]
    backfill = [
        sys.executable,
        str(PROJECT_DIR / "scripts" / "backfill.py"),
        "--versions",
        *backfilled,
        "--users",
        inputs["v1"][0].replace("/v1/", "/{version}/"),
        "--items",
        inputs["v1"][1].replace("/v1/", "/{version}/"),
        "--vars",
        json.dumps({"table_format": table_format}),
    ]
    locks_before = shared_metastore.locks_granted(metastore["folder"])
    runs = {"backfill": start(metastore, table_format, tmp_path / "backfill", backfill)}
    for number, version in enumerate(daily):
        name = f"{version}_{number}"
        runs[name] = start_dbt(
            metastore, table_format, tmp_path / name, build(inputs, table_format, version)
        )
    outputs = {name: finished(process, tmp_path / name) for name, process in runs.items()}
    waited = [name for name, output in outputs.items() if "waiting for the build lock" in output]
    assert len(waited) >= len(runs) - 1, {name: out[-2000:] for name, out in outputs.items()}
    chain = published_chain(reader)
    assert sorted(chain) == sorted({*backfilled, *daily})
    order = in_chain_order(chain)
    if not set(daily) & set(backfilled):  # the backfill's versions in its order
        assert [version for version in order if version in backfilled] == backfilled
    assert_published_as_numpy(reader, order)
    # the lock was given back: no view left in the schema
    tables = [row[1] for row in reader["spark"].sql(f"show tables in {reader['schema']}").collect()]
    assert "stabilization_build_lock" not in tables
    # Iceberg committed with the metastore's table locks; Hive and Delta take none
    locks_taken = shared_metastore.locks_granted(metastore["folder"]) - locks_before
    assert (locks_taken > 0) == (table_format == "iceberg"), locks_taken


def unpublish_beside_a_build(metastore, inputs, table_format, reader, tmp_path) -> None:
    """A build of v5 and unpublish_versions of the latest version started together: one
    waits for the other; the version taken back is gone from every reader view, v5
    holds all its rows and is aligned to a version that was published."""
    published_before = published_chain(reader)
    latest = in_chain_order(published_before)[-1]
    unpublish = [
        "run-operation",
        "unpublish_versions",
        "--args",
        json.dumps({"versions": [latest]}),
        "--vars",
        json.dumps({"table_format": table_format}),
    ]
    runs = {
        "v5": start_dbt(
            metastore, table_format, tmp_path / "v5", build(inputs, table_format, "v5")
        ),
        "unpublish": start_dbt(metastore, table_format, tmp_path / "unpublish", unpublish),
    }
    outputs = {name: finished(process, tmp_path / name) for name, process in runs.items()}
    assert f"unpublished version {latest}" in outputs["unpublish"]
    assert any("waiting for the build lock" in output for output in outputs.values())
    chain = published_chain(reader)
    assert latest not in chain and "v5" in chain
    assert chain["v5"] in published_before
    for view in ("published_user_embeddings", "published_item_embeddings"):
        left = reader["spark"].sql(
            f"select 1 from {reader['relation'](view)} where embedding_version = '{latest}'"
        )
        assert left.count() == 0, f"{view} still shows {latest}"
    # v5 is whole and equals numpy's alignment onto the base it was built on
    base_chain = in_chain_order(
        {**published_before, "v5": chain["v5"]} if chain["v5"] == latest else chain
    )
    assert_published_as_numpy(reader, base_chain[: base_chain.index("v5") + 1])


def test_runs_at_once_on_a_shared_metastore(metastore, inputs, table_format, reader, tmp_path):
    """Runs at once (:func:`runs_at_once`), in one schema per format; then, on Hive's, a
    build beside unpublish_versions (:func:`unpublish_beside_a_build`: Iceberg's and
    Delta's own unpublishing is test_lakehouse.py's)."""
    runs_at_once(metastore, inputs, table_format, reader, tmp_path / "at_once")
    if table_format == "hive":
        unpublish_beside_a_build(metastore, inputs, table_format, reader, tmp_path / "unpublish")
