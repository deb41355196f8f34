"""Iceberg and Delta Lake published tables: the guarantees the Hive tables have.

Per format, in processes of their own (their Spark session needs the format's
session catalog and jars, from the local_iceberg / local_delta target):

1. a build of v1 then v2, SIGKILLed while v2's rows are written (before they
   are published);
2. then, on what it left, ``lakehouse_scenarios.py`` in one pytest process:
   the killed build changed nothing published, v2 built again, every score
   kept, a rebuild in one commit, bad input and a failed audit publish
   nothing, unpublish, time travel.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PROJECT_DIR, wait_until

from stabilization_tools.synthetic import first_retrain, next_retrain, write_parquet

pytestmark = pytest.mark.integration

SCENARIOS = Path(__file__).with_name("lakehouse_scenarios.py")
CHILD = Path(__file__).with_name("child_process.py")
SCHEMA = "lakehouse"
JARS = PROJECT_DIR / ".venv" / "jars"


def write_retrains(data: Path) -> dict[str, tuple[str, str]]:
    first = first_retrain(users=60, items=30, dimension=4, seed=0)
    retrains = {"v1": first, "v2": next_retrain(first, noise=0.05, churn=0.1, seed=1)}
    relations = {}
    for version, retrain in retrains.items():
        write_parquet(data / version / "users", retrain.user_ids, retrain.users)
        write_parquet(data / version / "items", retrain.item_ids, retrain.items)
        relations[version] = tuple(
            f"parquet.`{data / version / side}`" for side in ("users", "items")
        )
    relations["v3"] = relations["v2"]
    return relations


def environment(table_format: str, root: Path) -> dict:
    environment = {
        **os.environ,
        "DBT_TARGET": f"local_{table_format}",
        "DBT_LAKEHOUSE_JARS": str(JARS),
        "DBT_SPARK_HOME": str(root / "home"),
        "DBT_SCHEMA": SCHEMA,
        "DBT_PROFILES_DIR": str(PROJECT_DIR / "profiles"),
        "SPARK_MASTER": "local[2]",
        "TABLE_FORMAT": table_format,
    }
    environment.pop("PYSPARK_GATEWAY_PORT", None)
    return environment


def staged_rows_written(table: Path, table_format: str, version: str) -> bool:
    """Whether a build has begun writing a version's rows (not yet published)."""
    if table_format == "iceberg":  # onto a branch: data files of the version's partition
        return any(table.glob(f"data/embedding_version={version}/*"))
    return any(table.glob(f"_staged/{version}-*/*/*"))


def published(table: Path, table_format: str, version: str) -> bool:
    return any(
        table.glob(f"{'data/' if table_format == 'iceberg' else ''}embedding_version={version}/*")
    )


@pytest.mark.parametrize("table_format", ["iceberg", "delta"])
def test_lakehouse_tables_keep_the_guarantees_of_the_hive_tables(table_format, tmp_path):
    assert any(JARS.glob("*.jar")), f"no jars in {JARS}: make jars fetches them"
    relations = write_retrains(tmp_path / "data")
    spec = {
        "target_path": str(tmp_path / "target"),
        "data_dir": str(tmp_path / "data"),
        "retrains": relations,
    }
    steps = tmp_path / "steps.json"
    steps.write_text(
        json.dumps(
            {
                **spec,
                "steps": [
                    ["build", version, *relations[version], {"table_format": table_format}]
                    for version in ("v1", "v2")
                ],
            }
        )
    )
    env = environment(table_format, tmp_path)
    tables = tmp_path / "home" / "warehouse" / f"{SCHEMA}.db"
    with open(tmp_path / "killed.out", "w") as log:
        killed = subprocess.Popen(
            [sys.executable, str(CHILD), str(steps)],
            cwd=PROJECT_DIR,
            env=env,
            start_new_session=True,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(
            lambda: (
                published(tables / "stabilization_runs", table_format, "v1")
                or killed.poll() is not None
            ),
            600,
            "v1 published",
        )
        wait_until(
            lambda: (
                staged_rows_written(tables / "stabilized_user_embeddings", table_format, "v2")
                or killed.poll() is not None
            ),
            300,
            "v2's rows being written",
            interval=0.01,
        )
    finally:
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait()
    assert killed.returncode == -signal.SIGKILL, (tmp_path / "killed.out").read_text()[-3000:]

    scenarios = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "-x",
            "--tb=short",
            str(SCENARIOS),
        ],
        cwd=PROJECT_DIR,
        env={**env, "LAKEHOUSE_SPEC": json.dumps(spec)},
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    failures = [line for line in scenarios.stdout.splitlines() if line.startswith(("E ", "FAILED"))]
    assert scenarios.returncode == 0, "\n".join(line[:400] for line in failures[-60:])
    assert " passed" in scenarios.stdout and "skipped" not in scenarios.stdout
