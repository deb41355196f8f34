"""Iceberg and Delta Lake published tables: the guarantees the Hive tables have.

Per format, in processes of their own (their Spark session needs the format's
session catalog and jars, from the local_iceberg / local_delta target):

1. the inputs as tables of that format partitioned by ds (v1, v2),
   ``scripts/backfill.py --partition-column ds`` over them, then a rebuild of
   v2 SIGKILLed while it writes v2's rows again (before they are published);
2. then, on what it left, ``lakehouse_scenarios.py`` in one pytest process:
   the killed build changed nothing published; the next rebuild replaced v2
   in one commit, changing no row; every score kept; the input partition
   pruned; bad input publishes nothing; unpublish, then time travel.

On Spark 3.5 (``test_spark35.py`` runs this module in that environment, with its
jars: Iceberg's 3.5 runtime, Delta 3.3) what differs between the lines: both
versions published by the backfill (no kill: the same code on both lines), Delta's
staged files committed by its 3.3 classes with their row counts, the copying
fallback, and the readers that are not Spark.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PROJECT_DIR, run_pytest, sigkilled_on_leaving

from stabilization_tools.synthetic import first_retrain, next_retrain, write_parquet

pytestmark = pytest.mark.integration

SCENARIOS = Path(__file__).with_name("lakehouse_scenarios.py")
CHILD = Path(__file__).with_name("child_process.py")
SCHEMA = "lakehouse"
#: the jars of this Python's Spark line: .venv/jars (4.1), or .venv-spark3.5/jars when
#: test_spark35.py runs this module on Spark 3.5
JARS = Path(os.environ.get("DBT_LAKEHOUSE_JARS", PROJECT_DIR / ".venv" / "jars"))
#: Set by test_spark35.py: this module runs on Spark 3.5, with the scenarios of
#: :data:`SPARK35_SCENARIOS` only
ON_SPARK35 = bool(os.environ.get("LAKEHOUSE_SPARK35"))
SPARK35_SCENARIOS = "versions_are_published or delta_commits or delta_copies or python_readers"
#: The scenarios named after one format (``test_delta_…``) are not the other's.
OTHER_FORMAT = {"iceberg": "delta", "delta": "iceberg"}
V2 = {"embeddings_filter": "ds = 'v2'", "gram_method": "arrow"}


def write_retrains(data: Path) -> dict[str, str]:
    """Two retrains as Parquet folders; {version/side: relation}."""
    first = first_retrain(users=60, items=30, dimension=4, seed=0)
    retrains = {"v1": first, "v2": next_retrain(first, noise=0.05, churn=0.1, seed=1)}
    relations = {}
    for version, retrain in retrains.items():
        write_parquet(data / version / "users", retrain.user_ids, retrain.users)
        write_parquet(data / version / "items", retrain.item_ids, retrain.items)
        for side in ("users", "items"):
            relations[f"{version}/{side}"] = f"parquet.`{data / version / side}`"
    return relations


def input_table_statements(table_format: str, parquet: dict[str, str]) -> list[str]:
    """Both retrains as one input table per side in ``table_format``, partitioned by ds."""
    statements = [f"create schema if not exists {SCHEMA}"]
    for side in ("users", "items"):
        rows = " union all ".join(
            f"select id, embedding, '{version}' as ds from {parquet[f'{version}/{side}']}"
            for version in ("v1", "v2")
        )
        statements.append(
            f"create table {SCHEMA}.{side}_input using {table_format} partitioned by (ds) as {rows}"
        )
    return statements


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


def data_files(table: Path, table_format: str, version: str) -> int:
    """How many data files of a version a table's folder holds, published or not
    (Iceberg: also those of unpublished commits; Delta: also staged ones)."""
    if table_format == "iceberg":
        patterns = [f"data/embedding_version={version}/*"]
    else:  # files Delta wrote, and files staged (and committed) by this project
        patterns = [f"embedding_version={version}/*", f"staged/{version}-*/*/*"]
    return sum(len(list(table.glob(pattern))) for pattern in patterns)


@pytest.mark.parametrize("table_format", ["iceberg", "delta"])
def test_lakehouse_tables_keep_the_guarantees_of_the_hive_tables(table_format, tmp_path):
    assert any(JARS.glob("*.jar")), f"no jars in {JARS}: make jars fetches them"
    parquet = write_retrains(tmp_path / "data")
    spec = {
        "target_path": str(tmp_path / "target"),
        "data_dir": str(tmp_path / "data"),
        "inputs": [f"{SCHEMA}.users_input", f"{SCHEMA}.items_input"],
        "parquet": parquet,
    }
    backfill = ["--users", spec["inputs"][0], "--items", spec["inputs"][1]]
    backfill += [
        "--partition-column",
        "ds",
        "--vars",
        json.dumps({"table_format": table_format, "gram_method": "arrow"}),
    ]
    steps = tmp_path / "steps.json"
    steps.write_text(
        json.dumps(
            {
                **spec,
                "steps": [
                    ["sql", statement]
                    for statement in input_table_statements(table_format, parquet)
                ]
                + [["backfill", backfill]]
                + (
                    []
                    if ON_SPARK35
                    else [["build", "v2", *spec["inputs"], {"table_format": table_format, **V2}]]
                ),
            }
        )
    )
    env = environment(table_format, tmp_path)
    if ON_SPARK35:
        run_scenarios(
            ["-k", f"({SPARK35_SCENARIOS}) and not {OTHER_FORMAT[table_format]}_"], steps, spec, env
        )
        return
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
    users = tables / "stabilized_user_embeddings"
    with sigkilled_on_leaving(killed) as wait:
        wait(
            lambda: data_files(tables / "stabilization_runs", table_format, "v2"),
            600,
            "v2 published by the backfill",
        )
        published_files = data_files(users, table_format, "v2")
        wait(
            lambda: data_files(users, table_format, "v2") > published_files,
            300,
            "the rebuild writing v2's rows again",
            interval=0.01,
        )
    assert killed.returncode == -signal.SIGKILL, (tmp_path / "killed.out").read_text()[-3000:]

    run_scenarios(["-k", f"not {OTHER_FORMAT[table_format]}_"], None, spec, env)


def run_scenarios(selection: list[str], steps: Path | None, spec: dict, env: dict) -> None:
    """lakehouse_scenarios.py's ``selection`` in a pytest process of its own, after the
    child's ``steps`` when given, run by that process first: one JVM, whose later builds
    the steps' builds warmed, instead of two cold ones."""
    more = {"LAKEHOUSE_STEPS": str(steps)} if steps is not None else {}
    scenarios = run_pytest(
        sys.executable,
        ["-q", "-x", "--tb=short", str(SCENARIOS), *selection],
        env={**env, "LAKEHOUSE_SPEC": json.dumps(spec), **more},
        timeout=1500,
    )
    assert " passed" in scenarios.stdout and "skipped" not in scenarios.stdout
