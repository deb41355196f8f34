"""The pipeline, every bad input, partitioned inputs and spark-submit on a standalone
cluster, on Spark 3.5 as well: those modules run again by the Python of the Spark 3.5
environment (``.venv-spark3.5``), in one pytest process of its own (one local Spark
session for its modules); and the published tables as Iceberg and as Delta tables
with that environment's jars (Iceberg's 3.5 runtime, Delta 3.3: ``make
jars-spark3.5``), each format in processes of its own (test_lakehouse.py's 3.5 part).

``make test-spark3.5`` (a step of CI of its own, after ``make test``) passes that
Python as ``SPARK35_PYTHON``; without it (``make test``, a plain ``pytest``) this is
skipped. Inside ``make test``'s two workers it took 474 s beside the other worker
and the suite to 26.2 minutes on a fresh clone, past its 25 (2026-11-30). The rebuild
test is left out here: it builds a version again to compare bytes, the same code on
both lines.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import run_pytest

pytestmark = pytest.mark.integration

#: the modules whose behaviour differs between the lines (ANSI mode's default, Arrow
#: types, spark-submit): the Makefile's SPARK35_TESTS
MODULES = ("test_pipeline.py", "test_bad_input.py", "test_partitioned_inputs.py", "test_cluster.py")


def spark35_python() -> str:
    python = os.environ.get("SPARK35_PYTHON")
    if not python:
        pytest.skip("SPARK35_PYTHON unset: make test-spark3.5 runs it")
    assert Path(python).exists(), f"{python} is missing: make setup-spark3.5 makes it"
    return python


def child_environment(**more: str) -> dict:
    """This environment for a pytest run of its own, not one of this run's xdist workers."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PYTEST_", "PYSPARK_GATEWAY", "SPARK35_"))
    }
    return {**environment, **more}


def pytest_on_spark_3_5(tmp_path, arguments: list[str], **environment: str):
    """pytest with ``arguments`` in the Spark 3.5 environment's Python, a run of its own
    under ``tmp_path``; fails unless it passed. Returns the finished process."""
    run = run_pytest(
        spark35_python(),
        ["-W", "ignore::DeprecationWarning", "--basetemp", str(tmp_path / "pytest"), *arguments],
        env=child_environment(**environment),
        timeout=1500,
    )
    assert " passed" in run.stdout.splitlines()[-1], run.stdout[-2000:]
    return run


def test_the_modules_that_differ_between_spark_lines_pass_on_spark_3_5(tmp_path):
    run = pytest_on_spark_3_5(
        tmp_path,
        [
            "--durations=5",
            *(str(Path(__file__).with_name(module)) for module in MODULES),
            "-k",
            "not renders_in_chromium and not docs_site and not rebuilding",
        ],
    )
    print(run.stdout[-4000:])  # the child's summary and slowest tests, in this run's output


@pytest.mark.parametrize("table_format", ["iceberg", "delta"])
def test_iceberg_and_delta_tables_publish_on_spark_3_5(table_format, tmp_path):
    jars = Path(spark35_python()).parents[1] / "jars"
    assert any(jars.glob("*.jar")), f"no jars in {jars}: make jars-spark3.5 fetches them"
    pytest_on_spark_3_5(
        tmp_path,
        [str(Path(__file__).with_name("test_lakehouse.py")), "-k", table_format],
        LAKEHOUSE_SPARK35="1",
        DBT_LAKEHOUSE_JARS=str(jars),
    )
