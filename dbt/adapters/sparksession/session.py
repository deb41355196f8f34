"""The Hive-enabled Spark session of a profile's parameters, built as dbt-spark's cursor builds it.

Used by :mod:`connections` (which first lets a JVM it starts map the class
archive) and by :mod:`class_archive` (whose workload starts the JVM that is
archived); neither imports the other for it.
"""

from __future__ import annotations

import glob
from collections.abc import Mapping


def hive_session(server_side_parameters: Mapping[str, str]):
    """``SparkSession.builder.enableHiveSupport()`` with these settings, got or created."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.enableHiveSupport()
    for key, value in server_side_parameters.items():
        if key == "spark.jars":
            value = jars_listed(value)
        builder = builder.config(key, value)
    return builder.getOrCreate()


def jars_listed(jars: str) -> str:
    """``spark.jars`` with each local wildcard entry (``.venv/jars/*.jar``) replaced by
    the files it matches. spark-submit expands a pattern for the driver's class path,
    but SparkContext then adds each entry by name, and a pattern is no file: "ERROR
    SparkContext: Failed to add .venv/jars/*.jar", and executors would not get them.
    """
    listed = []
    for entry in filter(None, (part.strip() for part in jars.split(","))):
        matches = sorted(glob.glob(entry)) if "*" in entry and ":" not in entry else []
        listed += matches or [entry]
    return ",".join(listed)
