"""scripts/backfill.py: a history of retrains, partitions of one table, stabilized
in order; killed half-way and started again, it ends with the tables of an
uninterrupted backfill.

Each backfill runs as a process of its own (as a user runs it: Spark starts in
it), on its own DBT_SPARK_HOME; the uninterrupted one and the one to be killed
run side by side.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import PROJECT_DIR, PUBLISHED_TABLES, wait_until

from python_udfs.synthetic import write_history

pytestmark = pytest.mark.integration

# 3: two published before the kill, the third built after the resume; the third
# is another model (a retrain that learned something else): it raises drift alerts
PARTITIONS = [f"2026-11-{day:02d}" for day in range(1, 4)]
UNRELATED = PARTITIONS[-1]
BACKFILL = PROJECT_DIR / "scripts" / "backfill.py"
CHILD = Path(__file__).with_name("child_process.py")
SCHEMA = "backfill"


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """3 retrains as one Parquet table per side, partitioned by ds (ds=… folders)."""
    root = tmp_path_factory.mktemp("history")
    return write_history(root, PARTITIONS, users=60, items=30, dimension=4, unrelated=(UNRELATED,))


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


def child_environment(home: Path) -> dict:
    environment = {
        **os.environ,
        "DBT_SPARK_HOME": str(home),
        "DBT_SCHEMA": SCHEMA,
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
    folder = home / "warehouse" / f"{SCHEMA}.db" / "stabilization_runs"
    return sorted(p.name for p in folder.glob("embedding_version=*")) if folder.exists() else []


def dump_tables(home: Path) -> dict:
    """Every published table of a home, as JSON records (published_at left out)."""
    dump = home.parent / "dump.json"
    spec = home.parent / "dump_steps.json"
    spec.write_text(
        json.dumps(
            {
                "steps": [["dump", str(dump)]],
                "target_path": str(home.parent / "target"),
                "data_dir": str(home.parent),
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
    return json.loads(dump.read_text())


def published_files(home: Path) -> dict[str, str]:
    """Every file of a home's published tables, and a hash of its bytes."""
    schema = home / "warehouse" / f"{SCHEMA}.db"
    return {
        str(path.relative_to(schema)): hashlib.sha256(path.read_bytes()).hexdigest()
        for table in PUBLISHED_TABLES
        for path in sorted((schema / table).rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def backfills(history, tmp_path_factory):
    """An uninterrupted backfill, and beside it one killed (SIGKILL) after 2 versions
    and started again; their homes and outputs."""
    root = tmp_path_factory.mktemp("backfills")
    clean_home, killed_home = root / "clean" / "home", root / "killed" / "home"
    clean_output, killed_output = root / "clean.out", root / "killed.out"
    clean = run_backfill(clean_home, backfill_arguments(history), clean_output)
    killed = run_backfill(killed_home, backfill_arguments(history), killed_output)
    try:
        wait_until(lambda: len(published_partitions(killed_home)) >= 2, 900, "2 versions published")
        time.sleep(5)  # into the next version's build
    finally:
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait()
    killed_at = len(published_partitions(killed_home))
    resumed = run_backfill(killed_home, backfill_arguments(history), killed_output)
    assert clean.wait(timeout=1200) == 0, clean_output.read_text()[-3000:]
    assert resumed.wait(timeout=1200) == 0, killed_output.read_text()[-3000:]
    return {
        "clean": (clean_home, clean_output.read_text(), dump_tables(clean_home)),
        "killed": (killed_home, killed_output.read_text(), dump_tables(killed_home)),
        "killed_at": killed_at,
    }


def test_backfill_aligns_each_partition_to_the_one_before(backfills):
    home, output, tables = backfills["clean"]
    runs = tables["stabilization_runs"]
    assert "Command `cli build` succeeded" in (home.parent / "logs" / "dbt.log").read_text()
    assert [run["embedding_version"] for run in runs] == PARTITIONS
    assert [run["base_version"] for run in runs] == [None, *PARTITIONS[:-1]]
    assert all(run["max_dot_product_error"] < 1e-5 for run in runs)
    assert all(run["mean_cosine_stabilized"] > 0.9 for run in runs[1:-1])
    # the progress bar (version i / N, the node running) and the summary table
    count = len(PARTITIONS)
    assert f"{count}/{count} {PARTITIONS[-1]}" in output and "int_transforms_solved" in output
    summary = output.rsplit(f"built {count} of {count} versions in", 1)[1]
    assert re.search(
        r"version +base +rows +aligned ids +stabilized cosine +max dot err +alerts +run", summary
    )
    for version in PARTITIONS[:-1]:
        assert re.search(rf"{version} .* - +built", summary), summary  # no alert


def test_the_backfill_summary_shows_the_drift_alerts_it_raised(backfills):
    """A warning in dbt's log is easy to miss: the summary lists each version's alerts,
    and their messages follow the table (the backfill still succeeds: they warn)."""
    _, output, _ = backfills["clean"]
    summary = output.rsplit(f"built {len(PARTITIONS)} of {len(PARTITIONS)} versions in", 1)[1]
    assert re.search(rf"{UNRELATED} .*stabilized_cosine.* built", summary), summary
    assert re.search(r"\d drift alerts? in 1 of 3 versions:", summary), summary
    assert (f"drift alert, version {UNRELATED}: stabilized cosine to base version "
            f"{PARTITIONS[-2]} is") in summary


def test_fail_on_alert_makes_the_builds_fail_on_a_drift_alert_and_tells_it_apart():
    """--fail-on-alert sets the alerts' severity to error (what stops the build is
    tested in test_drift_alerts); a build that failed only on drift alerts is told
    apart from one that failed for another reason (its version is published)."""
    sys.path.insert(0, str(PROJECT_DIR / "scripts"))
    import backfill

    assert backfill.FAIL_ON_ALERT_VARS == {"drift_alert_severity": "error"}
    assert backfill.alert_stopped(["drift_alert_stabilized_cosine", "drift_alert_aligned_share"])
    assert not backfill.alert_stopped(["drift_alert_shape_change", "valid_ids_stg_retrain__users"])
    assert not backfill.alert_stopped(["drift_alert_shape_change", ""])  # and an exception
    assert not backfill.alert_stopped([])


def test_a_killed_backfill_resumes_to_the_tables_of_an_uninterrupted_one(backfills):
    _, output, tables = backfills["killed"]
    assert 2 <= backfills["killed_at"] < len(PARTITIONS), output[-3000:]
    skipped = re.search(rf"(\d) of {len(PARTITIONS)} versions published before: skipped", output)
    assert skipped and int(skipped.group(1)) >= 2, output[-3000:]
    assert tables == backfills["clean"][2]


def test_a_failure_stops_the_backfill_and_keeps_what_was_published(history, backfills, tmp_path):
    home = backfills["clean"][0]
    before = published_files(home)
    output = tmp_path / "failed.out"
    # 2026-11-09 is in no partition: the first build fails, nothing more is tried
    arguments = backfill_arguments(history, "--versions", "2026-11-09", "2026-11-10")
    assert run_backfill(home, arguments, output).wait(timeout=600) == 1
    text = output.read_text()
    assert "version 2026-11-09 failed; the versions before it stay published." in text
    assert "the relation has no rows for filter `ds` = '2026-11-09' (var embeddings_filter)" in text
    assert "2026-11-10" not in text.split("failed;", 1)[1]
    assert published_files(home) == before  # byte for byte
