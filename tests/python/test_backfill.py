"""scripts/backfill.py: a history of retrains, partitions of one table, stabilized
in order; killed half-way and started again, it ends with the tables of an
uninterrupted backfill."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import PROJECT_DIR, wait_until

from python_udfs.synthetic import write_history

pytestmark = pytest.mark.integration

PARTITIONS = [f"2026-11-{day:02d}" for day in range(1, 9)]
BACKFILL = PROJECT_DIR / "scripts" / "backfill.py"
CHILD = Path(__file__).with_name("child_process.py")


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """8 retrains as one Parquet table per side, partitioned by ds (ds=… folders)."""
    root = tmp_path_factory.mktemp("history")
    return write_history(root, PARTITIONS, users=60, items=30, dimension=4)


def backfill_arguments(history, *more: str) -> list[str]:
    return [
        "--users",
        history["users"],
        "--items",
        history["items"],
        "--partition-column",
        "ds",
        *more,
    ]


def backfill_in_process(backfill, environment: dict, arguments: list[str]) -> int:
    with pytest.MonkeyPatch.context() as patch:
        for key, value in environment.items():
            patch.setenv(key, value)
        return backfill.main(arguments)


@pytest.fixture(scope="module")
def uninterrupted(module_project, history, tmp_path_factory):
    """The backfill of all 8 partitions in this process (the suite's Spark session)."""
    sys.path.insert(0, str(BACKFILL.parent))
    import backfill

    folder = tmp_path_factory.mktemp("backfill_in_process")
    environment = {
        "DBT_SCHEMA": module_project.schema,
        "DBT_TARGET_PATH": str(folder / "target"),
        "DBT_LOG_PATH": str(folder / "logs"),
    }
    assert backfill_in_process(backfill, environment, backfill_arguments(history)) == 0
    return {"backfill": backfill, "environment": environment}


def test_backfill_aligns_each_partition_to_the_one_before(module_project, uninterrupted):
    runs = module_project.table("stabilization_runs", order_by="embedding_version")
    assert runs["embedding_version"].tolist() == PARTITIONS
    assert runs["base_version"].tolist() == [None, *PARTITIONS[:-1]]
    assert (runs["max_dot_product_error"] < 1e-5).all()
    assert (runs["mean_cosine_stabilized"].iloc[1:] > 0.9).all()


def test_a_failure_stops_the_backfill_and_keeps_what_was_published(
    module_project, history, uninterrupted, capsys
):
    before = module_project.published_tables()
    # 2026-11-09 is in no partition: the first build fails, nothing more is tried
    arguments = backfill_arguments(history, "--versions", "2026-11-09", "2026-11-10")
    code = backfill_in_process(uninterrupted["backfill"], uninterrupted["environment"], arguments)
    assert code == 1
    errors = capsys.readouterr().err
    assert "version 2026-11-09 failed; the versions before it stay published." in errors
    assert (
        "the relation has no rows for filter `ds` = '2026-11-09' (var embeddings_filter)" in errors
    )
    assert "2026-11-10" not in errors.split("failed;", 1)[1]
    assert module_project.published_tables() == before


def child_environment(home: Path) -> dict:
    environment = {
        **os.environ,
        "DBT_SPARK_HOME": str(home),
        "DBT_SCHEMA": "backfill",
        "DBT_PROFILES_DIR": str(PROJECT_DIR / "profiles"),
        "DBT_TARGET_PATH": str(home.parent / "target"),
        "DBT_LOG_PATH": str(home.parent / "logs"),
        "SPARK_MASTER": "local[2]",
    }
    environment.pop("PYSPARK_GATEWAY_PORT", None)
    return environment


def run_backfill(home: Path, arguments: list[str], output: Path) -> subprocess.Popen:
    with open(output, "a") as log:  # a file: a full pipe would block the child
        return subprocess.Popen(
            [sys.executable, str(BACKFILL), *arguments],
            cwd=PROJECT_DIR,
            env=child_environment(home),
            start_new_session=True,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def published_partitions(home: Path) -> list[str]:
    folder = home / "warehouse" / "backfill.db" / "stabilization_runs"
    return sorted(p.name for p in folder.glob("embedding_version=*")) if folder.exists() else []


def test_a_killed_backfill_resumes_to_the_tables_of_an_uninterrupted_one(
    module_project, history, uninterrupted, tmp_path
):
    home = tmp_path / "spark_home"
    output = tmp_path / "backfill.out"
    process = run_backfill(home, backfill_arguments(history), output)
    try:
        wait_until(lambda: len(published_partitions(home)) >= 3, 600, "3 versions published")
        time.sleep(5)  # into the next version's build
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    killed_at = len(published_partitions(home))
    assert 3 <= killed_at < len(PARTITIONS), output.read_text()[-3000:]

    resumed = run_backfill(home, backfill_arguments(history), output)
    assert resumed.wait(timeout=900) == 0, output.read_text()[-3000:]
    text = output.read_text()
    skipped = re.search(r"(\d) of 8 versions published before: skipped", text)
    assert skipped and int(skipped.group(1)) >= 3, text[-3000:]
    summary = text.rsplit("versions in", 1)[1]
    for version in PARTITIONS:
        assert version in summary

    dump = tmp_path / "dump.json"
    spec = tmp_path / "dump_steps.json"
    spec.write_text(
        json.dumps(
            {
                "steps": [["dump", str(dump)]],
                "target_path": str(tmp_path / "target"),
                "data_dir": str(tmp_path),
            }
        )
    )
    subprocess.run(
        [sys.executable, str(CHILD), str(spec)],
        cwd=PROJECT_DIR,
        env=child_environment(home),
        check=True,
        capture_output=True,
    )
    reference = module_project.published_tables(drop_columns=("published_at",))
    assert json.loads(dump.read_text()) == reference
