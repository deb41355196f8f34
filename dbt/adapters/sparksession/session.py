"""The Hive-enabled Spark session of a profile's parameters, built as dbt-spark's cursor builds it.

Used by :mod:`connections` (which first lets a JVM it starts map the class
archive) and by :mod:`class_archive` (whose workload starts the JVM that is
archived); neither imports the other for it.
"""

from __future__ import annotations

from collections.abc import Mapping


def hive_session(server_side_parameters: Mapping[str, str]):
    """``SparkSession.builder.enableHiveSupport()`` with these settings, got or created."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.enableHiveSupport()
    for key, value in server_side_parameters.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
