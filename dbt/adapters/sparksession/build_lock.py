"""One dbt invocation at a time in a schema: a lock held in the metastore.

The project's intermediate tables are one set per schema, and a version's base is
the latest version published when its build starts: two builds at once in one schema
(two orchestrator runs, a retry while the first try still runs, a backfill beside the
daily build) would overwrite each other's tables and align both to the same base. So
each invocation that builds or tests (``on-run-start``) first takes the schema's lock,
and gives it back when it ends (``on-run-end``); another invocation waits for it.

The lock is a view, ``<schema>.stabilization_build_lock``, whose table properties
name its holder: creating a view that exists fails in the metastore itself (its table names
are unique in its database: Hive's on PostgreSQL or MySQL, Glue, Unity Catalog), so
of two invocations that create it at once exactly one succeeds. A view holds no files
and needs no table format. The holder of a lock it finds is read from those (metadata: no query runs); a
lock whose holder is a process of this machine that no longer runs (killed), or
that is older than the stated expiry, is taken over.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

LOCK_VIEW = "stabilization_build_lock"
#: The lock view's table properties that name its holder start with this.
PROPERTY = "embedding_stabilization.lock."


@dataclass(frozen=True)
class Holder:
    """Who holds a schema's build lock."""

    invocation_id: str
    embedding_version: str
    command: str
    host: str
    pid: int
    #: when it took the lock, UTC
    acquired_at: datetime

    def describe(self) -> str:
        return (
            f"dbt {self.command} of version '{self.embedding_version}' (invocation "
            f"{self.invocation_id}, pid {self.pid} on {self.host}, since "
            f"{self.acquired_at:%Y-%m-%d %H:%M:%S} UTC)"
        )


def this_process(invocation_id: str, version: str, command: str, now: datetime) -> Holder:
    return Holder(invocation_id, version, command, socket.gethostname(), os.getpid(), now)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it runs
        return True
    return True


def abandoned(holder: Holder, now: datetime, expires_after: timedelta) -> str | None:
    """Why another invocation's lock may be taken over (None: it may not): its process,
    on this machine, is gone, or is this one (dbt runs one invocation at a time in a
    process: that one ended without giving it back); or it is older than
    ``expires_after``."""
    if holder.host == socket.gethostname():
        if holder.pid == os.getpid():
            return "it was taken by an earlier invocation in this process that did not end"
        if not process_alive(holder.pid):
            return f"its process {holder.pid} on {holder.host} no longer runs"
    if now - holder.acquired_at > expires_after:
        return f"it is older than {expires_after} (var build_lock_expires_after_minutes)"
    return None


def sql_string(value: str) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def create_statement(schema: str, holder: Holder) -> str:
    """The statement that takes the lock: fails if the view exists. The holder is in
    its table properties, which the metastore returns without running a query."""
    fields = {
        "invocation_id": holder.invocation_id,
        "embedding_version": holder.embedding_version,
        "command": holder.command,
        "host": holder.host,
        "pid": str(holder.pid),
        "acquired_at": holder.acquired_at.isoformat(),
    }
    listed = ", ".join(
        f"{sql_string(PROPERTY + name)} = {sql_string(value)}" for name, value in fields.items()
    )
    return f"create view {schema}.{LOCK_VIEW} tblproperties ({listed}) as select 1 as held"


def read_holder(sql: Callable[[str], list], schema: str) -> Holder | None:
    """The lock's holder, or None when no one holds it."""
    try:
        rows = sql(f"show tblproperties {schema}.{LOCK_VIEW}")
    except Exception as error:  # classic and Connect sessions raise different types
        if "TABLE_OR_VIEW_NOT_FOUND" in str(error) or "not found" in str(error).lower():
            return None
        raise
    fields = {row[0][len(PROPERTY) :]: row[1] for row in rows if row[0].startswith(PROPERTY)}
    if not fields:
        return None
    return Holder(
        fields["invocation_id"],
        fields["embedding_version"],
        fields["command"],
        fields["host"],
        int(fields["pid"]),
        datetime.fromisoformat(fields["acquired_at"]),
    )


def acquire(
    sql: Callable[[str], list],
    schema: str,
    holder: Holder,
    wait: timedelta,
    expires_after: timedelta,
    log: Callable[[str], None],
    poll_seconds: float = 2.0,
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
) -> None:
    """Take ``schema``'s build lock for ``holder``; wait up to ``wait`` while another
    holds it; raise RuntimeError, naming the holder, when it still does."""
    deadline = time.monotonic() + wait.total_seconds()
    announced = None
    while True:
        try:
            sql(create_statement(schema, holder))
            return
        except Exception as error:  # classic and Connect sessions raise different types
            if "SCHEMA_NOT_FOUND" in str(error):  # dbt test, before any model made it
                sql(f"create schema if not exists {schema}")
                continue
            current = read_holder(sql, schema)
            if current is None:
                if "already exists" in str(error).lower():
                    continue  # released between the two statements
                raise
        if current.invocation_id == holder.invocation_id:
            return
        reason = abandoned(current, clock(), expires_after)
        if reason:
            log(
                f"taking over the build lock of schema {schema} from {current.describe()}: {reason}"
            )
            release(sql, schema, current.invocation_id)
            continue
        if time.monotonic() >= deadline:
            raise RuntimeError(
                f"schema {schema} is being built by {current.describe()}: this run waited "
                f"{wait} (var build_lock_wait_minutes) for it to finish. Two runs at once "
                f"in one schema would overwrite each other's tables. If that run was "
                f"stopped without ending (a killed process on another machine), release "
                f"its lock: dbt run-operation release_build_lock --args '{{any_holder: true}}'"
            )
        if announced != current:
            log(f"waiting for the build lock of schema {schema}, held by {current.describe()}")
            announced = current
        time.sleep(poll_seconds)


def refresh_tables(sql: Callable[[str], list], schema: str, tables: list[str]) -> None:
    """Forget what this session cached of ``schema``'s tables (their file listings,
    Iceberg's table metadata); how many tables it refreshed.

    A session that outlives one invocation (a backfill's builds, a Connect or Thrift
    server) lists a table's files once and reads that list again: files another
    process replaced in the meantime (a rebuild of a version, while this one waited
    for the lock) then fail the read with FILE_NOT_EXIST. Only tables: a view holds
    no files, and refreshing one whose inputs changed type fails (Spark 3.5)."""
    for table in tables:
        sql(f"refresh table {schema}.{table}")


def release(sql: Callable[[str], list], schema: str, invocation_id: str | None = None) -> bool:
    """Drop the lock if ``invocation_id`` holds it (any holder if None); whether it was
    dropped."""
    current = read_holder(sql, schema)
    if current is None or (invocation_id is not None and current.invocation_id != invocation_id):
        return False
    sql(f"drop view if exists {schema}.{LOCK_VIEW}")
    return True
