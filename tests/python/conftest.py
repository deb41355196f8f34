"""Fixtures driving the dbt project on a local Spark session.

dbt runs in-process (``dbtRunner``) so the whole suite shares one Spark JVM
and one embedded metastore in a temporary ``DBT_SPARK_HOME``; tests are kept
apart by giving each its own target schema (``DBT_SCHEMA``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

from stabilization_tools.evaluation import max_relative_score_error  # noqa: F401 (for the test modules)

PROJECT_DIR = Path(__file__).resolve().parents[2]

#: The project's marts: every published version lives in these.
PUBLISHED_TABLES = (
    "stabilized_user_embeddings",
    "stabilized_item_embeddings",
    "stabilization_transforms",
    "stabilization_runs",
)

# CI runs on a clean clone, without hypothesis' example database: draw the same
# examples every run, so a run is red only for a change, not for a new draw.
# HYPOTHESIS_PROFILE=explore draws fresh ones.
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


#: The modules that take longest, longest first (make test's --durations): pytest-xdist
#: hands whole modules to its two workers in this order, so that no long module is
#: left to start when the other worker has nothing more to do.
SLOWEST_MODULES = (
    "test_backfill",
    "test_cluster",
    "test_connect",
    "test_publication",
    "test_how_dbt_is_run",
    "test_pipeline",
    "test_movielens",
    "test_chained_versions",
    "test_bad_input",
    "test_drift_alerts",
    "test_as_a_package",
    "test_partitioned_inputs",
    "test_adapter_suite",
    "test_faults",
    "test_failures",
)


def pytest_collection_modifyitems(items):
    rank = {name: number for number, name in enumerate(SLOWEST_MODULES)}
    items.sort(key=lambda item: rank.get(item.module.__name__.rsplit(".", 1)[-1], len(rank)))


#: The JVMs a test starts for one or two builds of tiny data (a backfill in a process of
#: its own, a standalone cluster and its driver) compile with C1 only: most of a cold
#: JVM's CPU is C2 compiling code whose speed never pays back on tiny data. Measured
#: (2026-11-30, the three modules on two workers): the backfill's set-up 238 -> 171 s,
#: the cluster's test 147 -> 75 s. Not the Spark Connect server, which serves many
#: builds and dbt's adapter suite (its module 238 s either way), nor the suite's own
#: session. A build's steady state is slower with C1 only (warm_build.py), so
#: users' profiles keep the JVM's default. Added to the JAVA_TOOL_OPTIONS this run has.
#: C1 alone also shrinks the JVM's default code cache from 240 MB to 48 MB, which one
#: build of the project filled (29,000 compiled methods, 2026-12-04: "CodeCache is full",
#: then tasks failed with "Out of space in CodeCache for adapters", a test failing at
#: random): the cache keeps the tiered default.
SHORT_LIVED_JVM = {
    "JAVA_TOOL_OPTIONS": (
        f"{os.environ.get('JAVA_TOOL_OPTIONS', '')} -XX:TieredStopAtLevel=1"
        " -XX:ReservedCodeCacheSize=240m"
    ).strip()
}


def plain_shell(command: str, user_home: Path, **named: str) -> dict:
    """subprocess's ``args`` and ``env`` for ``command`` as a user types it in a new
    login shell (``bash --login -c``): PATH from /etc/profile (no virtualenv's bin, no
    pyenv), an empty home (no ~/.dbt), no DBT_PROFILES_DIR; only ``named``, variables
    the docs name (docs/configuration.md), and JAVA_HOME if this machine sets it (and
    :data:`SHORT_LIVED_JVM`'s options, which change only the JVM's speed)."""
    user_home.mkdir(parents=True, exist_ok=True)
    java_home = {"JAVA_HOME": os.environ["JAVA_HOME"]} if "JAVA_HOME" in os.environ else {}
    environment = {"HOME": str(user_home), "LANG": "C.UTF-8", **java_home, **SHORT_LIVED_JVM}
    return {"args": ["bash", "--login", "-c", command], "env": {**environment, **named}}


def run_pytest(python: str, arguments: list[str], env: dict, timeout: int):
    """pytest in a process of its own (``python -m pytest``, in the project); fails with
    the run's failure lines (``E …``, ``FAILED …``; else its output's tail) and its
    stderr's tail (where a JVM that died says why) unless it succeeded. Returns the
    finished process."""
    run = subprocess.run(
        [python, "-m", "pytest", "-p", "no:cacheprovider", *arguments],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    failures = [line[:400] for line in run.stdout.splitlines() if line.startswith(("E ", "FAILED"))]
    stderr = f"\n--- stderr, last lines ---\n{run.stderr[-3000:]}"
    assert run.returncode == 0, ("\n".join(failures[-60:]) or run.stdout[-5000:]) + stderr
    return run


def build_arguments(version: str, users: str, items: str, **extra_vars) -> list[str]:
    """dbt's arguments to build one version from two input relations."""
    variables = {
        "embedding_version": version,
        "user_embeddings": users,
        "item_embeddings": items,
        **extra_vars,
    }
    # dbt's unit tests are run by test_unit_tests.py, not by every build
    return ["build", "--exclude-resource-type", "unit_test", "--vars", json.dumps(variables)]


def write_retrain(folder: Path, retrain) -> tuple[str, str]:
    """Write a synthetic retrain as Parquet in ``folder``/users and ``folder``/items (3 and
    2 files: several input partitions); return the two relations to pass as vars."""
    from stabilization_tools.synthetic import write_parquet

    users, items = folder / "users", folder / "items"
    write_parquet(
        users, retrain.user_ids, retrain.users, rows_per_file=max(1, len(retrain.user_ids) // 3)
    )
    write_parquet(
        items, retrain.item_ids, retrain.items, rows_per_file=max(1, len(retrain.item_ids) // 2)
    )
    return f"parquet.`{users}`", f"parquet.`{items}`"


#: dbt commands whose JSON artifacts (manifest.json, catalog.json) tests read
ARTIFACT_COMMANDS = ("parse", "docs", "compile", "ls", "list")


@dataclass
class DbtRun:
    success: bool
    output: str
    results: list


class DbtProject:
    """Runs dbt commands against one target schema."""

    def __init__(self, schema: str, target_path: Path, data_dir: Path):
        self.schema = schema
        self.target_path = target_path
        self.data_dir = data_dir

    def invoke(self, *args: str) -> DbtRun:
        from dbt.cli.main import dbtRunner

        os.environ["DBT_SCHEMA"] = self.schema
        log_path = self.target_path / "logs"
        result = dbtRunner().invoke(
            [
                *args,
                # no manifest.json and run_results.json but for the commands whose
                # artifacts the tests read: writing them took 0.3 s of a one-model
                # invocation's 1.5-2 s (2026-12-04); nothing else changes
                *([] if args[0] in ARTIFACT_COMMANDS else ["--no-write-json"]),
                "--project-dir",
                str(PROJECT_DIR),
                # explicit: dbt's adapter-test fixtures unset DBT_PROFILES_DIR
                "--profiles-dir",
                str(PROJECT_DIR / "profiles"),
                "--target-path",
                str(self.target_path),
                "--log-path",
                str(log_path),
                "--log-format-file",
                "text",
            ]
        )
        results = list(getattr(result.result, "results", None) or [])
        messages = [str(result.exception)] if result.exception is not None else []
        messages += [f"{run.node.unique_id}: {run.message}" for run in results if run.message]
        log_file = log_path / "dbt.log"
        output = "\n".join(messages)
        if log_file.exists():
            output += "\n" + log_file.read_text(errors="replace")
            log_file.unlink()
        return DbtRun(bool(result.success), output, results)

    def start_spark(self) -> None:
        """Have dbt start this process's Spark session (Hive metastore in DBT_SPARK_HOME),
        before anything reads it through ``spark_session()``."""
        run = self.invoke("show", "--inline", "select 1")
        assert run.success, run.output

    def build(self, version: str, users: str, items: str, **extra_vars) -> DbtRun:
        return self.invoke(*build_arguments(version, users, items, **extra_vars))

    def write_retrain(self, name: str, retrain) -> tuple[str, str]:
        """Write a synthetic retrain as Parquet; return the two relations to pass as vars."""
        return write_retrain(self.data_dir / name, retrain)

    def table(self, name: str, where: str = "true", order_by: str = "embedding_version"):
        """Return a table of this schema as pandas, ordered."""
        return (
            spark_session()
            .sql(f"select * from {self.schema}.{name} where {where} order by {order_by}")
            .toPandas()
        )

    def table_names(self) -> set[str]:
        """Names of the tables and views in this schema."""
        rows = spark_session().sql(f"show tables in {self.schema}").collect()
        return {row["tableName"] for row in rows}

    def published_tables(self, drop_columns: tuple[str, ...] = ()) -> dict[str, list[dict]]:
        """Every published table in full, as JSON records ordered by version, for comparisons."""
        tables = {}
        for name in PUBLISHED_TABLES:
            frame = self.table(name, order_by="embedding_version, 1")
            frame = frame.drop(columns=[c for c in drop_columns if c in frame.columns])
            tables[name] = json.loads(frame.to_json(orient="records", double_precision=15))
        return tables

    def embeddings(self, name: str, version: str) -> tuple[np.ndarray, np.ndarray]:
        """Return (ids, float64 matrix) of one published version, ordered by id."""
        frame = self.table(name, f"embedding_version = '{version}'", "id")
        return frame["id"].to_numpy(), np.stack(frame["embedding"].to_numpy()).astype(np.float64)


#: Debian's chromium (installed by `make test`), started as the machine's notes advise:
#: no sandbox as root, and no background connections on a closed network.
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium driven by Playwright (Playwright's own browsers are not downloaded)."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} not found: `make test` installs Debian's chromium (or set CHROMIUM)"
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def rendered_images(page) -> list[dict]:
    """Each <img> of a loaded page: the id of its <figure>, whether it decoded, its size."""
    return page.evaluate(
        """Array.from(document.images).map(img => ({
            figure: img.closest('figure') ? img.closest('figure').id : null,
            decoded: img.complete && img.naturalWidth > 0,
            width: img.naturalWidth, height: img.naturalHeight}))"""
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition, timeout: float, what: str, interval: float = 0.5):
    """Poll ``condition`` (an OSError counts as not yet) until true, or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except OSError:
            pass
        time.sleep(interval)
    pytest.fail(f"timed out waiting for {what}")


def pyspark_home() -> Path:
    """The Spark distribution inside the pyspark wheel (bin/spark-submit, jars/)."""
    import pyspark

    return Path(pyspark.__file__).parent


def isolated_python(folder: Path) -> Path:
    """This venv's interpreter with ``-S``, for Spark's Python workers in a test.

    Its packages stay on PYTHONPATH, but no ``.pth`` file is processed, so the
    editable install of ``python_udfs`` is not importable: the workers see the
    package only if it is shipped to them (``--py-files``, Connect artifacts).
    """
    script = folder / "isolated-python"
    site_packages = sysconfig.get_paths()["purelib"]
    script.write_text(
        "#!/bin/sh\n"
        f'PYTHONPATH="${{PYTHONPATH:+$PYTHONPATH:}}{site_packages}" exec {sys.executable} -S "$@"\n'
    )
    script.chmod(0o755)
    return script


@contextlib.contextmanager
def sigkilled_on_leaving(process: subprocess.Popen):
    """For a process started with ``start_new_session=True`` that a test kills at a
    chosen moment: yields ``wait(condition, timeout, what, interval=0.5)``, which
    waits (:func:`wait_until`) until ``condition`` holds or the process ended by itself
    (what it left is then checked, and fails); leaving the block SIGKILLs the process's
    group and reaps it, however the block ends."""

    def wait(condition, timeout: float, what: str, interval: float = 0.5) -> None:
        wait_until(lambda: condition() or process.poll() is not None, timeout, what, interval)

    try:
        yield wait
    finally:
        # a group that already ended (its last process exited) is gone: nothing to kill
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def stop_process_group(process: subprocess.Popen, timeout: float = 30) -> None:
    """Stop a server started with ``start_new_session=True``: SIGTERM, then SIGKILL."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def read_published(warehouse: Path, schema: str, name: str, version: str):
    """(ids, float64 matrix) of one published version, read from a warehouse's Parquet files.

    For the tests whose tables were written by another Spark (a cluster, a Connect server),
    without its metastore: the version's partition is the one folder of its staged copies
    left after publishing (write once, publish by metadata), or a key=value folder.
    """
    import pyarrow.parquet as pq

    from dbt.adapters.sparksession.publication import version_folder

    table_folder = warehouse / f"{schema}.db" / name
    staged = list(Path(version_folder(str(table_folder), version)).glob("[!_]*"))
    folders = staged or [table_folder / f"embedding_version={version}"]
    assert len(folders) == 1, f"{name} {version}: one published folder expected, found {folders}"
    table = pq.read_table(folders[0]).sort_by("id")
    matrix = np.stack(table.column("embedding").to_numpy(zero_copy_only=False))
    return table.column("id").to_numpy(), matrix.astype(np.float64)


def backfilled_elsewhere(data_dir: Path, retrains: dict, backfill):
    """Write the retrains as Parquet under ``data_dir`` and return what
    ``backfill(arguments)`` returned: the backfill's arguments for these versions, run
    by another Spark (a cluster, a Connect server)."""
    for version, retrain in retrains.items():
        write_retrain(data_dir / version, retrain)
    relation = f"parquet.`{data_dir}/{{version}}/{{side}}`"
    arguments = ["--versions", *retrains]
    arguments += ["--users", relation.replace("{side}", "users")]
    arguments += ["--items", relation.replace("{side}", "items")]
    return backfill(arguments)


def stabilized_by_numpy(retrains: dict) -> dict:
    """The published embeddings of a chain of retrains (each aligned on its items to the
    one before, the first only balanced), computed in numpy with the package's math:
    {version: {table name: (ids, float64 matrix)}}, rows ordered by id."""
    from python_udfs import stabilizing_transforms

    published, base = {}, None
    for version, retrain in retrains.items():
        sides = {}
        for side, ids, matrix in (
            ("users", retrain.user_ids, retrain.users),
            ("items", retrain.item_ids, retrain.items),
        ):
            order = np.argsort(ids)
            sides[side] = ids[order], matrix[order].astype(np.float64)
        (user_ids, w), (item_ids, t) = sides["users"], sides["items"]
        cross = None
        if base is not None:
            _, in_new, in_base = np.intersect1d(item_ids, base[0], return_indices=True)
            cross = t[in_new].T @ base[1][in_base]
        transforms = stabilizing_transforms(w.T @ w, t.T @ t, cross_items=cross)
        items = (item_ids, t @ transforms.item_transform)
        published[version] = {
            "stabilized_user_embeddings": (user_ids, w @ transforms.user_transform),
            "stabilized_item_embeddings": items,
        }
        base = items
    return published


def assert_published_alike(warehouse: Path, schema: str, retrains: dict) -> None:
    """The embeddings another Spark published in ``warehouse`` equal the same chain
    computed in numpy (same ids, the rows to float32 precision)."""
    for version, tables in stabilized_by_numpy(retrains).items():
        for name, (expected_ids, expected) in tables.items():
            ids, published = read_published(warehouse, schema, name, version)
            np.testing.assert_array_equal(ids, expected_ids)
            np.testing.assert_allclose(
                published, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max()
            )


def profile_target(name: str) -> dict:
    """A target of ``profiles/profiles.yml`` with its ``env_var()`` calls rendered.

    The adapter and Connect tests write profiles of their own (dbt's fixtures);
    they start from the project's targets so that both test the same settings.
    """
    import jinja2
    import yaml

    def env_var(key, default=None):
        if key not in os.environ and default is None:
            raise KeyError(f"profiles.yml needs environment variable {key}")
        return os.environ.get(key, default)

    def rendered(value):
        if isinstance(value, dict):
            return {key: rendered(item) for key, item in value.items()}
        if isinstance(value, str):
            return jinja2.Template(value).render(env_var=env_var)
        return value

    profiles = yaml.safe_load((PROJECT_DIR / "profiles" / "profiles.yml").read_text())
    return rendered(profiles["embedding_stabilization"]["outputs"][name])


def spark_session():
    from pyspark.sql import SparkSession

    return SparkSession.builder.getOrCreate()


@pytest.fixture(scope="session")
def spark_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("dbt_spark_home")
    os.environ["DBT_SPARK_HOME"] = str(home)
    os.environ["DBT_PROFILES_DIR"] = str(PROJECT_DIR / "profiles")
    os.environ.setdefault("SPARK_MASTER", "local[2]")
    return home


@pytest.fixture
def dbt_project(spark_home, tmp_path, request):
    """A dbt project on its own schema, named after the test."""
    schema = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:60].lower()
    return DbtProject(schema, tmp_path / "target", tmp_path / "data")


@pytest.fixture(scope="module")
def module_project(spark_home, tmp_path_factory, request):
    """A dbt project shared by the tests of one module (built once)."""
    schema = "m_" + request.module.__name__.rsplit(".", 1)[-1].lower()
    root = tmp_path_factory.mktemp(schema)
    return DbtProject(schema, root / "target", root / "data")
