"""Write once, publish by metadata (write–audit–publish on a partitioned table).

A model configured with ``publish_to: <table>`` writes its rows once, into a
folder of their own inside that published table's location::

    <published table location>/_staged/<version>/<dbt invocation id>/part-*.parquet

and is registered as an external table over that folder: the audit table the
data tests read. The published table's ``published_partition``
materialization then points the version's partition at the same folder
(``alter table … add partition … location`` / ``… partition … set location``):
one metastore operation, no rows rewritten. Readers of the published table see
the old files or the new ones, never a mixture.

``_staged`` starts with an underscore, so Spark's partition discovery
(``msck repair``, ``recover partitions``) skips it; dropping the published
table removes it with the rest. A run killed before publishing leaves a folder
no partition points at: the next publication of that version removes it, as it
removes the files a rebuilt version replaced.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import urlparse

STAGED_FOLDER = "_staged"


def version_folder(table_location: str, partition_value: str) -> str:
    """The folder under a published table that holds one version's staged copies.

    Named after the version, with characters other than letters, digits,
    ``_ . -`` replaced (a ``:`` is not allowed in a Hadoop path name), and a
    short hash of the exact value so that two versions never share it.
    """
    readable = re.sub(r"[^A-Za-z0-9_.-]", "_", partition_value)
    digest = hashlib.sha1(partition_value.encode()).hexdigest()[:8]
    return f"{table_location.rstrip('/')}/{STAGED_FOLDER}/{readable}-{digest}"


def staged_location(table_location: str, partition_value: str, run_id: str) -> str:
    """Where one run writes a version's rows: a folder no other run writes to."""
    return f"{version_folder(table_location, partition_value)}/{run_id}"


def table_location(spark, table: str) -> str:
    """A table's location, as the catalog records it (``describe table extended``)."""
    rows = spark.sql(f"describe table extended {table}").collect()
    for row in rows:
        if row[0] == "Location":
            return row[1]
    raise ValueError(f"the catalog records no location for {table}")


def stage_for_publication(
    spark,
    dataframe,
    audit_table: str,
    published_table: str,
    partition_column: str,
    partition_value: str,
    run_id: str,
    file_format: str = "parquet",
) -> str:
    """Write ``dataframe`` once into a staged folder of ``published_table``; return it.

    The rows are written as the published partition will hold them: without
    the partition column, whose value the partition holds. ``audit_table`` is
    created over the folder as an external table (dropping it later leaves the
    files). ``dataframe`` may also be rows its own Python workers write (an
    object with ``to_spark()`` and ``write_parquet(folder, columns_dropped)``
    returning the rows written, as ``python_udfs.spark.ArrowMapped``): they
    do, for Parquet on a file system every executor sees (``file:``); else,
    and when there are no rows (no file to infer the table from), Spark's
    writer writes ``to_spark()``. ``published_table`` is created empty,
    partitioned by ``partition_column``, if it does not exist yet (a first
    version), so that there is a location to stage into.
    """
    # not hasattr: a Spark Connect DataFrame answers any attribute with a Column
    written_by_workers = callable(getattr(type(dataframe), "write_parquet", None))
    rows = dataframe.to_spark() if written_by_workers else dataframe
    if not spark.catalog.tableExists(published_table):
        (
            rows.limit(0)
            .write.format(file_format)
            .partitionBy(partition_column)
            .saveAsTable(published_table)
        )
    location = staged_location(table_location(spark, published_table), partition_value, run_id)
    written = 0
    if written_by_workers and file_format == "parquet" and urlparse(location).scheme == "file":
        written = dataframe.write_parquet(urlparse(location).path, [partition_column])
    if not written:
        rows.drop(partition_column).write.format(file_format).mode("error").save(location)
    spark.sql(f"create table {audit_table} using {file_format} location '{location}'")
    return location
