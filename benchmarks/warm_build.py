"""Where a warm build's time goes, node by node.

    .venv/bin/python benchmarks/warm_build.py [--users 1000] [--items 200] [--dimension 16]

Writes three tiny synthetic retrains as Parquet and builds them in one process
(dbt's programmatic API, one Spark session, a fresh embedded metastore), each
aligned to the one before: the first build starts the JVM, the second warms
the aligned path, the third is measured. For the third it prints every node:

- wall: dbt's node time (compile + execute), and when it started after the build did;
- sql: the statements dbt sent (count / seconds), split into catalog statements
  (show, describe, create view, alter, drop: metastore round trips, no job) and
  queries (the rest);
- jobs / stages / tasks and job s: the Spark jobs the node started (the adapter
  labels each thread's jobs with dbt's node id) and the time they ran, from
  Spark's event log;
- py: Python workers started for the node (new processes forked by Spark's
  Python daemon, seen by a poller of /proc);
- rest: wall time outside the node's SQL statements (dbt's Jinja and
  materialization logic, Python models' driver work and their DataFrame jobs).

Then the build's totals: the critical path (wall time from the first node's
start to the last node's end) against the sum of node times.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR))

from stabilization_tools.synthetic import first_retrain, next_retrain, write_parquet

#: first words of statements that only touch the catalog (no Spark job of their own)
CATALOG_WORDS = (
    "show",
    "describe",
    "desc",
    "alter",
    "drop",
    "create view",
    "create or replace view",
    "create schema",
    "create database",
    "use",
    "refresh",
)


def statement_kind(sql: str) -> str:
    body = sql.split("*/", 1)[-1].strip().lower() if sql.lstrip().startswith("/*") else sql
    body = " ".join(body.strip().lower().split())
    return "catalog" if body.startswith(CATALOG_WORDS) else "query"


class PythonWorkerWatch:
    """Counts Python worker processes forked by Spark's daemon (pyspark.daemon),
    per dbt node, by polling the daemon's children every 20 ms.

    The daemons are looked for among this process's descendants once a second
    only: that walk reads the children of each of the JVM's hundred-odd threads,
    and done every 20 ms it took more of this process's CPU (and of the GIL dbt's
    threads need) than dbt itself (py-spy, 2026-11-30).
    """

    def __init__(self):
        self.seen: set[int] = set()
        self.started: list[tuple[float, int]] = []  # (time.time(), pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        daemons, looked = [], 0.0
        while not self._stop.wait(0.02):
            if time.monotonic() - looked >= 1.0:
                daemons = [
                    pid
                    for pid in _descendants(os.getpid())
                    if "pyspark.daemon" in _cmdline(pid) and not _is_fork(pid)
                ]
                looked = time.monotonic()
            for daemon in daemons:  # a worker is a fork of the daemon
                for pid in _children(daemon):
                    if pid not in self.seen:
                        self.seen.add(pid)
                        self.started.append((time.time(), pid))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()


def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return found


def _descendants(pid: int) -> list[int]:
    found, stack = [], _children(pid)
    while stack:
        child = stack.pop()
        found.append(child)
        stack += _children(child)
    return found


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except (FileNotFoundError, ProcessLookupError):
        return ""


def _is_fork(pid: int) -> bool:
    """A worker is a fork of the daemon: its parent runs pyspark.daemon too."""
    stat = _stat(Path(f"/proc/{pid}/stat"))
    return stat is not None and "pyspark.daemon" in _cmdline(int(stat[1][1]))


def _stat(path: Path) -> tuple[str, list[str]] | None:
    """A process's or thread's /proc stat: its name and the fields after it (field 1:
    the parent's pid; 11 and 12: user and system CPU, in clock ticks); None once gone."""
    try:
        stat = path.read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat[stat.index("(") + 1 : stat.rindex(")")], stat.rsplit(")", 1)[1].split()


def spark_jobs(event_log_dir: Path) -> list[dict]:
    """Jobs of Spark's event log: group (dbt node), start, end, stages, tasks."""
    jobs: dict[int, dict] = {}
    stage_tasks: dict[int, int] = {}
    executions: dict[int, str] = {}
    for path in sorted(p for p in event_log_dir.rglob("*") if p.is_file()):
        for line in path.read_text().splitlines():
            if not line.startswith("{"):
                continue  # the rolling log's status files are empty
            event = json.loads(line)
            kind = event.get("Event")
            if kind == "SparkListenerJobStart":
                properties = event.get("Properties") or {}
                group = properties.get("spark.jobGroup.id") or properties.get(
                    "spark.job.description"
                )
                stages = event.get("Stage Infos") or []
                jobs[event["Job ID"]] = {
                    "node": (group or "").removeprefix("dbt "),
                    "start": event["Submission Time"] / 1000,
                    "stage_ids": [s["Stage ID"] for s in stages],
                    "name": stages[-1]["Stage Name"] if stages else "",
                    "execution": properties.get("spark.sql.execution.id"),
                }
            elif kind.endswith("SQLExecutionStart"):
                executions[str(event["executionId"])] = " ".join(
                    event.get("description", "").split()
                )
            elif kind == "SparkListenerJobEnd":
                jobs[event["Job ID"]]["end"] = event["Completion Time"] / 1000
            elif kind == "SparkListenerStageCompleted":
                info = event["Stage Info"]
                if "Completion Time" in info:  # skipped stages never ran
                    stage_tasks[info["Stage ID"]] = info["Number of Tasks"]
    for job in jobs.values():
        job["sql"] = executions.get(str(job["execution"]), "")
        ran = [stage for stage in job["stage_ids"] if stage in stage_tasks]
        job["stages"] = len(ran)
        job["tasks"] = sum(stage_tasks[stage] for stage in ran)
    return list(jobs.values())


def union_seconds(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total


def as_table(relation: str, name: str) -> str:
    """An external Parquet table of the catalog over a ``parquet.`path``` relation."""
    from dbt.adapters.sparksession.connections import local_session
    from tests.python.conftest import profile_target

    session = local_session(profile_target("local")["server_side_parameters"])
    path = relation.removeprefix("parquet.`").removesuffix("`")
    session.sql("create schema if not exists warm_build_inputs")
    session.sql(f"create table warm_build_inputs.{name} using parquet location '{path}'")
    return f"warm_build_inputs.{name}"


def codegen_compilations() -> int:
    """How many classes Spark has generated and compiled with Janino in this JVM so far
    (whole-stage and expression code; a query whose code is in Spark's cache of
    compiled classes, spark.sql.codegen.cache.maxEntries, compiles none)."""
    from pyspark import SparkContext

    if SparkContext._jvm is None:
        return 0
    metrics = SparkContext._jvm.org.apache.spark.metrics.source.CodegenMetrics
    return metrics.METRIC_COMPILATION_TIME().getCount()


def cpu_seconds() -> dict[str, float]:
    """CPU seconds (user + system) so far of this process (dbt, Python) and of its JVM."""
    times = os.times()
    seconds = {"python": times.user + times.system, "jvm": 0.0}
    tick = os.sysconf("SC_CLK_TCK")
    for pid in _children(os.getpid()):
        stat = _stat(Path(f"/proc/{pid}/stat"))
        if stat is None or stat[0] != "java":
            continue
        fields = stat[1]
        seconds["jvm"] += (int(fields[11]) + int(fields[12])) / tick
        for group, ticks in JVM_THREADS.ticks_by_group(pid).items():
            seconds[f"jvm {group}"] = seconds.get(f"jvm {group}", 0.0) + ticks / tick
    return seconds


#: the JVM's threads by the start of their (15-character) Linux names
JVM_THREAD_GROUPS = (
    ("jit", ("C1 CompilerThre", "C2 CompilerThre")),
    ("gc", ("GC Thread", "VM Thread", "ParGC", "G1 ")),
    ("tasks", ("Executor task l",)),
)


class JvmThreadWatch:
    """CPU clock ticks of each thread of the JVM, grouped: JIT compiling, garbage
    collection, Spark's tasks and the rest (the driver: planning, scheduling,
    catalog calls, py4j, Python runners' threads). Polled every 0.5 s, so that
    threads which end (the JVM starts and stops compiler threads as the queue
    grows and shrinks) keep what they had spent when last seen."""

    def __init__(self):
        self.last_seen: dict[tuple[int, int], tuple[str, int]] = {}
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            time.sleep(0.5)
            for pid in _children(os.getpid()):
                self._poll(pid)

    def _poll(self, pid: int):
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except (FileNotFoundError, ProcessLookupError):
            return
        for task in tasks:
            stat = _stat(task / "stat")
            if stat is not None:
                name, fields = stat
                self.last_seen[(pid, int(task.name))] = (name, int(fields[11]) + int(fields[12]))

    def ticks_by_group(self, pid: int) -> dict[str, int]:
        self._poll(pid)
        ticks = dict.fromkeys([group for group, _ in JVM_THREAD_GROUPS] + ["driver"], 0)
        for (owner, _), (name, spent) in list(self.last_seen.items()):
            if owner != pid:
                continue
            group = next(
                (group for group, starts in JVM_THREAD_GROUPS if name.startswith(starts)),
                "driver",
            )
            ticks[group] += spent
        return ticks


JVM_THREADS = JvmThreadWatch()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--dimension", type=int, default=16)
    parser.add_argument(
        "--builds", type=int, default=3, help="builds in the process (last measured)"
    )
    parser.add_argument("--vars", default="{}", help="extra dbt vars (JSON) for every build")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--conf",
        action="append",
        default=[],
        help="a Spark setting key=value for the session (repeatable)",
    )
    parser.add_argument(
        "--tables",
        action="store_true",
        help="inputs as catalog tables (external Parquet) instead of parquet.`path`",
    )
    parser.add_argument(
        "--jobs",
        default="",
        help="also list the Spark jobs of nodes whose name holds one of these (comma-separated)",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="warm_build_"))
    event_logs = work / "events"
    event_logs.mkdir()
    os.environ.update(
        {
            "DBT_SPARK_HOME": str(work / "spark"),
            "DBT_SCHEMA": "warm_build",
            "DBT_PROFILES_DIR": str(PROJECT_DIR / "profiles"),
            "DBT_TARGET_PATH": str(work / "target"),
            "DBT_LOG_PATH": str(work / "logs"),
        }
    )
    # Spark's event log: settings the profile does not make, so spark-submit's --conf holds
    os.environ["PYSPARK_SUBMIT_ARGS"] = (
        f"--conf spark.eventLog.enabled=true --conf spark.eventLog.dir=file:{event_logs} "
        "--conf spark.eventLog.compress=false "
        + "".join(f"--conf {setting} " for setting in args.conf)
        + "pyspark-shell"
    )

    retrain = first_retrain(args.users, args.items, args.dimension, seed=0)
    inputs = []
    for number in range(args.builds):
        version = f"2026-01-{number + 1:02d}"
        if number:
            retrain = next_retrain(retrain, seed=number)
        folder = work / "data" / version
        write_parquet(
            folder / "users", retrain.user_ids, retrain.users, rows_per_file=max(1, args.users // 3)
        )
        write_parquet(
            folder / "items", retrain.item_ids, retrain.items, rows_per_file=max(1, args.items // 2)
        )
        inputs.append((version, f"parquet.`{folder / 'users'}`", f"parquet.`{folder / 'items'}`"))
    if args.tables:
        inputs = [
            (version, as_table(users, f"users_{n}"), as_table(items, f"items_{n}"))
            for n, (version, users, items) in enumerate(inputs)
        ]

    from dbt.cli.main import dbtRunner

    statements: dict[str, list[tuple[str, float]]] = defaultdict(list)
    pending: dict[str, str] = {}
    texts: list[str] = []
    measuring = threading.Event()

    def on_event(event):
        if not measuring.is_set():
            return
        name = event.info.name
        if name == "SQLQuery":
            pending[event.data.conn_name] = statement_kind(event.data.sql)
            texts.append(" ".join(event.data.sql.split("*/", 1)[-1].split()))
        elif name == "SQLQueryStatus":
            node = event.data.node_info.unique_id
            statements[node].append((pending.pop(node, "query"), float(event.data.elapsed)))

    runner = dbtRunner(callbacks=[on_event])
    extra = json.loads(args.vars)
    walls = []
    with PythonWorkerWatch() as workers:
        for number, (version, users, items) in enumerate(inputs):
            last = number == len(inputs) - 1
            if last:
                measuring.set()
            variables = {
                "embedding_version": version,
                "user_embeddings": users,
                "item_embeddings": items,
                **extra,
            }
            compiled_before = codegen_compilations()
            started, cpu_before = time.time(), cpu_seconds()
            result = runner.invoke(
                ["build", "--log-level", "warn", "--vars", json.dumps(variables)]
            )
            walls.append(time.time() - started)
            cpu_after = cpu_seconds()
            cpu = {name: cpu_after[name] - cpu_before.get(name, 0.0) for name in cpu_after}
            if not result.success:
                print(f"build of {version} failed: {result.exception}", file=sys.stderr)
                return 1
            print(
                f"build {number + 1} ({version}): {walls[-1]:.1f} s in the process; CPU s: "
                + ", ".join(f"{name} {seconds:.1f}" for name, seconds in cpu.items())
                + f"; classes generated and compiled {codegen_compilations() - compiled_before}",
                flush=True,
            )
    results = list(result.result.results)
    from pyspark.sql import SparkSession

    SparkSession.builder.getOrCreate().stop()  # flushes the event log
    # the measured build's jobs only: the event log holds every build's, under the same
    # node ids
    jobs = [job for job in spark_jobs(event_logs) if job["start"] >= started]

    rows = []
    for run in results:
        node = run.node.unique_id
        timing = {t.name: t for t in run.timing}
        if "compile" not in timing or "execute" not in timing:
            continue
        start = timing["compile"].started_at.timestamp()
        end = timing["execute"].completed_at.timestamp()
        node_jobs = [job for job in jobs if job["node"] == node and "end" in job]
        sql = statements.get(node, [])
        catalog = [s for kind, s in sql if kind == "catalog"]
        query = [s for kind, s in sql if kind == "query"]
        rows.append(
            {
                "node": run.node.name if len(run.node.name) <= 44 else run.node.name[:41] + "...",
                "start": start,
                "wall": end - start,
                "compile": timing["compile"].completed_at.timestamp() - start,
                "catalog": (len(catalog), sum(catalog)),
                "query": (len(query), sum(query)),
                "jobs": len(node_jobs),
                "stages": sum(j["stages"] for j in node_jobs),
                "tasks": sum(j["tasks"] for j in node_jobs),
                "job_s": union_seconds([(j["start"], j["end"]) for j in node_jobs]),
                "py": sum(1 for when, _ in workers.started if start <= when <= end),
                "rest": end - start - sum(catalog) - sum(query),
            }
        )
    rows.sort(key=lambda row: row["start"])
    first = rows[0]["start"]
    header = (
        f"{'node':<45}{'at':>6}{'wall':>6}{'comp':>6}{'catalog':>11}{'query':>11}"
        f"{'jobs':>5}{'stg':>5}{'tasks':>6}{'job s':>7}{'py':>4}{'rest':>6}"
    )
    print(
        f"\nbuild {len(inputs)}, {args.users} users x {args.items} items x e={args.dimension}, "
        f"node by node (seconds; catalog/query: statements/seconds):"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['node']:<45}{row['start'] - first:>6.2f}{row['wall']:>6.2f}{row['compile']:>6.2f}"
            f"{row['catalog'][0]:>4}/{row['catalog'][1]:>6.2f}{row['query'][0]:>4}/{row['query'][1]:>6.2f}"
            f"{row['jobs']:>5}{row['stages']:>5}{row['tasks']:>6}{row['job_s']:>7.2f}{row['py']:>4}"
            f"{row['rest']:>6.2f}"
        )
    span = max(row["start"] + row["wall"] for row in rows) - first
    totals = {
        key: sum(row[key] for row in rows)
        for key in ("wall", "compile", "jobs", "tasks", "job_s", "py", "rest")
    }
    print("-" * len(header))
    print(
        f"{len(rows)} nodes: {totals['wall']:.1f} s of node time in {span:.1f} s from first start "
        f"to last end; compile {totals['compile']:.1f} s; catalog statements "
        f"{sum(r['catalog'][0] for r in rows)} / {sum(r['catalog'][1] for r in rows):.1f} s; "
        f"queries {sum(r['query'][0] for r in rows)} / {sum(r['query'][1] for r in rows):.1f} s; "
        f"Spark jobs {totals['jobs']} ({totals['tasks']} tasks, {totals['job_s']:.1f} s); "
        f"Python workers started {totals['py']}; outside statements {totals['rest']:.1f} s"
    )
    repeated = [(count, text) for text, count in Counter(texts).items() if count > 1]
    if repeated:
        print("\nstatements sent more than once in the build:")
        for count, text in sorted(repeated, reverse=True):
            print(f"  {count} x {text[:150]}")
    for run in results if args.jobs else []:
        if any(part in run.node.unique_id for part in args.jobs.split(",")):
            print(f"\njobs of {run.node.unique_id}:")
            for job in sorted(
                (j for j in jobs if j["node"] == run.node.unique_id), key=lambda j: j["start"]
            ):
                print(
                    f"  {job.get('end', job['start']) - job['start']:6.3f} s {job['stages']} stages "
                    f"{job['tasks']:3} tasks  {job['name'][:50]:<50} {job['sql'][:90]}"
                )
    print(f"whole builds in the process: {', '.join(f'{wall:.1f}' for wall in walls)} s")
    if args.keep:
        print(f"kept: {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
