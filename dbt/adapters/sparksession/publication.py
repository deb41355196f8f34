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
removes the files a rebuilt version replaced, unless the folder's owner file
(``_<run>.owner``, written before the rows) says its run may still be running
(:func:`still_staging`): two runs of one version at once never remove each
other's rows.

The lakehouse formats (var ``table_format``) keep the same contract with their
own commits:

- **Iceberg**: the rows are written once, onto a branch of the published table
  (``staged_<version>_<hash>_<run>``, from ``main``); the audit relation is a
  view of that branch; publishing fast-forwards ``main`` to it (Iceberg's
  ``fast_forward`` procedure: a metadata commit, no rows rewritten), or, when
  ``main`` moved meanwhile for another reason, cherry-picks the branch's one
  commit (:func:`publish_branch`). This version's rows reach ``main`` no
  earlier; a later run of the version drops the branches earlier runs left,
  and snapshot expiry those older than their retention.
- **Delta**: Delta has no branches. The rows are staged and audited as for
  Hive (Parquet files written once by the workers, under ``staged`` inside the
  table's folder); publishing commits those files to the table in one Delta
  transaction that also removes the version's former files (the files become
  the table's; no row is rewritten). Delta has no public API for that commit:
  :func:`commit_staged_files` uses Delta's own transaction classes. Where they
  cannot be reached (Spark Connect, a Delta build without them) the rows are
  copied instead (``insert … replace where``: a second write).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import NamedTuple
from urllib.parse import quote, urlparse

from dbt.adapters.events.logging import AdapterLogger

from dbt.adapters.sparksession.cursor import sql_literal

logger = AdapterLogger("Spark")

STAGED_FOLDER = "_staged"
#: Delta stages where its VACUUM looks: the staged files become the table's, and
#: VACUUM, which skips folders whose names start with ``_``, removes them once no
#: table version it keeps needs them (as it removes files Delta wrote itself).
DELTA_STAGED_FOLDER = "staged"

#: The formats of the published tables (var ``table_format``) and the session
#: catalog each needs as ``spark.sql.catalog.spark_catalog``.
SESSION_CATALOGS = {
    "hive": None,
    "iceberg": "org.apache.iceberg.spark.SparkSessionCatalog",
    "delta": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}

#: Iceberg branches of staged versions start with this.
STAGED_BRANCH = "staged_"
#: How long a staged branch outlives its run (Iceberg's max ref age: snapshot expiry,
#: ``expire_snapshots``, removes an older branch and the data files only it keeps).
STAGED_BRANCH_RETENTION_DAYS = 7

#: The table properties of an audit relation: the version whose rows it holds and
#: the run (dbt invocation) that staged them.
STAGED_VERSION_PROPERTY = "embedding_stabilization.version"
STAGED_RUN_PROPERTY = "embedding_stabilization.run"


def staged_properties(partition_value: str, run_id: str | None = None) -> str:
    """The ``tblproperties (…)`` clause that labels an audit relation with its version
    (and the run that staged it)."""
    labels = {STAGED_VERSION_PROPERTY: partition_value}
    if run_id:
        labels[STAGED_RUN_PROPERTY] = run_id
    listed = ", ".join(f"'{key}' = {quoted(value)}" for key, value in labels.items())
    return f"tblproperties ({listed})"


def check_session_catalog(spark, table_format: str) -> None:
    """Raise a clear error unless this session's catalog can hold ``table_format`` tables."""
    if table_format not in SESSION_CATALOGS:
        raise ValueError(
            f"var 'table_format' = {table_format!r}: expected one of {', '.join(SESSION_CATALOGS)}"
        )
    expected = SESSION_CATALOGS[table_format]
    if expected is None:
        return
    actual = spark.conf.get("spark.sql.catalog.spark_catalog", None) or "Spark's built-in one"
    if actual != expected:
        raise ValueError(
            f"table_format {table_format} needs the session catalog {expected} "
            f"(spark.sql.catalog.spark_catalog; see docs/configuration.md), but this "
            f"session's is {actual}: use a {table_format} target (local_{table_format}) "
            "or set it on the cluster"
        )


def quoted(value: str) -> str:
    """A plain Spark SQL string literal (where a ``cast`` of bytes cannot stand, as in
    ``tblproperties``): backslashes and quotes escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def version_folder(table_location: str, partition_value: str, table_format: str = "hive") -> str:
    """The folder under a published table that holds one version's staged copies.

    Named after the version, with characters other than letters, digits,
    ``_ . -`` replaced (a ``:`` is not allowed in a Hadoop path name), and a
    short hash of the exact value so that two versions never share it.
    """
    staged = DELTA_STAGED_FOLDER if table_format == "delta" else STAGED_FOLDER
    return f"{table_location.rstrip('/')}/{staged}/{version_label(partition_value, '_.-', '-')}"


def version_label(partition_value: str, kept: str, separator: str) -> str:
    """A version's value as a name: characters other than letters, digits and ``kept``
    replaced by ``_``, then ``separator`` and a short hash of the exact value (so that
    two versions never share it)."""
    readable = re.sub(rf"[^A-Za-z0-9{re.escape(kept)}]", "_", partition_value)
    return f"{readable}{separator}{hashlib.sha1(partition_value.encode()).hexdigest()[:8]}"


def staged_branch(partition_value: str, run_id: str) -> str:
    """The Iceberg branch one run stages a version's rows on (letters, digits, ``_``)."""
    return f"{version_branch_prefix(partition_value)}{re.sub(r'[^A-Za-z0-9]', '', run_id)[:12]}"


def version_branch_prefix(partition_value: str) -> str:
    """The start of the name of every branch a version's rows were staged on."""
    return f"{STAGED_BRANCH}{version_label(partition_value, '_', '_')}_"


def staged_branches(spark, table: str, partition_value: str) -> list[str]:
    """The branches of ``table`` a version's rows were staged on (by any run)."""
    prefix = version_branch_prefix(partition_value)
    refs = spark.sql(f"select name from {table}.refs where type = 'BRANCH'").collect()
    return [row[0] for row in refs if row[0].startswith(prefix)]


def drop_staged_branches(spark, table: str, partition_value: str) -> list[str]:
    """Drop the branches a version was staged on; return those dropped."""
    dropped = staged_branches(spark, table, partition_value)
    for name in dropped:
        spark.sql(f"alter table {table} drop branch if exists {name}")
    return dropped


def staged_location(
    table_location: str, partition_value: str, run_id: str, table_format: str = "hive"
) -> str:
    """Where one run writes a version's rows: a folder no other run writes to."""
    return f"{version_folder(table_location, partition_value, table_format)}/{run_id}"


#: A staged run folder whose run ran on another machine (its process cannot be asked) is
#: left to that run this long after it began staging; later, it counts as abandoned.
STAGED_RUN_TIMEOUT_HOURS = 24
#: Beside each run folder, ``_<run>.owner`` names the process that stages into it
#: (written before the rows; ``_``: no reader lists it as data).
OWNER_SUFFIX = ".owner"


def owner_path(run_folder: str) -> str:
    """The owner file of a staged run folder: ``<version folder>/_<run>.owner``."""
    parent, run = run_folder.rstrip("/").rsplit("/", 1)
    return f"{parent}/_{run}{OWNER_SUFFIX}"


def mark_run_owner(spark, run_folder: str) -> None:
    """Write the owner file of ``run_folder`` (this process, this machine, now) before
    its rows are written, so that another run's clean-up leaves the folder alone while
    this one runs. Written whole under another name, then renamed. Classic sessions
    only (a Connect client reaches no file system; its server's clean-ups are not made
    there either)."""
    import os
    import socket
    import time

    owner = {"host": socket.gethostname(), "pid": os.getpid(), "started": int(time.time())}
    marker = owner_path(run_folder)
    if urlparse(marker).scheme == "file":  # plain files: Hadoop's would add a .crc beside
        local = urlparse(marker).path
        os.makedirs(os.path.dirname(local), exist_ok=True)
        partial = f"{os.path.dirname(local)}/.{os.path.basename(local)}.partial"
        with open(partial, "w") as output:
            output.write(json.dumps(owner))
        os.replace(partial, local)
        return
    file_system = hadoop_file_system(spark, run_folder)
    if file_system is None:
        return
    files, path = file_system
    stream = files.create(path(marker), True)
    try:
        stream.write(bytearray(json.dumps(owner).encode()))
    finally:
        stream.close()


def still_staging(spark, files, path, run_folder: str) -> str | None:
    """Why another run may still be writing or auditing ``run_folder`` (None: it is
    abandoned): its owner runs on this machine, or ran on another one less than
    :data:`STAGED_RUN_TIMEOUT_HOURS` ago. A folder with no owner file (staged by an
    earlier release) is abandoned; so is one owned by this process (an invocation
    before this one: dbt runs one at a time in a process)."""
    import os
    import socket
    import time

    from dbt.adapters.sparksession.build_lock import process_alive

    marker = path(owner_path(run_folder))
    if not files.exists(marker):
        return None
    stream = files.open(marker)
    try:
        text = spark._jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
    finally:
        stream.close()
    try:
        owner = json.loads(text)
    except ValueError:  # cut short (an earlier release wrote it in place): abandoned
        return None
    if owner["host"] == socket.gethostname():
        if owner["pid"] != os.getpid() and process_alive(owner["pid"]):
            return f"its run (pid {owner['pid']}) still runs"
        return None
    age_hours = (time.time() - owner["started"]) / 3600
    if age_hours < STAGED_RUN_TIMEOUT_HOURS:
        return f"its run on {owner['host']} began {age_hours:.1f} h ago"
    return None


def remove_abandoned_owner_files(spark, files, path, version_folder: str) -> None:
    """Remove the owner files whose run folder does not exist and whose run is over
    (runs killed, or refused, before they wrote a row)."""
    folder = path(version_folder)
    if not files.exists(folder):
        return
    for status in files.listStatus(folder):
        name = status.getPath().getName()
        if not (name.startswith("_") and name.endswith(OWNER_SUFFIX)):
            continue
        run_folder = f"{status.getPath().getParent().toString()}/{name[1 : -len(OWNER_SUFFIX)]}"
        if not files.exists(path(run_folder)) and not still_staging(spark, files, path, run_folder):
            files.delete(status.getPath(), False)


def remove_finished_runs(spark, files, path, run_folders) -> list[str]:
    """Remove the staged run folders (each with its owner file) whose run is over; log
    those another run may still stage into (:func:`still_staging`) and keep them.
    Returns the folders removed."""
    removed = []
    for run_folder in run_folders:
        running = still_staging(spark, files, path, run_folder)
        if running:  # another run of the version at once: its folder is not ours
            logger.info(f"kept the staged folder {run_folder}, not published: {running}")
        elif remove_run_folder(files, path, run_folder):
            removed.append(run_folder)
    return removed


def remove_run_folder(files, path, run_folder: str) -> bool:
    """Remove a staged run folder and its owner file; whether the folder was removed."""
    removed = files.delete(path(run_folder), True)
    files.delete(path(owner_path(run_folder)), False)
    return removed


def described(spark, table: str, name: str) -> str | None:
    """One entry (``Location``, ``Provider``, …) of ``describe table extended``, or None."""
    rows = spark.sql(f"describe table extended {table}").collect()
    return next((row[1] for row in rows if row[0] == name), None)


def table_location(spark, table: str) -> str:
    """A table's location, as the catalog records it (``describe table extended``)."""
    location = described(spark, table, "Location")
    if location is None:
        raise ValueError(f"the catalog records no location for {table}")
    return location


def hadoop_file_system(spark, location: str):
    """(the Hadoop file system of ``location``, Hadoop's ``Path``), or None on Spark
    Connect, whose client cannot reach the server's file system."""
    jvm_session = getattr(spark, "_jsparkSession", None)
    if jvm_session is None:
        return None
    path = spark._jvm.org.apache.hadoop.fs.Path
    return path(location).getFileSystem(jvm_session.sessionState().newHadoopConf()), path


def stage_for_publication(
    spark,
    dataframe,
    audit_table: str,
    published_table: str,
    partition_column: str,
    partition_value: str,
    run_id: str,
    file_format: str = "parquet",
    published_format: str = "parquet",
) -> str:
    """Write ``dataframe`` once, where ``published_table`` can publish it from; return where.

    The audit table ``audit_table`` reads the rows as the published partition
    will hold them: without the partition column, whose value the partition
    holds. ``published_table`` is created empty, partitioned by
    ``partition_column``, in ``published_format`` (``parquet`` or another
    plain format: a Hive table; ``iceberg``; ``delta``) if it does not exist
    yet (a first version).

    Iceberg: the rows are written onto a branch of ``published_table`` and
    ``audit_table`` is a view of it (returns the branch). Otherwise they are
    written as ``file_format`` files into a staged folder of the published
    table and ``audit_table`` is an external table over it (returns the
    folder). ``dataframe`` may also be rows its own Python workers write (an
    object with ``to_spark()`` and ``write_parquet(folder, columns_dropped)``
    returning the rows written, as ``python_udfs.spark.ArrowMapped``): they
    do, for Parquet on a file system every executor sees (``file:``); else,
    and when there are no rows (no file to infer the table from), Spark's
    writer writes ``to_spark()``.
    """
    table_format = {"iceberg": "iceberg", "delta": "delta"}.get(published_format, "hive")
    check_session_catalog(spark, table_format)
    # not hasattr: a Spark Connect DataFrame answers any attribute with a Column
    written_by_workers = callable(getattr(type(dataframe), "write_parquet", None))
    rows = dataframe.to_spark() if written_by_workers else dataframe
    if table_format == "iceberg":
        return stage_on_branch(
            spark, rows, audit_table, published_table, partition_column, partition_value, run_id
        )
    if not spark.catalog.tableExists(published_table):
        (
            rows.limit(0)
            .write.format(published_format)
            .partitionBy(partition_column)
            .saveAsTable(published_table)
        )
    location = staged_location(
        table_location(spark, published_table), partition_value, run_id, table_format
    )
    mark_run_owner(spark, location)
    written = 0
    if written_by_workers and file_format == "parquet" and urlparse(location).scheme == "file":
        written = dataframe.write_parquet(urlparse(location).path, [partition_column])
    if not written:
        rows.drop(partition_column).write.format(file_format).mode("error").save(location)
    spark.sql(
        f"create table {audit_table} using {file_format} location '{location}' "
        + staged_properties(partition_value, run_id)
    )
    return location


def stage_on_branch(
    spark,
    rows,
    audit_table: str,
    published_table: str,
    partition_column: str,
    partition_value: str,
    run_id: str,
) -> str:
    """Write a version's rows onto a new branch of an Iceberg table; return the branch.

    The branch starts at ``main``'s current snapshot and receives one commit
    that replaces the version's partition (a rebuild's rows replace the
    published ones when ``main`` is fast-forwarded to it). Branches earlier runs
    of the version left (killed, or stopped by a failed audit) are dropped
    first. ``audit_table`` becomes a view of the branch's rows of the version.
    """
    from pyspark.sql.functions import col

    if not spark.catalog.tableExists(published_table):
        (
            rows.limit(0)
            .writeTo(published_table)
            .using("iceberg")
            .partitionedBy(col(partition_column))
            .create()
        )
    drop_staged_branches(spark, published_table, partition_value)
    branch = staged_branch(partition_value, run_id)
    # a run refused by its audits or killed leaves its branch: the version's next run
    # drops it, and Iceberg's snapshot expiry removes it after the retention whatever
    spark.sql(
        f"alter table {published_table} create branch {branch} "
        f"retain {STAGED_BRANCH_RETENTION_DAYS} days"
    )
    # Iceberg's default for a partitioned table (write.distribution-mode hash) shuffles
    # the rows by partition before writing, and sorts them in each task: an extra pass
    # over them, into the one task of the version's one partition. They are one
    # partition already; fanout writes them without a sort.
    (
        rows.writeTo(f"{published_table}.branch_{branch}")
        .option("distribution-mode", "none")
        .option("fanout-enabled", "true")
        .overwritePartitions()
    )
    create_partition_view(
        spark,
        audit_table,
        f"{published_table}.branch_{branch}",
        rows.columns,
        partition_column,
        partition_value,
        run_id,
    )
    return branch


def publish_branch(spark, table: str, branch: str) -> str:
    """Iceberg: make the rows staged on ``branch`` ``main``'s; return what was done.

    ``main`` is fast-forwarded to the branch (a metadata commit) when it has not moved
    since the branch was made from it. When it has (a compaction, another version's
    publication, ``unpublish_versions``), the branch's one commit, which replaces the
    version's partition, is cherry-picked onto ``main`` instead (Iceberg's
    ``cherrypick_snapshot``, also a metadata commit, no row rewritten); Iceberg refuses
    it, with its own error, if the version's partition changed meanwhile.
    """
    try:
        spark.sql(
            f"call spark_catalog.system.fast_forward(table => {quoted(table)}, "
            f"branch => 'main', to => {quoted(branch)})"
        ).collect()
        return f"FAST FORWARD main of {table} to {branch}"
    except Exception as error:  # classic and Connect sessions raise different types
        if "is not an ancestor" not in str(error):
            raise
    head = spark.sql(
        f"select snapshot_id from {table}.refs where name = {quoted(branch)}"
    ).collect()[0][0]
    spark.sql(
        f"call spark_catalog.system.cherrypick_snapshot(table => {quoted(table)}, "
        f"snapshot_id => {head})"
    ).collect()
    return f"CHERRYPICK {head} of {branch} onto main of {table} (main had moved)"


def create_partition_view(
    spark,
    view: str,
    table: str,
    columns,
    partition_column: str,
    partition_value: str,
    run_id: str | None = None,
) -> None:
    """(Re)create ``view`` as one partition of ``table``, without the partition column,
    labelled with the version (and the run that staged it)."""
    selected = ", ".join(name for name in columns if name != partition_column)
    spark.sql(
        f"create or replace view {view} {staged_properties(partition_value, run_id)} as "
        f"select {selected} from {table} "
        f"where {partition_column} = {sql_literal(partition_value)}"
    )


class DeltaCommit(NamedTuple):
    """A version's staged files committed to a Delta table."""

    #: the table version the commit made
    version: int
    #: the version's run folders (``staged/<version>/<run>``) the table references for
    #: certain: the committed one and those of the files the commit removed
    runs: frozenset[str]


def delta_runs_prefix(partition_value: str) -> str:
    """Where a version's staged run folders are, relative to its Delta table's folder
    (``staged/<version>-<hash>/``), as Delta's log writes the paths of their files."""
    return version_folder("", partition_value, "delta").lstrip("/") + "/"


def commit_staged_files(
    spark, location: str, staged: str, partition_column: str, partition_value: str
) -> DeltaCommit | None:
    """Delta: publish the files staged at ``staged`` (a folder inside the folder of the
    Delta table at ``location``) as the version's rows, without rewriting them.

    One Delta transaction removes the files the version's partition has and adds the
    staged ones (their paths relative to the table, as Delta writes its own); it reads
    the whole table, so a concurrent writer makes it fail rather than interleave. Delta
    has no public API that commits files already written, so this uses Delta's own
    (``DeltaLog``, ``OptimisticTransaction``, actions parsed from the protocol's JSON),
    as its CONVERT and CLONE commands do. Each added file carries its row count
    (``numRecords``, from its Parquet footer), as Delta's own writes do. Returns None,
    having changed nothing, when this session cannot reach those classes (Spark
    Connect; a Delta build without them: a class, method or constructor not found):
    the caller then copies the rows. Any other failure (a missing file, a permission,
    a conflicting commit) is raised.
    """
    from py4j.protocol import Py4JError, Py4JJavaError

    file_system = hadoop_file_system(spark, location)
    if file_system is None:
        return None
    files, path = file_system
    jvm = spark._jvm
    # everything but the commit itself: a failure here has changed nothing
    try:
        delta = jvm.org.apache.spark.sql.delta
        transaction = delta.DeltaLog.forTable(spark._jsparkSession, location).startTransaction()
        predicate = f"{partition_column} = {sql_literal(partition_value)}"
        operation = delta_overwrite_operation(jvm, predicate)
        actions = jvm.java.util.ArrayList()
        runs = {staged.rstrip("/").rsplit("/", 1)[-1]}
        runs_prefix = delta_runs_prefix(partition_value)
        current = transaction.filterFiles()  # every file: the transaction reads the whole table
        for index in range(current.size()):
            file = current.apply(index)
            value = file.partitionValues().get(partition_column)
            if value.isDefined() and value.get() == partition_value:
                actions.add(file.remove())
                if file.path().startswith(runs_prefix):
                    runs.add(file.path().removeprefix(runs_prefix).split("/", 1)[0])
        root = files.makeQualified(path(location)).toString().rstrip("/") + "/"
        hadoop_conf = spark._jsparkSession.sessionState().newHadoopConf()
        for status in files.listStatus(path(staged)):
            name = status.getPath().getName()
            if name.startswith(("_", ".")):  # _SUCCESS, files being written
                continue
            full = status.getPath().toString()
            if not full.startswith(root):
                raise ValueError(
                    f"staged file {full} is not inside the Delta table at {root}: "
                    "Delta's log names its files relative to the table"
                )
            added = {
                "path": quote(full.removeprefix(root), safe="/"),
                "partitionValues": {partition_column: partition_value},
                "size": status.getLen(),
                "modificationTime": status.getModificationTime(),
                "dataChange": True,
                # the file's row count, from its Parquet footer: readers skip and count
                # with it, and tables with row tracking need it to number the rows
                "stats": json.dumps(
                    {"numRecords": parquet_rows(jvm, status.getPath(), hadoop_conf)}
                ),
            }
            actions.add(delta.actions.Action.fromJson(json.dumps({"add": added})))
        # JavaConverters: in Scala 2.12 (Spark 3.5, Delta 3.3) and 2.13 (Spark 4) alike
        committed = jvm.scala.collection.JavaConverters.asScalaBuffer(actions).toList()
    except (Py4JError, TypeError) as error:
        if isinstance(error, Py4JJavaError):
            raise  # Delta or the file system refused (a missing file, a permission): not hidden
        # a class, method or constructor py4j cannot find (TypeError: a missing class)
        logger.debug(f"{location}: Delta's transaction classes out of reach ({error})")
        return None
    return DeltaCommit(transaction.commit(committed, operation), frozenset(runs))


def delta_overwrite_operation(jvm, predicate: str):
    """Delta's ``Write`` operation for an overwrite of the rows ``predicate`` selects
    (``replaceWhere``), as the table's history records it. Its constructor takes the
    save mode, partition columns, predicate and user metadata (Delta 3.3), and five
    options more from Delta 4; py4j picks a constructor by its argument count."""
    from py4j.protocol import Py4JError

    nothing = jvm.scala.Option.empty()
    known = (
        jvm.org.apache.spark.sql.SaveMode.Overwrite,
        nothing,
        jvm.scala.Option.apply(predicate),
    )
    for options in (6, 1):  # Delta 4.x, then 3.x
        try:
            return jvm.org.apache.spark.sql.delta.DeltaOperations.Write(
                *known, *[nothing] * options
            )
        except Py4JError as error:
            if "does not exist" not in str(error) or options == 1:
                raise


def parquet_rows(jvm, file_path, hadoop_conf) -> int:
    """The rows of one Parquet file, from its footer (``file_path``: a Hadoop ``Path``)."""
    parquet = jvm.org.apache.parquet.hadoop
    reader = parquet.ParquetFileReader.open(
        parquet.util.HadoopInputFile.fromPath(file_path, hadoop_conf)
    )
    try:
        return int(reader.getRecordCount())
    finally:
        reader.close()


def remove_unreferenced_delta_runs(
    spark, location: str, partition_value: str, referenced: frozenset[str] = frozenset()
) -> list[str]:
    """Remove the run folders of a version's staged rows (``staged/<version>/<run>``)
    that no version Delta keeps of the table at ``location`` references (runs killed
    or stopped by a failed audit before publishing; a copy's source); return their
    full paths. Delta's log is read only when there are folders other than those
    known ``referenced`` (a query of the table's files and tombstones: a second or
    so). Classic sessions only (see :func:`hadoop_file_system`)."""
    from pyspark.sql import DataFrame
    from pyspark.sql import functions as F

    files, path = hadoop_file_system(spark, location)
    folder = path(version_folder(location, partition_value, "delta"))
    if not files.exists(folder):
        return []
    runs = {
        status.getPath().getName(): status.getPath().toString()
        for status in files.listStatus(folder)
        if not status.getPath().getName().startswith("_")  # owner files
    }
    if set(runs) <= referenced:
        return []
    snapshot = spark._jvm.org.apache.spark.sql.delta.DeltaLog.forTableWithSnapshot(
        spark._jsparkSession, location
    )._2()
    runs_prefix = delta_runs_prefix(partition_value)
    # the run folder of every file the table holds or keeps for time travel (tombstones)
    read_by_the_log = (
        DataFrame(snapshot.allFiles().toDF(), spark)
        .select("path")
        .union(DataFrame(snapshot.tombstones().toDF(), spark).select("path"))
        .where(F.col("path").startswith(runs_prefix))
        .select(F.split(F.col("path").substr(len(runs_prefix) + 1, 10_000), "/")[0])
        .distinct()
    )
    kept = {row[0] for row in read_by_the_log.collect()}
    unread = [full for name, full in runs.items() if name not in kept]
    removed = remove_finished_runs(spark, files, path, unread)
    remove_abandoned_owner_files(spark, files, path, folder.toString())
    return removed
