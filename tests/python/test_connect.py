"""The project and the adapter through Spark Connect: dbt as a thin client of a real server.

A Spark Connect server from the Spark in the pyspark wheel (Hive support, its
own warehouse and metastore in a temporary folder, 127.0.0.1 on a free port)
whose Python workers cannot import ``python_udfs`` from site-packages: they get
it only as the artifact the ``connect`` target ships. dbt runs in child
processes with ``DBT_TARGET=connect``: a process that has opened a Connect
session is in Connect mode for good (pyspark's ``is_remote()``), so it cannot
share this one's classic session.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import (
    PROJECT_DIR,
    assert_published_alike,
    backfilled_elsewhere,
    build_arguments,
    free_port,
    isolated_python,
    pyspark_home,
    stop_process_group,
    wait_until,
)

from stabilization_tools.synthetic import first_retrain, next_retrain

pytestmark = pytest.mark.integration

SCHEMA = "over_connect"
#: The server requires this bearer token (``spark.connect.authenticate.token``), and the
#: clients' URL carries it with a header as a managed endpoint's does (Databricks: a
#: personal access token and the cluster's id, docs/deployments.md)
TOKEN = "dapi-test-0123456789"
HEADERS = ";x-databricks-cluster-id=0123-456789-abcdefgh"
#: dbt's console script of this venv
DBT = Path(sys.executable).with_name("dbt")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A Spark Connect server on 127.0.0.1, stopped by its process id."""
    root = tmp_path_factory.mktemp("connect_server")
    port = free_port()
    command = [
        str(pyspark_home() / "bin" / "spark-submit"),
        "--class",
        "org.apache.spark.sql.connect.service.SparkConnectServer",
        "--master",
        "local[2]",
        "--conf",
        "spark.connect.grpc.binding.address=127.0.0.1",
        "--conf",
        f"spark.connect.grpc.binding.port={port}",
        "--conf",
        f"spark.connect.authenticate.token={TOKEN}",
        "--conf",
        "spark.sql.catalogImplementation=hive",
        "--conf",
        f"spark.sql.warehouse.dir={root / 'warehouse'}",
        "--conf",
        (
            "spark.hadoop.javax.jdo.option.ConnectionURL="
            f"jdbc:derby:;databaseName={root / 'metastore_db'};create=true"
        ),
        "--conf",
        "spark.sql.shuffle.partitions=4",
        "--conf",
        "spark.sql.codegen.cache.maxEntries=1000",
        "--conf",
        "spark.ui.enabled=false",
        "--driver-java-options",
        f"-Dderby.stream.error.file={root / 'derby.log'} -Djava.io.tmpdir={root / 'tmp'}",
        "spark-internal",
    ]
    (root / "tmp").mkdir()
    # The server's Python workers follow PYSPARK_PYTHON in its environment (measured:
    # with --conf spark.pyspark.python they ran the python3 on PATH instead)
    env = {
        **os.environ,
        "SPARK_HOME": str(pyspark_home()),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": str(isolated_python(root)),
    }
    for name in ("PYSPARK_GATEWAY_PORT", "SPARK_REMOTE"):
        env.pop(name, None)
    log = root / "server.log"
    with open(log, "w") as output:
        process = subprocess.Popen(
            command,
            cwd=root,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(
            lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() or True,
            120,
            "the Spark Connect server",
        )
        # localhost: pyspark sends a token without TLS only to a local server
        url = f"sc://localhost:{port}/;token={TOKEN}{HEADERS}"
        yield {"url": url, "root": root, "log": log, "process": process}
    finally:
        stop_process_group(process)


def over_connect(
    url: str, folder: Path, command: list[str], schema: str = SCHEMA
) -> subprocess.CompletedProcess:
    """Run a command (dbt, a script) in a child process with the ``connect`` target."""
    folder.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DBT_TARGET": "connect",
        "SPARK_REMOTE": url,
        "DBT_SCHEMA": schema,
        "DBT_PROFILES_DIR": str(PROJECT_DIR / "profiles"),
        "DBT_TARGET_PATH": str(folder / "target"),
        "DBT_LOG_PATH": str(folder / "logs"),
    }
    env.pop("PYSPARK_GATEWAY_PORT", None)
    return subprocess.run(
        [sys.executable, *command],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def dbt_over_connect(
    url: str, folder: Path, *arguments: str, schema: str = SCHEMA
) -> subprocess.CompletedProcess:
    """Run one dbt command in a child process with the ``connect`` target."""
    return over_connect(
        url, folder, [str(DBT), *arguments, "--project-dir", str(PROJECT_DIR)], schema=schema
    )


def finished_tasks(log: Path) -> int:
    return log.read_text(errors="replace").count("Finished task")


def test_two_versions_over_connect_equal_numpy(server, tmp_path):
    first = first_retrain(users=400, items=120, dimension=8, seed=0)
    retrains = {"v1": first, "v2": next_retrain(first, seed=1)}
    tasks_before = finished_tasks(server["log"])
    # both versions in one client process (a backfill)
    backfill = [str(PROJECT_DIR / "scripts" / "backfill.py"), "--target", "connect"]
    remote = backfilled_elsewhere(
        tmp_path / "data",
        retrains,
        lambda arguments: over_connect(server["url"], tmp_path / "client", [*backfill, *arguments]),
    )
    assert remote.returncode == 0, remote.stdout[-8000:] + remote.stderr[-3000:]

    warehouse = server["root"] / "warehouse"
    assert_published_alike(warehouse, SCHEMA, retrains)
    runs = pq.read_table(warehouse / f"{SCHEMA}.db" / "stabilization_runs").to_pandas()
    assert sorted(runs["embedding_version"]) == ["v1", "v2"]
    assert runs["max_dot_product_error"].max() < 1e-6

    # the server did the work: its tasks ran (Python ones among them, in workers
    # that saw python_udfs only as this session's artifact)
    assert finished_tasks(server["log"]) > tasks_before + 50
    shipped = list((server["root"] / "tmp").rglob("python_udfs.zip"))
    assert shipped, "python_udfs.zip was not shipped to the server as an artifact"


def test_dbt_adapter_suite_over_connect(server, tmp_path):
    """dbt's adapter tests (test_adapter_suite.py) against the Connect server."""
    env = {**os.environ, "ADAPTER_SUITE_TARGET": "connect", "SPARK_REMOTE": server["url"]}
    env.pop("PYSPARK_GATEWAY_PORT", None)
    suite = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            "--basetemp",
            str(tmp_path / "suite"),
            str(PROJECT_DIR / "tests" / "python" / "test_adapter_suite.py"),
        ],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert suite.returncode == 0, suite.stdout[-10000:] + suite.stderr[-3000:]
    assert " passed" in suite.stdout and "skipped" not in suite.stdout


def test_a_failing_python_model_shows_its_traceback_over_connect(server, dbt_project, tmp_path):
    retrain = first_retrain(users=50, items=20, dimension=6, seed=0)
    other = first_retrain(users=50, items=20, dimension=4, seed=0)
    users, _ = dbt_project.write_retrain("users6", retrain)
    _, items = dbt_project.write_retrain("items4", other)
    run = dbt_over_connect(
        server["url"],
        tmp_path / "client",
        *build_arguments("bad", users, items),
        schema="failing_over_connect",
    )
    output = run.stdout + run.stderr
    assert run.returncode != 0
    assert "Python model model.embedding_stabilization.int_transforms_solved failed" in output
    assert "Traceback (most recent call last)" in output
    assert "user embeddings have dimension 6 but item embeddings have dimension 4" in output


def test_a_wrong_token_is_refused_and_never_shown(server, tmp_path):
    """The server checks the URL's token (every other test passes the right one, with a
    header beside it); a wrong one is a clear error that does not print it."""
    wrong = server["url"].replace(TOKEN, "dapi-wrong-token")
    run = dbt_over_connect(wrong, tmp_path, "debug")
    output = run.stdout + run.stderr
    assert run.returncode != 0
    assert "cannot reach the Spark Connect server at sc://localhost:" in output
    assert "UNAUTHENTICATED" in output, output[-3000:]
    assert ";token=***;x-databricks-cluster-id=" in output
    assert "dapi-wrong-token" not in output and TOKEN not in output


def test_an_unreachable_server_is_a_clear_error(tmp_path):
    url = f"sc://127.0.0.1:{free_port()}"  # nothing listens there
    run = dbt_over_connect(url, tmp_path, "debug")
    output = run.stdout + run.stderr
    assert run.returncode != 0
    assert f"cannot reach the Spark Connect server at {url}" in output
    assert "Traceback" not in output and "_InactiveRpcError" not in output
