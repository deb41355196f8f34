"""Credentials and connection manager of the ``sparksession`` adapter."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from dbt.adapters.contracts.connection import Connection
from dbt.adapters.spark.connections import SparkConnectionManager, SparkCredentials


@dataclass
class SparksessionCredentials(SparkCredentials):
    """dbt-spark credentials under this plugin's type name."""

    @property
    def type(self) -> str:
        return "sparksession"


def is_local_master(server_side_parameters: Mapping[str, str]) -> bool:
    """True when the session will run its executors inside this machine's JVM."""
    master = server_side_parameters.get("spark.master") or os.environ.get("MASTER", "local[*]")
    return master.startswith("local")


def ensure_local_directories(server_side_parameters: Mapping[str, str]) -> None:
    """Create the folders a local session writes to before the JVM starts.

    Derby cannot create the parent folder of its log (``-Dderby.stream.error.file``)
    and then prints to stdout; a fresh ``$DBT_SPARK_HOME`` must exist first.
    """
    java_options = server_side_parameters.get("spark.driver.extraJavaOptions", "")
    paths = [
        option.split("=", 1)[1]
        for option in java_options.split()
        if option.startswith("-Dderby.stream.error.file=")
    ]
    paths.append(server_side_parameters.get("spark.sql.warehouse.dir", "") + "/")
    for path in paths:
        folder = os.path.dirname(path)
        if folder and "://" not in folder:
            os.makedirs(folder, exist_ok=True)


def spark_session(server_side_parameters: Mapping[str, str]):
    """Return the session dbt-spark's cursor uses: same builder, same options.

    ``SparkSession.getActiveSession()`` is None in dbt's worker threads, so the
    session is taken the way dbt-spark's ``Cursor.execute`` takes it.
    """
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.enableHiveSupport()
    for key, value in server_side_parameters.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


#: JVM loggers that warn on every query dbt runs: dbt-spark's cursor passes its
#: options to getOrCreate() each time ("Using an existing Spark session").
QUIET_LOGGERS = (
    "org.apache.spark.sql.SparkSession",
    "org.apache.spark.sql.classic.SparkSession",  # Spark 4
    "org.apache.hadoop.hive.conf.HiveConf",
)


def quiet_repeated_warnings(session) -> None:
    """Raise the per-query warning loggers to ERROR (once per JVM)."""
    jvm = session.sparkContext._jvm
    configurator = jvm.org.apache.logging.log4j.core.config.Configurator
    for name in QUIET_LOGGERS:
        configurator.setLevel(name, jvm.org.apache.logging.log4j.Level.ERROR)


class SparksessionConnectionManager(SparkConnectionManager):
    TYPE = "sparksession"

    @classmethod
    def open(cls, connection: Connection) -> Connection:
        # A local master starts Python workers with $PYSPARK_PYTHON (default
        # `python3` on PATH), which may lack numpy/pyarrow/python_udfs. They must
        # run dbt's own interpreter. Under spark-submit (a gateway already
        # exists) the cluster's configuration decides instead.
        parameters = connection.credentials.server_side_parameters
        if "PYSPARK_GATEWAY_PORT" not in os.environ and is_local_master(parameters):
            os.environ["PYSPARK_PYTHON"] = sys.executable
            ensure_local_directories(parameters)
        connection = super().open(connection)
        if connection.credentials.method == "session":
            quiet_repeated_warnings(spark_session(parameters))
        return connection
