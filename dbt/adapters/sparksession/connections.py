"""Credentials and connection manager of the ``sparksession`` adapter.

Two methods: ``session`` (Spark in this process, or dbt on the driver of a
``spark-submit`` application) and ``connect`` (a thin client of a Spark Connect
server at ``host``, a ``sc://`` URL). Both hand dbt a :class:`SessionHandle`
over the session; Python models run on the same session.
"""

from __future__ import annotations

import fcntl
import os
import re
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from dbt.adapters.contracts.connection import Connection, ConnectionState
from dbt.adapters.spark.connections import SparkConnectionManager, SparkCredentials
from dbt_common.exceptions import DbtRuntimeError

from dbt.adapters.sparksession.cursor import SessionHandle
from dbt.adapters.sparksession.session import hive_session

#: The methods this plugin opens itself; dbt-spark's others (thrift, http, odbc) pass through.
SESSION, CONNECT = "session", "connect"


@dataclass
class SparksessionCredentials(SparkCredentials):
    """dbt-spark credentials under this plugin's type name, plus ``method: connect``.

    With ``method: connect``, ``host`` is the Spark Connect URL (``sc://host:15002``)
    and ``py_packages`` names importable packages of this client to ship to the
    server's Python workers as artifacts of the session (``addArtifacts(pyfile=True)``).
    """

    method: str = None  # type: ignore[assignment]  # dbt-spark's methods, or "connect"
    py_packages: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        from dbt.adapters.sparksession.remote import redacted

        if self.method == CONNECT and not str(self.host or "").startswith("sc://"):
            raise DbtRuntimeError(
                f"method: connect needs host to be a Spark Connect URL such as "
                f"sc://host:15002 (got {redacted(str(self.host))!r}; set SPARK_REMOTE for the "
                "connect target)"
            )
        super().__post_init__()

    def connection_info(self, *, with_aliases: bool = False):
        """What ``dbt debug`` and the logs show of the connection: the host with its
        token redacted."""
        from dbt.adapters.sparksession.remote import redacted

        for key, value in super().connection_info(with_aliases=with_aliases):
            yield key, redacted(value) if key == "host" and isinstance(value, str) else value

    @property
    def type(self) -> str:
        return "sparksession"


def is_local_master(server_side_parameters: Mapping[str, str]) -> bool:
    """True when the session will run its executors inside this machine's JVM."""
    master = server_side_parameters.get("spark.master") or os.environ.get("MASTER", "local[*]")
    return master.startswith("local")


def starts_local_jvm(server_side_parameters: Mapping[str, str]) -> bool:
    """True when this process starts the session's JVM itself, with a local master.

    Not under spark-submit (a gateway already exists): there the cluster's
    configuration decides.
    """
    return "PYSPARK_GATEWAY_PORT" not in os.environ and is_local_master(server_side_parameters)


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


def embedded_metastore_path(server_side_parameters: Mapping[str, str]) -> str | None:
    """The folder of the embedded Derby metastore the profile configures, or None.

    None too when the profile leaves the metastore to the cluster's configuration
    (the ``cluster`` target): that is for the cluster to arbitrate.
    """
    if server_side_parameters.get("spark.hadoop.hive.metastore.uris"):
        return None  # a metastore service (the shared target): its database arbitrates
    url = server_side_parameters.get("spark.hadoop.javax.jdo.option.ConnectionURL", "")
    if not url.startswith("jdbc:derby:") or url.startswith("jdbc:derby://"):
        return None  # a metastore service or a database server: concurrent runs are fine
    named = re.search(r"databaseName=([^;]+)", url)
    return os.path.abspath(named.group(1) if named else url[len("jdbc:derby:") :].split(";")[0])


#: The open lock file of the embedded metastore this process holds, by path.
_METASTORE_LOCKS: dict[str, object] = {}


def lock_embedded_metastore(path: str) -> None:
    """Hold an exclusive lock on an embedded metastore for this process's life.

    Embedded Derby admits one JVM at a time; a second one fails deep inside
    Hive with a long stack trace. This lock (released by the kernel when the
    process ends, even on SIGKILL) turns that into a clear error up front.
    """
    if path in _METASTORE_LOCKS:
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    lock_file = open(path + ".lock", "a+")  # noqa: SIM115 - held open until exit
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock_file.seek(0)
        holder = lock_file.read().strip() or "unknown"
        lock_file.close()
        raise DbtRuntimeError(
            f"the embedded metastore {path} is in use by another process ({holder}): "
            "an embedded (Derby) metastore admits one Spark session at a time. Wait for "
            "that run to finish, give this run its own DBT_SPARK_HOME, or use a shared "
            "Hive metastore to run jobs concurrently."
        ) from None
    lock_file.truncate(0)
    lock_file.write(f"pid {os.getpid()}: {' '.join(sys.argv)}\n")
    lock_file.flush()
    _METASTORE_LOCKS[path] = lock_file


def session_for(credentials: SparksessionCredentials):
    """The Spark session of a profile: classic (``session``) or remote (``connect``)."""
    if credentials.method == CONNECT:
        from dbt.adapters.sparksession.remote import connect_session

        return connect_session(credentials)
    return spark_session(credentials.server_side_parameters)


def spark_session(server_side_parameters: Mapping[str, str]):
    """Return the session dbt-spark's cursor uses: same builder, same options.

    ``SparkSession.getActiveSession()`` is None in dbt's worker threads, so the
    session is taken the way dbt-spark's ``Cursor.execute`` takes it.
    """
    from pyspark import SparkContext

    if SparkContext._active_spark_context is None and starts_local_jvm(server_side_parameters):
        # this process starts the JVM now: let it map the class archive, if made
        from dbt.adapters.sparksession.class_archive import with_archive

        server_side_parameters = with_archive(server_side_parameters)
    return hive_session(server_side_parameters)


#: JVM loggers that warn on every query dbt runs: dbt-spark's cursor passes its
#: options to getOrCreate() each time ("Using an existing Spark session"); Hive's
#: metastore client on every partition written ("Updating partition stats fast
#: for: …", "Updated size to …") and on every new Hive session (METASTORE_FILTER_HOOK).
QUIET_LOGGERS = (
    "org.apache.spark.sql.SparkSession",
    "org.apache.spark.sql.classic.SparkSession",  # Spark 4
    "org.apache.hadoop.hive.conf.HiveConf",
    "hive.log",
    "org.apache.hadoop.hive.ql.session.SessionState",
)


def quiet_repeated_warnings(session) -> None:
    """Raise the per-query warning loggers to ERROR (once per JVM)."""
    jvm = session.sparkContext._jvm
    configurator = jvm.org.apache.logging.log4j.core.config.Configurator
    for name in QUIET_LOGGERS:
        configurator.setLevel(name, jvm.org.apache.logging.log4j.Level.ERROR)


#: Held while a local session is opened, so that a second caller (dbt's first
#: connection while :func:`open_ahead` runs) waits for a session already quieted.
_OPENING = threading.Lock()

#: dbt commands that run queries: for these a local session is opened ahead.
QUERYING_COMMANDS = frozenset(
    {
        "build",
        "run",
        "test",
        "seed",
        "snapshot",
        "compile",
        "show",
        "run-operation",
        "retry",
        "clone",
        "generate",
        "freshness",
    }
)


def local_session(server_side_parameters: Mapping[str, str]):
    """The session of ``method: session``, set up for this process (idempotent).

    Locks the embedded metastore; with a local master, makes the Python workers
    run dbt's own interpreter and creates the folders the JVM writes to.
    """
    with _OPENING:
        metastore = embedded_metastore_path(server_side_parameters)
        if metastore is not None:
            lock_embedded_metastore(metastore)
        # A local master starts Python workers with $PYSPARK_PYTHON (default
        # `python3` on PATH), which may lack numpy/pyarrow/python_udfs. They must
        # run dbt's own interpreter.
        if starts_local_jvm(server_side_parameters):
            os.environ["PYSPARK_PYTHON"] = sys.executable
            ensure_local_directories(server_side_parameters)
        session = spark_session(server_side_parameters)
        quiet_repeated_warnings(session)
        return session


def open_ahead(
    credentials: SparksessionCredentials, command: str | None
) -> threading.Thread | None:
    """Start opening a local session and its metastore while dbt parses the project.

    Spark's JVM (≈ 7 s) and the first metastore query (Hive client, Derby:
    5–7 s) otherwise start only at dbt's first query, after parsing. They run
    in other processes and threads, so the two overlap. Only for ``method:
    session`` and commands that run queries (not ``parse``, ``ls``, ``deps``…).
    A failure here is left for dbt's own connection to meet and report.
    """
    if credentials.method != SESSION or command not in QUERYING_COMMANDS:
        return None

    def open_and_warm() -> None:
        try:
            session = local_session(credentials.server_side_parameters)
            session.sql("show databases").collect()  # starts the metastore client
        except Exception:  # noqa: BLE001, S110 - dbt's connection raises it, with context
            pass

    thread = threading.Thread(target=open_and_warm, name="sparksession-open-ahead", daemon=True)
    thread.start()
    return thread


def label_spark_jobs(handle, name: str | None) -> None:
    """Group the Spark jobs this thread starts under dbt's connection name (the node's
    unique id): the Spark UI and event log then say which model or test ran each job.
    Classic sessions only (a thread-local property of the JVM thread PySpark pins to
    this thread); on Spark Connect the Python models tag their operations instead."""
    session = getattr(handle, "session", None)
    if name and getattr(session, "_jsparkSession", None) is not None:
        session.sparkContext.setLocalProperty("spark.jobGroup.id", name)


class SparksessionConnectionManager(SparkConnectionManager):
    TYPE = "sparksession"

    def set_connection_name(self, name: str | None = None) -> Connection:
        connection = super().set_connection_name(name)
        if connection.state == ConnectionState.OPEN:
            label_spark_jobs(connection.handle, connection.name)
        return connection

    @classmethod
    def open(cls, connection: Connection) -> Connection:
        if connection.state == ConnectionState.OPEN:
            return connection
        credentials = connection.credentials
        if credentials.method == CONNECT:
            # The server owns the metastore, the warehouse, its Python workers and
            # its JVM loggers: nothing of that is set up or locked from here.
            connection.handle = SessionHandle(session_for(credentials))
        elif credentials.method == SESSION:
            session = local_session(credentials.server_side_parameters)
            connection.handle = SessionHandle(session)
            label_spark_jobs(connection.handle, connection.name)
        else:
            return super().open(connection)
        connection.state = ConnectionState.OPEN
        return connection
