"""Faults: a run killed while publishing, and a second run on a busy metastore.

These runs happen in processes of their own (child_process.py), each on its
own DBT_SPARK_HOME, so they can be killed and can compete for a metastore.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

import pytest

from python_udfs.synthetic import first_retrain, next_retrain, write_parquet

pytestmark = pytest.mark.integration

PROJECT_DIR = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("child_process.py")
SCHEMA = "faults"


class Child:
    """A dbt process on one DBT_SPARK_HOME, in a process group of its own."""

    started: ClassVar[list[Child]] = []

    def __init__(self, home: Path, steps: list, name: str):
        self.home = home
        self.target_path = home.parent / f"target_{name}"
        home.parent.mkdir(parents=True, exist_ok=True)
        spec = home.parent / f"{name}.json"
        spec.write_text(json.dumps(
            {"steps": steps, "target_path": str(self.target_path), "data_dir": str(home.parent)}
        ))
        env = {
            **os.environ,
            "DBT_SPARK_HOME": str(home),
            "DBT_SCHEMA": SCHEMA,
            "DBT_PROFILES_DIR": str(PROJECT_DIR / "profiles"),
            "SPARK_MASTER": "local[2]",
        }
        env.pop("PYSPARK_GATEWAY_PORT", None)
        self.output_file = home.parent / f"{name}.out"
        with open(self.output_file, "w") as output:  # a file: a full pipe would block the child
            self.process = subprocess.Popen(
                [sys.executable, str(CHILD), str(spec)],
                cwd=PROJECT_DIR, env=env, start_new_session=True,
                stdout=output, stderr=subprocess.STDOUT,
            )
        Child.started.append(self)

    def output(self) -> str:
        return self.output_file.read_text(errors="replace")

    def wait(self, timeout=600) -> tuple[int, str]:
        self.process.wait(timeout=timeout)
        return self.process.returncode, self.output()

    def log_text(self) -> str:
        log = self.target_path / "logs" / "dbt.log"
        return log.read_text(errors="replace") if log.exists() else ""

    def kill(self):
        """SIGKILL the whole group: Python, dbt and the Spark JVM at once."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()


@pytest.fixture(autouse=True)
def no_child_left():
    yield
    while Child.started:
        Child.started.pop().kill()


def wait_for(condition, child: Child, timeout=600, what=""):
    deadline = time.monotonic() + timeout
    while not condition():
        if child.process.poll() is not None:
            pytest.fail(f"the run ended before {what}:\n{child.output()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def write_inputs(folder: Path) -> dict:
    first = first_retrain(users=5_000, items=500, dimension=16, seed=0)
    relations = {}
    for version, retrain in (("v1", first), ("v2", next_retrain(first, seed=1))):
        for side, ids, matrix in (
            ("users", retrain.user_ids, retrain.users), ("items", retrain.item_ids, retrain.items)
        ):
            path = folder / version / side
            write_parquet(path, ids, matrix, rows_per_file=max(1, len(ids) // 4))
            relations[version, side] = f"parquet.`{path}`"
    return relations


def build(relations, version):
    return ["build", version, relations[version, "users"], relations[version, "items"], {}]


def test_a_run_killed_while_publishing_loses_nothing_and_its_rerun_equals_a_clean_run(
    tmp_path, dbt_project
):
    relations = write_inputs(tmp_path / "inputs")
    # killed while the new version's rows are written into their folder of the
    # published user embeddings (write once: audited there, then published); the
    # folder appears when the first Python worker starts writing its file
    killed_home = tmp_path / "killed" / "home"
    warehouse = killed_home / "warehouse" / f"{SCHEMA}.db"
    mart = warehouse / "stabilized_user_embeddings"
    first_try = Child(killed_home, [build(relations, "v1"), build(relations, "v2")], "first_try")

    def kill_while_v2_is_written():
        wait_for(lambda: (warehouse / "stabilization_runs" / "embedding_version=v1").exists(),
                 first_try, what="v1 was published")
        wait_for(lambda: any(mart.glob("_staged/v2-*/*")),
                 first_try, what="v2 was being written")
        first_try.kill()

    killer = ThreadPoolExecutor(1).submit(kill_while_v2_is_written)
    # meanwhile, the reference: the same two versions built without a fault
    clean = {}
    for version in ("v1", "v2"):
        run = dbt_project.build(version, relations[version, "users"], relations[version, "items"])
        assert run.success, run.output
        clean[version] = dbt_project.published_tables(drop_columns=("published_at",))
    killer.result()
    assert "Completed successfully" not in first_try.log_text()  # the log of the v2 run

    # a second run on the same metastore, while the rerun holds it, is refused
    rerun = Child(killed_home, [build(relations, "v2"), ["dump", str(tmp_path / "rerun.json")]],
                  "rerun")
    wait_for(lambda: "START" in rerun.log_text(), rerun, what="the rerun started")
    intruder = Child(killed_home, [build(relations, "v1")], "intruder")
    code, output = intruder.wait()
    assert code != 0
    assert f"the embedded metastore {killed_home / 'metastore_db'} is in use by another process" \
        in output
    assert f"pid {rerun.process.pid}" in output

    code, output = rerun.wait()
    assert code == 0, output
    rerun_tables = json.loads((tmp_path / "rerun.json").read_text())
    assert rerun_tables == clean["v2"]
    # the killed run's folder is gone: one folder per version, the published one
    assert len(list(mart.glob("_staged/v2-*/*"))) == 1
    # v1, published before the kill, is exactly what it was
    for name, rows in clean["v1"].items():
        assert [row for row in rerun_tables[name] if row["embedding_version"] == "v1"] == rows


def test_files_a_killed_table_write_left_behind_do_not_block_the_rerun(dbt_project):
    """A kill between Spark writing a table's files and registering the table leaves
    files no table owns; the rerun removes them instead of failing with
    LOCATION_ALREADY_EXISTS (found by the backfill's kill test)."""
    from urllib.parse import urlparse

    from conftest import spark_session

    relations = dbt_project.write_retrain("v1", first_retrain(users=40, items=20, dimension=4))
    run = dbt_project.build("v1", *relations)
    assert run.success, run.output
    before = dbt_project.published_tables()
    spark = spark_session()
    orphaned = []
    for table in ("int_dot_products_sampled", "int_transforms_solved"):  # a SQL and a Python model
        rows = spark.sql(f"describe table extended {dbt_project.schema}.{table}").collect()
        location = Path(urlparse(next(r.data_type for r in rows if r.col_name == "Location")).path)
        kept = location.with_name(f"{table}_files")
        shutil.copytree(location, kept)
        spark.sql(f"drop table {dbt_project.schema}.{table}")
        kept.rename(location)  # the files are back, the table is not
        orphaned.append(location)

    run = dbt_project.build("v1", *relations)
    assert run.success, run.output
    for location in orphaned:
        assert f"removed files at file:{location} that no table owns" in run.output
    assert dbt_project.published_tables() == before
