"""The whole pipeline on a real Spark standalone cluster, through spark-submit.

A master and two workers, from the Spark in the pyspark wheel, on 127.0.0.1.
The executors run a Python that does not see the driver's site-packages
``.pth`` files (so not the editable install of ``python_udfs``): the package
reaches them only as the ``--py-files`` zip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pyspark
import pytest
from conftest import (
    SHORT_LIVED_JVM,
    assert_published_alike,
    backfilled_elsewhere,
    free_port,
    isolated_python,
    pyspark_home,
    stop_process_group,
    wait_until,
)

from stabilization_tools.synthetic import first_retrain, next_retrain

pytestmark = pytest.mark.integration

PROJECT_DIR = Path(__file__).resolve().parents[2]
SCHEMA = "on_cluster"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A standalone master and two 1-core workers; stopped by their process ids."""
    root = tmp_path_factory.mktemp("standalone")
    env = {
        **os.environ,
        **SHORT_LIVED_JVM,
        "SPARK_HOME": str(pyspark_home()),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOG_DIR": str(root / "logs"),
    }
    env.pop("PYSPARK_GATEWAY_PORT", None)
    spark_class = str(pyspark_home() / "bin" / "spark-class")
    port, ui_port = free_port(), free_port()
    master_url = f"spark://127.0.0.1:{port}"
    processes = []

    def start(name, *arguments):
        log = open(root / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        processes.append(
            subprocess.Popen(
                [spark_class, *arguments],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    try:
        start(
            "master",
            "org.apache.spark.deploy.master.Master",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--webui-port",
            str(ui_port),
        )
        status_url = f"http://127.0.0.1:{ui_port}/json/"
        wait_until(lambda: urllib.request.urlopen(status_url).status == 200, 60, "the master")
        work_dirs = []
        for number in (1, 2):
            work_dirs.append(root / f"worker{number}")
            start(
                f"worker{number}",
                "org.apache.spark.deploy.worker.Worker",
                "--host",
                "127.0.0.1",
                "--cores",
                "1",
                "--memory",
                "1536m",
                "--work-dir",
                str(work_dirs[-1]),
                "--webui-port",
                str(free_port()),
                master_url,
            )

        def alive_workers():
            status = json.loads(urllib.request.urlopen(status_url).read())
            return [w for w in status["workers"] if w["state"] == "ALIVE"]

        wait_until(lambda: len(alive_workers()) == 2, 60, "two workers")
        yield {"master_url": master_url, "work_dirs": work_dirs, "root": root}
    finally:
        for process in processes:
            stop_process_group(process, timeout=20)


#: Spark 3.5 (make test-spark3.5 runs this module on it too, test_spark35.py) publishes one
#: version: spark-submit on a 3.5 cluster. Aligning a version to the one before on
#: a cluster is the same code on both lines, and is tested on 4.x.
VERSIONS = ("v1",) if pyspark.__version__.startswith("3.") else ("v1", "v2")


@pytest.fixture(scope="module")
def retrains(cluster):
    first = first_retrain(users=400, items=120, dimension=8, seed=0)
    chain = {"v1": first, "v2": next_retrain(first, seed=1)}
    return {version: chain[version] for version in VERSIONS}


def spark_submit(cluster, home: Path, py_files: Path, arguments: list[str]):
    """scripts/spark_submit_dbt.py on the cluster, with these arguments."""
    command = [
        str(pyspark_home() / "bin" / "spark-submit"),
        "--master",
        cluster["master_url"],
        "--deploy-mode",
        "client",
        "--py-files",
        str(py_files),
        "--executor-memory",
        "1g",
        "--total-executor-cores",
        "2",
        "--conf",
        f"spark.pyspark.python={isolated_python(cluster['root'])}",
        "--conf",
        f"spark.pyspark.driver.python={sys.executable}",
        "--conf",
        f"spark.sql.warehouse.dir={home / 'warehouse'}",
        "--conf",
        (
            "spark.hadoop.javax.jdo.option.ConnectionURL="
            f"jdbc:derby:;databaseName={home / 'metastore_db'};create=true"
        ),
        "--conf",
        "spark.sql.shuffle.partitions=4",
        "--driver-java-options",
        f"-Dderby.stream.error.file={home / 'derby.log'}",
        str(PROJECT_DIR / "scripts" / "spark_submit_dbt.py"),
        *arguments,
    ]
    env = {
        **os.environ,
        **SHORT_LIVED_JVM,
        "SPARK_HOME": str(pyspark_home()),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "DBT_SCHEMA": SCHEMA,
        "DBT_TARGET": "cluster",
        "DBT_PROFILES_DIR": str(PROJECT_DIR / "profiles"),
        "DBT_TARGET_PATH": str(home / "target"),
        "DBT_LOG_PATH": str(home / "logs"),
    }
    env.pop("PYSPARK_GATEWAY_PORT", None)
    home.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        command, cwd=home, env=env, capture_output=True, text=True, timeout=900, check=False
    )


def test_versions_through_spark_submit_equal_numpy(cluster, retrains):
    """The versions in one application (a backfill: the driver and executors start
    once), each equal to the same chain computed in numpy."""
    py_files = Path(
        shutil.make_archive(str(cluster["root"] / "python_udfs"), "zip", PROJECT_DIR, "python_udfs")
    )
    home = cluster["root"] / "driver"
    submitted = backfilled_elsewhere(
        cluster["root"] / "data",
        retrains,
        lambda arguments: spark_submit(cluster, home, py_files, ["backfill", *arguments]),
    )
    assert submitted.returncode == 0, submitted.stdout[-5000:] + submitted.stderr[-5000:]
    assert f"built {len(retrains)} of {len(retrains)} versions" in submitted.stdout
    assert_published_alike(home / "warehouse", SCHEMA, retrains)

    # both workers ran tasks of the application, in executors of their own
    for work_dir in cluster["work_dirs"]:
        logs = list(work_dir.glob("app-*/*/stderr"))
        assert logs, f"no executor ran on {work_dir.name}"
        assert any("Finished task" in log.read_text(errors="replace") for log in logs), (
            f"no task finished on {work_dir.name}"
        )
