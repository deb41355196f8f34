"""Runs at once on a shared warehouse: a Hive metastore service on PostgreSQL
(scripts/shared_metastore.py, started and stopped here), each dbt run a process of its
own with the ``shared`` target, as an orchestrator starts them.

``make test-shared-metastore`` runs this (a CI step of its own: ``make test`` leaves
it out). The embedded Derby metastore admits one process at a time: these runs could
not share it.
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
SCHEMA = "shared_runs"
FIRST = first_retrain(users=120, items=40, dimension=6, seed=0)
RETRAINS = {
    "v1": FIRST,
    "v2": next_retrain(FIRST, seed=1),
    "v3": next_retrain(FIRST, seed=2),
    "v4": next_retrain(FIRST, seed=3),
}


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
def reader(metastore):
    """A Spark session of this process on the shared metastore, as a reader's."""
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[1]")
        .enableHiveSupport()
        .config("spark.sql.warehouse.dir", metastore["DBT_WAREHOUSE_DIR"])
        .config("spark.hadoop.hive.metastore.uris", metastore["HIVE_METASTORE_URIS"])
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    yield session
    session.stop()


def start_dbt(metastore, folder: Path, arguments: list[str]) -> subprocess.Popen:
    """dbt in a process of its own with the shared target and the variables
    docs/shared-warehouse.md names; its output in ``folder``/output.txt."""
    folder.mkdir(parents=True, exist_ok=True)
    environment = {
        **{name: value for name, value in os.environ.items() if not name.startswith("PYSPARK")},
        **SHORT_LIVED_JVM,
        "DBT_TARGET": "shared",
        "DBT_PROFILES_DIR": str(PROJECT_DIR / "profiles"),
        "DBT_SCHEMA": SCHEMA,
        "HIVE_METASTORE_URIS": metastore["HIVE_METASTORE_URIS"],
        "DBT_WAREHOUSE_DIR": metastore["DBT_WAREHOUSE_DIR"],
        "SPARK_MASTER": "local[1]",
        "DBT_TARGET_PATH": str(folder / "target"),
        "DBT_LOG_PATH": str(folder / "logs"),
    }
    with open(folder / "output.txt", "w") as output:
        return subprocess.Popen(
            [str(DBT), *arguments],
            cwd=PROJECT_DIR,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def finished(process: subprocess.Popen, folder: Path) -> str:
    """The process's output, once it ended; fails unless it succeeded."""
    code = process.wait(timeout=900)
    output = (folder / "output.txt").read_text()
    assert code == 0, output[-5000:]
    return output


def build(inputs, version: str) -> list[str]:
    return build_arguments(version, *inputs[version])


def published_chain(reader) -> dict[str, str | None]:
    """{version: its base version} as readers see stabilization_runs."""
    rows = reader.sql(f"select embedding_version, base_version from {SCHEMA}.stabilization_runs")
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
    rows = reader.sql(
        f"select id, embedding from {SCHEMA}.{table} where embedding_version = '{version}' "
        "order by id"
    ).collect()
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


def test_runs_at_once_wait_for_each_other_and_publish_one_chain(
    metastore, inputs, reader, tmp_path
):
    """v1, then v2 and v3 started together with a second run of v2 (an orchestrator's
    retry while the first try still runs): one at a time in the schema; the versions
    form one line, whichever took the lock first; every version holds its rows."""
    finished(start_dbt(metastore, tmp_path / "v1", build(inputs, "v1")), tmp_path / "v1")
    runs = {
        name: start_dbt(metastore, tmp_path / name, build(inputs, version))
        for name, version in (("v2", "v2"), ("v3", "v3"), ("v2_again", "v2"))
    }
    outputs = {name: finished(process, tmp_path / name) for name, process in runs.items()}
    waited = [name for name, output in outputs.items() if "waiting for the build lock" in output]
    assert len(waited) >= 2, {name: output[-2000:] for name, output in outputs.items()}
    chain = published_chain(reader)
    assert sorted(chain) == ["v1", "v2", "v3"]
    order = in_chain_order(chain)
    assert order[0] == "v1"
    assert_published_as_numpy(reader, order)
    # the lock was given back: no view left in the schema
    tables = [row[1] for row in reader.sql(f"show tables in {SCHEMA}").collect()]
    assert "stabilization_build_lock" not in tables


def test_unpublish_beside_a_build_leaves_a_consistent_chain(metastore, inputs, reader, tmp_path):
    """A build of v4 and unpublish_versions of the latest version started together: one
    waits for the other; the version taken back is gone from every reader view, v4
    holds all its rows and is aligned to a version that was published."""
    published_before = published_chain(reader)
    assert published_before, "test_runs_at_once… publishes the versions this one starts from"
    latest = in_chain_order(published_before)[-1]
    unpublish = [
        "run-operation",
        "unpublish_versions",
        "--args",
        json.dumps({"versions": [latest]}),
    ]
    runs = {
        "v4": start_dbt(metastore, tmp_path / "v4", build(inputs, "v4")),
        "unpublish": start_dbt(metastore, tmp_path / "unpublish", unpublish),
    }
    outputs = {name: finished(process, tmp_path / name) for name, process in runs.items()}
    assert f"unpublished version {latest}" in outputs["unpublish"]
    assert any("waiting for the build lock" in output for output in outputs.values())
    chain = published_chain(reader)
    assert latest not in chain and "v4" in chain
    assert chain["v4"] in published_before
    for view in ("published_user_embeddings", "published_item_embeddings"):
        left = reader.sql(f"select 1 from {SCHEMA}.{view} where embedding_version = '{latest}'")
        assert left.count() == 0, f"{view} still shows {latest}"
    # v4 is whole and equals numpy's alignment onto the base it was built on
    base_chain = in_chain_order(
        {**published_before, "v4": chain["v4"]} if chain["v4"] == latest else chain
    )
    assert_published_as_numpy(reader, base_chain[: base_chain.index("v4") + 1])
