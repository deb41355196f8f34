"""A class-data-sharing archive for the JVM of a local Spark session.

Each ``dbt build`` on a local session starts a JVM that loads and verifies some
twenty thousand classes from Spark's jars (Spark SQL, Hive's metastore client,
DataNucleus, Derby, Parquet, Arrow). A dynamic AppCDS archive (JDK ≥ 13,
``-XX:ArchiveClassesAtExit``) holds them already parsed and verified, and the
JVM maps it instead (``-XX:SharedArchiveFile``). Measured here (2 cores,
Java 17): session start and first metastore query 17.5 s → 10 s, a whole tiny
``dbt build`` 101 s → 75 s (the same day).

The archive is made once per Java and Spark install (``make setup`` does it)::

    python -m dbt.adapters.sparksession.class_archive

by a child process that runs a small Spark workload and dumps the classes it
loaded when its JVM exits. It is published under its final name only after
that JVM has exited and a JVM has started with it: a truncated archive makes
the JVM abort, so none is ever used. Without an archive (or with one the JVM
finds stale), the session starts as before, only slower. Making an archive
removes those of Java or Spark installs that are gone or were updated since.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

#: The JVM's own messages about the archive (e.g. "Unable to use shared
#: archive" after a Java update) would land on dbt's console: off.
QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"

MODULE = "dbt.adapters.sparksession.class_archive"


def java_executable() -> str | None:
    """The ``java`` spark-submit starts: ``$JAVA_HOME/bin/java``, else the one on PATH."""
    if os.environ.get("JAVA_HOME"):
        return os.path.join(os.environ["JAVA_HOME"], "bin", "java")
    return shutil.which("java")


def install() -> dict | None:
    """The Java binary and the Spark jars an archive is made for; None without Java."""
    import pyspark

    java = java_executable()
    if java is None or not os.path.exists(java):
        return None
    java = os.path.realpath(java)
    jars = os.path.join(os.path.dirname(os.path.realpath(pyspark.__file__)), "jars")
    return {
        "java": java,
        "java_mtime_ns": os.stat(java).st_mtime_ns,
        "jars": jars,
        "jars_mtime_ns": os.stat(jars).st_mtime_ns if os.path.isdir(jars) else None,
        "pyspark": pyspark.__version__,
    }


def archive_path() -> Path | None:
    """Where the archive of this Java and this Spark install lives (it may not exist yet).

    Named by a hash of the Java binary (path and modification time) and of
    pyspark's jars (path and version), so that an update of either gets a new
    archive rather than a stale one. None when there is no Java to key it on.
    """
    made_for = install()
    if made_for is None:
        return None
    key = "{java}:{java_mtime_ns}:{jars}:{pyspark}".format(**made_for)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dbt-sparksession"
    return (
        cache / f"spark-{made_for['pyspark']}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.jsa"
    )


def is_stale(made_for: dict) -> bool:
    """Whether the install an archive was made for is gone or was updated since
    (a new Java binary, or jars added or removed by an upgrade of pyspark)."""
    try:
        return (
            os.stat(made_for["java"]).st_mtime_ns != made_for["java_mtime_ns"]
            or os.stat(made_for["jars"]).st_mtime_ns != made_for["jars_mtime_ns"]
        )
    except (OSError, KeyError, TypeError):
        return True


def prune(folder: Path) -> list[Path]:
    """Remove the archives of installs that are gone or updated: each is 0.2 GB, and
    none would be mapped again. An archive's ``.json`` says what it was made for;
    archives without one are left alone."""
    removed = []
    for record in sorted(folder.glob("*.json")):
        try:
            made_for = json.loads(record.read_text())
        except (OSError, ValueError):
            continue
        if is_stale(made_for):
            archive = record.with_suffix(".jsa")
            archive.unlink(missing_ok=True)
            record.unlink(missing_ok=True)
            removed.append(archive)
    return removed


def java_options() -> str:
    """JVM options that map the archive, or "" when there is none."""
    path = archive_path()
    if path is None or not path.is_file():
        return ""
    return f"-XX:SharedArchiveFile={path} {QUIET}"


def with_archive(server_side_parameters: dict[str, str]) -> dict[str, str]:
    """The parameters of a local session, its driver's JVM options extended to map the archive."""
    options = java_options()
    if not options:
        return dict(server_side_parameters)
    current = server_side_parameters.get("spark.driver.extraJavaOptions", "")
    if "-XX:SharedArchiveFile" in current or "-XX:ArchiveClassesAtExit" in current:
        return dict(server_side_parameters)  # the profile chose its own archive
    return {
        **server_side_parameters,
        "spark.driver.extraJavaOptions": f"{current} {options}".strip(),
    }


def create(path: Path | None = None) -> Path:
    """Make the archive: run :func:`workload` in a child process, check it, publish it."""
    path = path or archive_path()
    if path is None:
        raise SystemExit("no Java found (JAVA_HOME or java on PATH): no class archive made")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    try:
        with tempfile.TemporaryDirectory(prefix="class-archive-") as home:
            made = subprocess.run(
                [sys.executable, "-m", MODULE, "--workload", home, str(partial)],
                check=False,
                cwd=home,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYSPARK_PYTHON": sys.executable},
            )
            if made.returncode != 0:
                raise SystemExit(
                    f"the class archive's Spark workload failed (exit {made.returncode}):\n"
                    + "\n".join(made.stderr.splitlines()[-20:])
                )
            # a truncated archive aborts the JVM that maps it: try one before publishing
            # (in the temporary folder, where an aborting JVM leaves its hs_err file)
            checked = subprocess.run(
                [java_executable(), f"-XX:SharedArchiveFile={partial}", *QUIET.split(), "-version"],
                capture_output=True,
                check=False,
                cwd=home,
            )
        if not partial.is_file() or checked.returncode != 0:
            raise SystemExit(f"the class archive {partial} was not usable: not published")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    path.with_suffix(".json").write_text(json.dumps(install()))
    prune(path.parent)
    return path


def workload(home: str, dump_to: str) -> None:
    """Start a local session as the ``local`` profile does and run what a build runs.

    The JVM dumps the classes it loaded into ``dump_to`` when it exits; this
    waits for that exit, so the archive is complete when this process ends.
    """
    from dbt.adapters.sparksession.session import hive_session

    session = hive_session(
        {
            "spark.master": "local[2]",
            "spark.sql.warehouse.dir": f"{home}/warehouse",
            "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={home}/metastore_db;create=true",
            "spark.hadoop.hive.downloaded.resources.dir": f"{home}/hive_resources",
            "spark.driver.extraJavaOptions": f"-Dderby.stream.error.file={home}/derby.log "
            f"-XX:ArchiveClassesAtExit={dump_to} {QUIET}",
            "spark.sql.shuffle.partitions": "2",
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
        }
    )
    try:
        run_representative_plans(session)
    finally:
        # Spark's gateway JVM exits when its stdin closes, dumping the archive on
        # the way out: wait for it (also after a failure: no dump outlives this)
        gateway = session.sparkContext._gateway
        session.stop()
        gateway.proc.stdin.close()
        gateway.proc.wait()


def run_representative_plans(session) -> None:
    """Hive DDL and partitions, Parquet, arrays, joins, aggregates, windows,
    higher-order functions and Arrow Python UDFs: the kinds of plan dbt runs."""
    for statement in [
        "create database if not exists warm",
        (
            "create table warm.vectors using parquet partitioned by (version) as "
            "select id, cast(array(id, id * 2.0D) as array<double>) as embedding, 'v1' as version "
            "from range(100)"
        ),
        (
            "insert overwrite table warm.vectors partition (version = 'v2') "
            "select id, transform(array(id * 1D, id * 3D), x -> x + 1D) from range(100)"
        ),
        "describe table extended warm.vectors",
        "show partitions warm.vectors",
        "show table extended in warm like 'vectors'",
        (
            "create or replace view warm.pairs as select a.id, "
            "aggregate(zip_with(a.embedding, b.embedding, (x, y) -> x * y), 0D, (s, x) -> s + x) "
            "as dot from warm.vectors a join warm.vectors b "
            "on a.id = b.id and a.version = 'v1' and b.version = 'v2'"
        ),
        "select count(*), sum(dot), max(dot) over () from warm.pairs group by dot",
        "select id, row_number() over (partition by id % 7 order by xxhash64(id)) from warm.pairs",
        "alter table warm.vectors drop partition (version = 'v1')",
        "drop database warm cascade",
    ]:
        session.sql(statement).collect()

    def unchanged(batches):
        yield from batches

    session.range(100).mapInArrow(unchanged, "id long").collect()
    session.range(100).toPandas()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", nargs=2, metavar=("HOME", "DUMP_TO"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.workload:
        workload(*args.workload)
        return
    try:
        made = create()
    except OSError as error:  # e.g. a read-only home: no cache folder
        raise SystemExit(f"no class archive made: {error}") from None
    print(f"class archive for local Spark sessions: {made}")


if __name__ == "__main__":
    main()
