"""A shared Hive metastore on this machine: a PostgreSQL server and a Hive metastore
service (thrift) in front of it, as a company's warehouse runs one.

The service is Hive's own (``org.apache.hadoop.hive.metastore.HiveMetaStore``, from
the Hive 2.3 jars pyspark ships), on PostgreSQL through its JDBC driver (fetched from
Maven Central at set-up: ``make metastore``). Any number of Spark processes reach
it at ``thrift://127.0.0.1:<port>`` (``hive.metastore.uris``), as they reach EMR's,
Dataproc's or an on-premises one; the embedded Derby metastore of the ``local`` target
admits one process at a time.

    python scripts/shared_metastore.py start FOLDER   # prints the variables to export
    python scripts/shared_metastore.py stop FOLDER

FOLDER holds the database, the warehouse and the logs; ``stop`` ends both servers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
#: Debian's PostgreSQL server (apt-get install postgresql; make metastore installs it)
POSTGRES_BIN = Path(os.environ.get("POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))
#: the PostgreSQL JDBC driver make metastore fetched
DRIVER_JARS = Path(os.environ.get("METASTORE_JARS", PROJECT_DIR / ".venv" / "metastore-jars"))
#: PostgreSQL refuses to run as root: as root, the server runs as this user
POSTGRES_USER = "postgres"
DATABASE = "metastore"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def as_server_user(command: list[str]) -> list[str]:
    """``command`` as the PostgreSQL user when this process is root (initdb and postgres
    refuse root), else as is."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", POSTGRES_USER, "--", *command]


def wait_for_port(port: int, seconds: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.5)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    raise RuntimeError(f"{what} did not listen on port {port} within {seconds:.0f} s:\n{tail}")


def hive_site(jdbc_url: str, warehouse: Path) -> str:
    """hive-site.xml of the metastore service: PostgreSQL behind it, its schema created
    by DataNucleus on first use (schematool's scripts are not in pyspark's jars)."""
    properties = {
        "javax.jdo.option.ConnectionURL": jdbc_url,
        "javax.jdo.option.ConnectionDriverName": "org.postgresql.Driver",
        "javax.jdo.option.ConnectionUserName": "hive",
        "javax.jdo.option.ConnectionPassword": "",
        "datanucleus.schema.autoCreateAll": "true",
        "hive.metastore.schema.verification": "false",
        "hive.metastore.warehouse.dir": str(warehouse),
        # Hive logs through log4j2's async loggers by default: their library is not in pyspark
        "hive.async.log.enabled": "false",
        # the pool of the service's lock and transaction store (TxnHandler): commons-dbcp,
        # which pyspark ships (Hive 2.3's default, BoneCP, it does not)
        "datanucleus.connectionPoolingType": "DBCP",
    }
    entries = "".join(
        f"  <property><name>{name}</name><value>{value}</value></property>\n"
        for name, value in properties.items()
    )
    return f'<?xml version="1.0"?>\n<configuration>\n{entries}</configuration>\n'


def create_metastore_schema(folder: Path, jdbc_url: str, class_path: str) -> None:
    """Create the metastore's tables in PostgreSQL before the service starts, with
    DataNucleus' schema tool on Hive's own mapping (``package.jdo`` in Hive's jar).

    Left to the service (``datanucleus.schema.autoCreateAll`` alone), each table is
    created on first use, in a transaction of its own beside the request's, whose
    locks its foreign keys wait for: on PostgreSQL the first ``create view`` hung
    for good (measured). Hive's schematool scripts are not in pyspark's jars. The
    mapping's unique keys (a database's name, a table's name in its database, a
    partition's name in its table) become PostgreSQL's constraints: of two processes
    that create one table or view at once, one fails (the build lock relies on it)."""
    import zipfile

    mapping = folder / "package.jdo"
    with zipfile.ZipFile(pyspark_jars() / "hive-metastore-2.3.10.jar") as jar:
        mapping.write_bytes(jar.read("package.jdo"))
    properties = folder / "datanucleus.properties"
    properties.write_text(
        "\n".join(
            [
                f"javax.jdo.option.ConnectionURL={jdbc_url}",
                "javax.jdo.option.ConnectionDriverName=org.postgresql.Driver",
                "javax.jdo.option.ConnectionUserName=hive",
                "javax.jdo.option.ConnectionPassword=",
                (
                    "javax.jdo.PersistenceManagerFactoryClass="
                    "org.datanucleus.api.jdo.JDOPersistenceManagerFactory"
                ),
                "datanucleus.identifierFactory=datanucleus1",
                "datanucleus.rdbms.useLegacyNativeValueStrategy=true",
                "datanucleus.storeManagerType=rdbms",
                "",
            ]
        )
    )
    with open(folder / "schema.log", "w") as log:
        subprocess.run(
            [
                "java",
                "-cp",
                class_path,
                "org.datanucleus.store.schema.SchemaTool",
                "-create",
                "-api",
                "JDO",
                "-props",
                str(properties),
                str(mapping),
            ],
            cwd=folder,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=True,
        )


#: The tables of the metastore's lock API (lock, check_lock, unlock, heartbeat,
#: show_locks: what Iceberg's commits call), which Hive's JDO mapping leaves out: they
#: are read and written by Hive 2.3's TxnHandler in plain SQL, with these names and
#: columns. A metastore set up by Hive's schematool has them.
LOCK_TABLES = """
create table txns (
    txn_id bigint primary key, txn_state char(1) not null, txn_started bigint not null,
    txn_last_heartbeat bigint not null, txn_user varchar(128) not null,
    txn_host varchar(128) not null, txn_agent_info varchar(128),
    txn_meta_info varchar(128), txn_heartbeat_count integer);
create table txn_components (
    tc_txnid bigint references txns (txn_id), tc_database varchar(128) not null,
    tc_table varchar(128), tc_partition varchar(767), tc_operation_type char(1) not null);
create table completed_txn_components (
    ctc_txnid bigint, ctc_database varchar(128) not null, ctc_table varchar(256),
    ctc_partition varchar(767));
create table next_txn_id (ntxn_next bigint not null);
insert into next_txn_id values (1);
create table hive_locks (
    hl_lock_ext_id bigint not null, hl_lock_int_id bigint not null, hl_txnid bigint,
    hl_db varchar(128) not null, hl_table varchar(128), hl_partition varchar(767),
    hl_lock_state char(1) not null, hl_lock_type char(1) not null,
    hl_last_heartbeat bigint not null, hl_acquired_at bigint, hl_user varchar(128) not null,
    hl_host varchar(128) not null, hl_heartbeat_count integer, hl_agent_info varchar(128),
    hl_blockedby_ext_id bigint, hl_blockedby_int_id bigint,
    primary key (hl_lock_ext_id, hl_lock_int_id));
create table next_lock_id (nl_next bigint not null);
insert into next_lock_id values (1);
create table aux_table (
    mt_key1 varchar(128) not null, mt_key2 bigint not null, mt_comment varchar(255),
    primary key (mt_key1, mt_key2));
create table write_set (
    ws_database varchar(128) not null, ws_table varchar(128) not null,
    ws_partition varchar(767), ws_txnid bigint not null, ws_commit_id bigint not null,
    ws_operation_type char(1) not null);
"""


def database_statement(folder: Path, statement: str) -> str:
    """Run ``statement`` in the metastore's database under ``folder``; its output
    (unaligned, tuples only)."""
    port = (folder / "postgres.port").read_text().strip()
    return subprocess.run(
        [str(POSTGRES_BIN / "psql"), "-h", "127.0.0.1", "-p", port, "-U", "hive"]
        + ["-v", "ON_ERROR_STOP=1", "-q", "-A", "-t", "-c", statement, DATABASE],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def locks_granted(folder: Path) -> int:
    """How many table locks the metastore under ``folder`` has handed out so far."""
    return int(database_statement(folder.resolve(), "select nl_next - 1 from next_lock_id"))


def pyspark_jars() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent / "jars"


def start(folder: Path) -> dict[str, str]:
    """Start PostgreSQL and the metastore service under ``folder``; return the
    variables a Spark process needs to use them (the ``shared`` target's)."""
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    drivers = sorted(DRIVER_JARS.glob("postgresql-*.jar"))
    if not drivers:
        raise FileNotFoundError(
            f"no PostgreSQL JDBC driver in {DRIVER_JARS}: make metastore fetches it"
        )
    if not (POSTGRES_BIN / "postgres").exists():
        raise FileNotFoundError(
            f"no PostgreSQL server in {POSTGRES_BIN}: apt-get install postgresql "
            "(make metastore installs it), or set POSTGRES_BIN"
        )
    database = folder / "postgres"
    warehouse = folder / "warehouse"
    warehouse.mkdir(exist_ok=True)
    postgres_port, metastore_port = free_port(), free_port()
    if os.geteuid() == 0:
        database.mkdir(exist_ok=True)
        shutil.chown(database, user=POSTGRES_USER)
        # the server user must reach its folder; the rest stays the caller's
        for parent in [folder, *folder.parents]:
            os.chmod(parent, os.stat(parent).st_mode | 0o011)
    subprocess.run(
        as_server_user(
            [str(POSTGRES_BIN / "initdb"), "-D", str(database), "-U", "hive", "--auth=trust"]
        ),
        check=True,
        capture_output=True,
    )
    pg_log = folder / "postgres.log"
    if os.geteuid() == 0:
        pg_log.touch()
        shutil.chown(pg_log, user=POSTGRES_USER)
    options = f"-p {postgres_port} -k {database} -c listen_addresses=127.0.0.1"
    subprocess.run(
        as_server_user(
            [
                str(POSTGRES_BIN / "pg_ctl"),
                "-D",
                str(database),
                "-o",
                options,
                "-l",
                str(pg_log),
                "-w",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            str(POSTGRES_BIN / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(postgres_port),
            "-U",
            "hive",
            DATABASE,
        ],
        check=True,
        capture_output=True,
    )
    conf = folder / "conf"
    conf.mkdir(exist_ok=True)
    jdbc_url = f"jdbc:postgresql://127.0.0.1:{postgres_port}/{DATABASE}"
    (conf / "hive-site.xml").write_text(hive_site(jdbc_url, warehouse))
    class_path = os.pathsep.join([str(conf), f"{pyspark_jars()}/*", *map(str, drivers)])
    create_metastore_schema(folder, jdbc_url, class_path)
    (folder / "postgres.port").write_text(str(postgres_port))
    database_statement(folder, LOCK_TABLES)
    log = folder / "metastore.log"
    with open(log, "w") as output:
        service = subprocess.Popen(
            [
                "java",
                "-Xmx512m",
                f"-Djava.io.tmpdir={folder}",
                "-cp",
                class_path,
                "org.apache.hadoop.hive.metastore.HiveMetaStore",
                "-p",
                str(metastore_port),
            ],
            cwd=folder,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    (folder / "metastore.pid").write_text(str(service.pid))
    try:
        wait_for_port(metastore_port, 120, "the Hive metastore service", log)
    except Exception:
        stop(folder)
        raise
    return {
        "HIVE_METASTORE_URIS": f"thrift://127.0.0.1:{metastore_port}",
        "DBT_WAREHOUSE_DIR": str(warehouse),
    }


def stop(folder: Path) -> None:
    """End the metastore service and PostgreSQL started under ``folder`` (whichever is
    running)."""
    folder = folder.resolve()
    pid_file = folder / "metastore.pid"
    if pid_file.exists():
        try:
            os.killpg(int(pid_file.read_text()), signal.SIGTERM)
        except ProcessLookupError:
            pass
        pid_file.unlink()
    database = folder / "postgres"
    if (database / "postmaster.pid").exists():
        subprocess.run(
            as_server_user(
                [str(POSTGRES_BIN / "pg_ctl"), "-D", str(database), "-m", "fast", "-w", "stop"]
            ),
            check=False,
            capture_output=True,
        )


def main(arguments: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("folder", type=Path)
    options = parser.parse_args(arguments)
    if options.action == "stop":
        stop(options.folder)
        return 0
    for name, value in start(options.folder).items():
        print(f"export {name}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
