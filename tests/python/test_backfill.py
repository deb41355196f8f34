"""scripts/backfill.py: a history of retrains, partitions of one table, stabilized
in order; and what a kill does to what is published.

The history (3 partitions) is backfilled as a user runs it, in a process of its
own on its own DBT_SPARK_HOME, SIGKILLed while the second version's rows are being
written (before they are published), then started again (the script's main() in a
child process that then dumps the tables it published), with two more versions after
the history's that no partition holds: the first of them fails, and the backfill
stops there. While the resumed backfill holds the embedded metastore, a second
backfill on the same home is refused.

The resumed backfill ends with the tables of the same chain computed in numpy.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    PROJECT_DIR,
    SHORT_LIVED_JVM,
    plain_shell,
    sigkilled_on_leaving,
    stabilized_by_numpy,
    wait_until,
)

from stabilization_tools.synthetic import history as synthetic_history
from stabilization_tools.synthetic import write_history

pytestmark = pytest.mark.integration

# 3: the first published before the kill, the second killed while its rows are
# written, the third built after the resume; the third is another model (a
# retrain that learned something else): it raises drift alerts
PARTITIONS = [f"2026-11-{day:02d}" for day in range(1, 4)]
UNRELATED = PARTITIONS[-1]
#: versions the resumed backfill is also given, after the history's: in no partition
MISSING = ["2026-11-09", "2026-11-10"]
PLANNED = [*PARTITIONS, *MISSING]
BACKFILL = PROJECT_DIR / "scripts" / "backfill.py"
CHILD = Path(__file__).with_name("child_process.py")
SCHEMA = "backfill"
RETRAINS = synthetic_history(PARTITIONS, users=60, items=30, dimension=4, unrelated=(UNRELATED,))


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """3 retrains as one Parquet table per side, partitioned by ds (ds=… folders)."""
    return write_history(tmp_path_factory.mktemp("history"), RETRAINS)


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


def named_variables(home: Path) -> dict:
    """The variables docs/configuration.md names that the backfill's processes set: its
    own metastore and warehouse, schema, dbt's target and log folders, two cores."""
    return {
        "DBT_SPARK_HOME": str(home),
        "DBT_SCHEMA": SCHEMA,
        "DBT_TARGET_PATH": str(home.parent / "target"),
        "DBT_LOG_PATH": str(home.parent / "logs"),
        "SPARK_MASTER": "local[2]",
    }


def child_environment(home: Path) -> dict:
    environment = {
        **os.environ,
        **SHORT_LIVED_JVM,
        **named_variables(home),
        "DBT_PROFILES_DIR": str(PROJECT_DIR / "profiles"),
    }
    environment.pop("PYSPARK_GATEWAY_PORT", None)
    return environment


def in_a_plain_shell(home: Path, command: str) -> dict:
    """Popen's arguments for a documented command typed in a new login shell in the
    project's folder, with only the variables the docs name."""
    return {
        **plain_shell(command, home.parent / "user_home", **named_variables(home)),
        "cwd": PROJECT_DIR,
    }


def run_backfill(home: Path, arguments: list[str], output: Path, dump_after_exit_code=None):
    """The backfill as a user runs it: `make backfill ARGS="…"` in a plain shell, a process
    of its own (its own Spark). With ``dump_after_exit_code``: the same backfill (its
    main()), expected to end with that code, in a child process that then writes every
    published table to dump.json beside the home, on the Spark that built them."""
    if dump_after_exit_code is not None:
        steps = [["backfill", arguments, dump_after_exit_code]]
        command = [sys.executable, str(CHILD), str(dump_spec(home, steps))]
        how = {"args": command, "cwd": PROJECT_DIR, "env": child_environment(home)}
    else:
        how = in_a_plain_shell(home, f"make backfill ARGS={shlex.quote(shlex.join(arguments))}")
    with open(output, "a") as log:  # a file: a full pipe would block the child
        return subprocess.Popen(**how, start_new_session=True, stdout=log, stderr=subprocess.STDOUT)


def backfill_module():
    """scripts/backfill.py imported as a module (scripts/ put on the path once)."""
    if str(BACKFILL.parent) not in sys.path:
        sys.path.insert(0, str(BACKFILL.parent))
    return importlib.import_module("backfill")


def published_partitions(home: Path) -> list[str]:
    folder = home / "warehouse" / f"{SCHEMA}.db" / "stabilization_runs"
    return sorted(p.name for p in folder.glob("embedding_version=*")) if folder.exists() else []


def dump_spec(home: Path, steps: list) -> Path:
    """child_process.py's steps, then a dump of every published table (published_at
    left out) to dump.json beside the home."""
    spec = home.parent / "steps.json"
    spec.parent.mkdir(parents=True, exist_ok=True)
    steps = [*steps, ["dump", str(home.parent / "dump.json")]]
    target = str(home.parent / "target")
    spec.write_text(json.dumps({"steps": steps, "target_path": target, "data_dir": str(home)}))
    return spec


def dumped_tables(home: Path) -> dict:
    return json.loads((home.parent / "dump.json").read_text())


@pytest.fixture(scope="module")
def backfills(history, tmp_path_factory):
    """The backfill killed (SIGKILL) while the second version's rows are written and
    started again, with the intruder refused while it ran: what it had published at
    the kill, the resumed one's output and tables."""
    home = tmp_path_factory.mktemp("backfills") / "killed" / "home"
    home.parent.mkdir()
    staged_rows = home / "warehouse" / f"{SCHEMA}.db" / "stabilized_user_embeddings" / "_staged"
    killed = run_backfill(home, backfill_arguments(history), home.parent / "killed.out")
    with sigkilled_on_leaving(killed) as wait:
        wait(lambda: published_partitions(home), 900, "the first version published")
        wait(
            lambda: any(staged_rows.glob(f"{PARTITIONS[1]}-*/[!_]*")),
            300,
            "the second version's rows being written",
            interval=0.01,
        )
    published_at_kill = published_partitions(home)

    resumed_output = home.parent / "resumed.out"
    resumed_arguments = backfill_arguments(history, "--versions", *PLANNED)
    resumed = run_backfill(home, resumed_arguments, resumed_output, dump_after_exit_code=1)
    try:
        # it holds the metastore once it has looked for the versions published before
        wait_until(
            lambda: "published before" in resumed_output.read_text(),
            600,
            "the resumed backfill to read what was published",
        )
        intruder = subprocess.run(
            **in_a_plain_shell(
                home,
                f".venv/bin/python scripts/backfill.py {shlex.join(backfill_arguments(history))}",
            ),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        # the child exits 0 when the backfill ended with 1, its first missing version failed
        assert resumed.wait(timeout=1200) == 0, resumed_output.read_text()[-3000:]
    finally:
        if resumed.poll() is None:
            os.killpg(resumed.pid, signal.SIGKILL)
    return {
        "resumed": (home, resumed_output.read_text(), dumped_tables(home)),
        "published_at_kill": published_at_kill,
        "intruder": (intruder, resumed.pid),
    }


def published_version(tables: dict, name: str, version: str) -> tuple[np.ndarray, np.ndarray]:
    """(ids, float64 matrix) of one version of a dumped embedding table, ordered by id."""
    rows = sorted(
        (row["id"], row["embedding"]) for row in tables[name] if row["embedding_version"] == version
    )
    return np.array([row[0] for row in rows]), np.array([row[1] for row in rows], np.float64)


def test_backfill_aligns_each_partition_to_the_one_before(backfills):
    _, output, tables = backfills["resumed"]
    runs = tables["stabilization_runs"]
    assert [run["embedding_version"] for run in runs] == PARTITIONS
    assert [run["base_version"] for run in runs] == [None, *PARTITIONS[:-1]]
    assert all(run["max_dot_product_error"] < 1e-5 for run in runs)
    assert all(run["mean_cosine_stabilized"] > 0.9 for run in runs[1:-1])
    # the embeddings are those of the same chain computed in numpy
    for version, expected in stabilized_by_numpy(RETRAINS).items():
        for name, (expected_ids, expected_rows) in expected.items():
            ids, rows = published_version(tables, name, version)
            np.testing.assert_array_equal(ids, expected_ids)
            np.testing.assert_allclose(
                rows, expected_rows, rtol=1e-5, atol=1e-5 * np.abs(expected_rows).max()
            )
    # the progress bar (version i / N, the node running) and the summary table
    count, planned = len(PARTITIONS), len(PLANNED)
    assert f"{count}/{planned} {PARTITIONS[-1]}" in output and "int_transforms_solved" in output
    summary = output.rsplit(f"built {count - 1} of {planned} versions in", 1)[1]
    assert re.search(
        r"version +base +rows +aligned ids +stabilized cosine +max dot err +alerts +run", summary
    )
    assert re.search(rf"{PARTITIONS[0]} .* - +published before", summary), summary
    assert re.search(rf"{PARTITIONS[1]} .* - +built", summary), summary  # no alert


def test_the_backfill_summary_shows_the_drift_alerts_it_raised(backfills):
    """A warning in dbt's log is easy to miss: the summary lists each version's alerts,
    and their messages follow the table (the backfill still succeeds: they warn)."""
    _, output, _ = backfills["resumed"]
    summary = output.rsplit(f"of {len(PLANNED)} versions in", 1)[1]
    assert re.search(rf"{UNRELATED} .*stabilized_cosine.* built", summary), summary
    assert re.search(r"\d drift alerts? in 1 of 3 versions:", summary), summary
    assert (
        f"drift alert, version {UNRELATED}: stabilized cosine to base version {PARTITIONS[-2]} is"
    ) in summary


def test_fail_on_alert_makes_the_builds_fail_on_a_drift_alert_and_tells_it_apart():
    """--fail-on-alert sets the alerts' severity to error (what stops the build is
    tested in test_drift_alerts); a build that failed only on drift alerts is told
    apart from one that failed for another reason (its version is published)."""
    backfill = backfill_module()
    assert backfill.FAIL_ON_ALERT_VARS == {"drift_alert_severity": "error"}
    assert backfill.alert_stopped(["drift_alert_stabilized_cosine", "drift_alert_aligned_share"])
    assert not backfill.alert_stopped(["drift_alert_shape_change", "valid_ids_stg_retrain__users"])
    assert not backfill.alert_stopped(["drift_alert_shape_change", ""])  # and an exception
    assert not backfill.alert_stopped([])


def test_a_backfill_killed_while_writing_resumes_where_it_stopped(backfills):
    """Killed after the second version's rows were staged, before they were published:
    the first version stayed published and was not built again; the resumed backfill
    published the others (their tables: the test above) and removed the killed run's
    staged rows."""
    home, output, _ = backfills["resumed"]
    assert backfills["published_at_kill"] == [f"embedding_version={PARTITIONS[0]}"]
    assert f"1 of {len(PLANNED)} versions published before: skipped" in output, output[-3000:]
    # one folder per version: the published one
    staged = home / "warehouse" / f"{SCHEMA}.db" / "stabilized_user_embeddings" / "_staged"
    assert len(list(staged.glob(f"{PARTITIONS[1]}-*/[!_]*"))) == 1
    # and the killed run's owner file: one, the published run's
    assert len(list(staged.glob(f"{PARTITIONS[1]}-*/_*.owner"))) == 1


def test_a_second_run_on_an_embedded_metastore_in_use_is_refused(backfills):
    intruder, holder_pid = backfills["intruder"]
    home = backfills["resumed"][0]
    assert intruder.returncode != 0
    output = intruder.stdout + intruder.stderr
    assert f"the embedded metastore {home / 'metastore_db'} is in use by another process" in output
    assert f"pid {holder_pid}" in output


def test_a_failure_stops_the_backfill_and_keeps_what_was_published(backfills):
    """The first version in no partition fails (its input check names the filter), the
    versions before it stay published, and the one after it is not tried."""
    _, output, tables = backfills["resumed"]
    assert f"version {MISSING[0]} failed; the versions before it stay published." in output
    problem = f"the relation has no rows for filter `ds` = '{MISSING[0]}' (var embeddings_filter)"
    assert problem in output
    assert MISSING[1] not in output.split("failed;", 1)[1]
    runs = tables["stabilization_runs"]
    assert [run["embedding_version"] for run in runs] == PARTITIONS


def test_the_report_and_a_take_back_work_as_documented_in_a_plain_shell(backfills):
    """After the backfill, each in a new login shell: docs/operating.md's report of the
    three versions, then, in the README's shell (the virtualenv activated,
    DBT_PROFILES_DIR=profiles), the last version taken back with unpublish_versions."""
    home = backfills["resumed"][0]
    report = home.parent / "report.html"
    commands = (
        f".venv/bin/python scripts/report.py --output {report}",
        (
            "source .venv/bin/activate && export DBT_PROFILES_DIR=profiles"
            f" && dbt run-operation unpublish_versions --args '{{versions: [\"{UNRELATED}\"]}}'"
        ),
    )
    outputs = []
    for command in commands:
        run = subprocess.run(
            **in_a_plain_shell(home, command),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert run.returncode == 0, f"{command}\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
        outputs.append(run.stdout)
    assert f"wrote {report} (3 versions)" in outputs[0]
    assert all(version in report.read_text() for version in PARTITIONS)
    assert published_partitions(home) == [f"embedding_version={p}" for p in PARTITIONS[:-1]]
