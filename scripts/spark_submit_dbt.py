"""Run one dbt command, or a backfill, on the Spark driver, under spark-submit.

    spark-submit --master <yarn | k8s://… | spark://…> \
        --py-files dist/python_udfs.zip \
        scripts/spark_submit_dbt.py build --vars '{embedding_version: "2026-11-22", …}'

    spark-submit … scripts/spark_submit_dbt.py backfill --partition-column ds \
        --users warehouse.user_emb --items warehouse.item_emb

Everything after the script is passed to dbt, or after `backfill` to
scripts/backfill.py (a history of versions in one application: the driver and
the executors start once). dbt runs on the driver with the
`cluster` target (DBT_TARGET overrides): its `method: session` uses the
SparkSession spark-submit configured — master, warehouse, metastore and
resources all come from spark-submit and the cluster's configuration. The
Python models' batch functions run on the executors, which must import
`python_udfs`: ship it with `--py-files` (`make dist`) or install it there.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR / "scripts"))


def executors_import_python_udfs(spark) -> None:
    """Fail early, and clearly, if the executors cannot import ``python_udfs``."""

    def where(_):
        import python_udfs

        return python_udfs.__file__

    try:
        spark.sparkContext.parallelize([0], 1).map(where).collect()
    except Exception as error:  # the executor's ModuleNotFoundError, wrapped by Py4J
        if "No module named 'python_udfs'" not in str(error):
            raise
        raise SystemExit(
            "The executors cannot import the python_udfs package. Ship it with "
            "`--py-files dist/python_udfs.zip` (build it with `make dist`) or install it "
            "in the executors' Python environment."
        ) from None


def main(dbt_arguments: list[str]) -> int:
    """dbt's arguments, or ``backfill`` and the backfill's; the exit code."""
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.enableHiveSupport().getOrCreate()
    executors_import_python_udfs(spark)

    os.environ.setdefault("DBT_PROFILES_DIR", str(PROJECT_DIR / "profiles"))
    os.environ.setdefault("DBT_TARGET", "cluster")
    if dbt_arguments[:1] == ["backfill"]:
        import backfill

        code = backfill.main(dbt_arguments[1:])
    else:
        from dbt.cli.main import dbtRunner

        result = dbtRunner().invoke([*dbt_arguments, "--project-dir", str(PROJECT_DIR)])
        code = 0 if result.success else 1
    spark.stop()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
