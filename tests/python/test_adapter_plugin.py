"""The adapter plugin's own pieces, without Spark: credentials, artifacts, error messages."""

from __future__ import annotations

import os
import re
import socket
import threading
import zipfile
from datetime import datetime, timedelta, timezone

import pytest
from dbt_common.exceptions import DbtRuntimeError
from pyspark.errors import AnalysisException

from dbt.adapters.sparksession import build_lock, connections
from dbt.adapters.sparksession.connections import SparksessionCredentials, open_ahead
from dbt.adapters.sparksession.impl import spark_reason
from dbt.adapters.sparksession.remote import _apply_parameters, _grpc_reason, package_zip
from dbt.adapters.sparksession.session import jars_listed


def credentials(**fields) -> SparksessionCredentials:
    return SparksessionCredentials.from_dict({"schema": "s", **fields})


def test_connect_credentials_need_a_spark_connect_url():
    assert credentials(method="connect", host="sc://spark:15002").method == "connect"
    with pytest.raises(
        DbtRuntimeError, match="needs host to be a Spark Connect URL.*'spark:15002'"
    ):
        credentials(method="connect", host="spark:15002")


def test_session_credentials_keep_dbt_sparks_behaviour():
    session = credentials(method="session", host="localhost", py_packages=["python_udfs"])
    assert session.type == "sparksession"
    assert session.py_packages == ["python_udfs"]
    # dbt-spark forces ANSI off for Spark 3/4 compatibility; so do we
    assert session.server_side_parameters["spark.sql.ansi.enabled"] == "false"


@pytest.mark.parametrize(
    ("method", "command", "opens"),
    [
        ("session", "build", True),
        ("session", "run-operation", True),
        ("session", "parse", False),  # no query: no JVM
        ("session", None, False),  # an adapter made outside a dbt command
        ("connect", "build", False),  # a remote session: nothing to start here
    ],
)
def test_a_local_session_is_opened_ahead_only_for_commands_that_query(
    monkeypatch, method, command, opens
):
    opened = []
    monkeypatch.setattr(connections, "local_session", lambda parameters: opened.append(parameters))
    host = "sc://spark:15002" if method == "connect" else "localhost"
    profile = credentials(
        method=method, host=host, server_side_parameters={"spark.master": "local[1]"}
    )
    thread = open_ahead(profile, command)
    assert (thread is not None) == opens
    if thread is not None:
        thread.join(timeout=10)
        assert thread.daemon  # never keeps a finished dbt process alive
        assert opened == [profile.server_side_parameters]
    else:
        assert opened == []


def test_a_failure_to_open_ahead_is_left_for_dbts_own_connection(monkeypatch):
    def locked(parameters):
        raise DbtRuntimeError("the embedded metastore is in use by another process")

    uncaught = []
    monkeypatch.setattr(connections, "local_session", locked)
    monkeypatch.setattr(threading, "excepthook", uncaught.append)
    thread = open_ahead(credentials(method="session", host="localhost"), "build")
    thread.join(timeout=10)
    # ended quietly (no traceback on the console): dbt's open() meets the error again and reports it
    assert not thread.is_alive() and uncaught == []


def test_spark_jars_patterns_are_listed_as_the_files_they_match(tmp_path):
    for name in ("b.jar", "a.jar", "notes.txt"):
        (tmp_path / name).write_text("")
    jars = f"{tmp_path}/*.jar, s3://bucket/x.jar,{tmp_path}/none-*.jar"
    # a pattern matching nothing, and a remote one, are left for Spark to report
    assert jars_listed(jars) == ",".join(
        [f"{tmp_path}/a.jar", f"{tmp_path}/b.jar", "s3://bucket/x.jar", f"{tmp_path}/none-*.jar"]
    )


def test_package_zip_holds_the_package_sources_only(tmp_path):
    archive = package_zip("python_udfs", tmp_path)
    assert archive == tmp_path / "python_udfs.zip"
    names = zipfile.ZipFile(archive).namelist()
    assert "python_udfs/__init__.py" in names and "python_udfs/spark.py" in names
    assert not any("__pycache__" in name for name in names)
    assert all(name.startswith("python_udfs/") for name in names)


def test_package_zip_refuses_what_is_not_an_importable_package(tmp_path):
    with pytest.raises(DbtRuntimeError, match="'no_such_package' is not an importable package"):
        package_zip("no_such_package", tmp_path)
    with pytest.raises(DbtRuntimeError, match="'json.decoder' is not an importable package"):
        package_zip("json.decoder", tmp_path)  # a module, not a package


class _Conf:
    def __init__(self, static: set[str]):
        self.static, self.values = static, {}

    def set(self, key, value):
        if key in self.static:
            raise AnalysisException(message=f'[CANNOT_MODIFY_CONFIG] Cannot modify "{key}".')
        self.values[key] = value


class _Session:
    def __init__(self, static: set[str]):
        self.conf = _Conf(static)


def test_runtime_parameters_are_set_and_a_static_one_is_named():
    session = _Session(static={"spark.sql.warehouse.dir"})
    _apply_parameters(session, {"spark.sql.session.timeZone": "UTC"}, "sc://h:1")
    assert session.conf.values == {"spark.sql.session.timeZone": "UTC"}
    with pytest.raises(
        DbtRuntimeError,
        match=r"spark.sql.warehouse.dir cannot be set by a "
        r"client of the Spark Connect server at sc://h:1; set it in the server",
    ):
        _apply_parameters(session, {"spark.sql.warehouse.dir": "/tmp/w"}, "sc://h:1")


def test_grpc_reason_reads_status_and_details_from_the_cause():
    class RpcError(Exception):
        def code(self):
            class Code:
                name = "UNAVAILABLE"

            return Code()

        def details(self):
            return "failed to connect to all addresses"

    try:
        try:
            raise RpcError("<_InactiveRpcError of RPC that terminated with:\n status = …>")
        except RpcError:
            raise RuntimeError("SparkConnectGrpcException()") from None
    except RuntimeError as wrapped:
        wrapped.__context__ = RpcError()
        assert _grpc_reason(wrapped) == "UNAVAILABLE: failed to connect to all addresses"
    assert _grpc_reason(ValueError("first line\nsecond")) == "first line"


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (
            (
                "Runtime Error\n  [UNRESOLVED_COLUMN.WITH_SUGGESTION] A column `dss` cannot be"
                " resolved. SQLSTATE: 42703; line 3 pos 7;\n'Project [*]\n+- 'Filter ('dss = 1)"
            ),
            "[UNRESOLVED_COLUMN.WITH_SUGGESTION] A column `dss` cannot be resolved.",
        ),
        (
            (
                "Database Error\n  [PARSE_SYNTAX_ERROR] Syntax error at or near end of input."
                " SQLSTATE: 42601 (line 1, pos 50)\n\n== SQL ==\nselect"
            ),
            "[PARSE_SYNTAX_ERROR] Syntax error at or near end of input.",
        ),
        ("something else", "something else"),
    ],
)
def test_spark_reason_is_one_line_without_the_plan(message, reason):
    assert spark_reason(message) == reason


class FakeCatalog:
    """The statements build_lock runs, on one view kept in memory: creating a view that
    exists fails as the metastore does."""

    def __init__(self, holder=None):
        self.properties = None
        if holder is not None:
            self(build_lock.create_statement("s", holder))

    def __call__(self, sql: str) -> list:
        if sql.startswith("create view"):
            if self.properties is not None:
                raise AnalysisException("[TABLE_OR_VIEW_ALREADY_EXISTS] it already exists")
            self.properties = re.findall(r"'([^']*)' = '([^']*)'", sql)
            return []
        if sql.startswith("show tblproperties"):
            if self.properties is None:
                raise AnalysisException("[TABLE_OR_VIEW_NOT_FOUND] not found")
            return [*self.properties, ("transient_lastDdlTime", "0")]
        if sql.startswith("drop view"):
            self.properties = None
            return []
        raise AssertionError(sql)


def lock_holder(invocation: str, pid: int, age: timedelta = timedelta(0)):
    now = datetime.now(timezone.utc)
    return build_lock.Holder(invocation, "v1", "build", socket.gethostname(), pid, now - age)


def acquire(catalog, holder, wait=timedelta(0), expires_after=timedelta(hours=1)):
    messages = []
    build_lock.acquire(
        catalog, "s", holder, wait, expires_after, messages.append, poll_seconds=0.01
    )
    return messages


def test_the_build_lock_is_taken_once_and_given_back_by_its_holder_only():
    catalog = FakeCatalog()
    mine = lock_holder("mine", os.getpid())
    assert acquire(catalog, mine) == []
    assert build_lock.read_holder(catalog, "s") == mine
    assert not build_lock.release(catalog, "s", "another")
    assert build_lock.release(catalog, "s", "mine")
    assert build_lock.read_holder(catalog, "s") is None


def test_a_build_lock_held_by_a_running_process_makes_the_run_wait_then_fail_naming_it():
    holder = lock_holder("theirs", os.getppid())  # alive
    with pytest.raises(RuntimeError) as raised:
        acquire(FakeCatalog(holder), lock_holder("mine", os.getpid()), wait=timedelta(seconds=0.05))
    message = str(raised.value)
    assert "schema s is being built by dbt build of version 'v1' (invocation theirs" in message
    assert f"pid {os.getppid()} on {socket.gethostname()}" in message
    assert "release_build_lock --args '{any_holder: true}'" in message


#: holders whose lock is abandoned: (its process, its age, the reason given)
ABANDONED_HOLDERS = {
    "killed": (2**22 + 1, timedelta(0), "no longer runs"),  # above Linux's pid_max
    "this process": (os.getpid(), timedelta(0), "an earlier invocation in this process"),
    "expired": (os.getppid(), timedelta(hours=2), "older than 1:00:00"),
}


@pytest.mark.parametrize("holder", ABANDONED_HOLDERS)
def test_an_abandoned_build_lock_is_taken_over(holder):
    pid, age, reason = ABANDONED_HOLDERS[holder]
    catalog = FakeCatalog(lock_holder("killed", pid, age))
    mine = lock_holder("mine", os.getpid())
    messages = acquire(catalog, mine)
    assert build_lock.read_holder(catalog, "s").invocation_id == "mine"
    assert len(messages) == 1 and reason in messages[0] and "invocation killed" in messages[0]
