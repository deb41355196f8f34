"""Benchmark: `dbt build` of a version against the single-process floor and the usual recipe.

    .venv/bin/python benchmarks/run.py [--users 1000000] [--items 200000] [--dimension 64]

Generates two synthetic retrains as Parquet (the second is the first under a
random invertible map plus noise, with ids churned), then on the same files and
in one run times:

1. `dbt build` of version 2 aligned to version 1, with gram_method sql and
   arrow, and its stages (Gram, transform model, apply/write);
2. the floor: the same math in one process with pyarrow + numpy;
3. the usual Spark recipe: Grams via rdd.mapPartitions summing np.outer row by
   row, transforms applied with a row-at-a-time Python UDF.

Prints a table with ratios and the driver's peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR))

from python_udfs import stabilizing_transforms
from python_udfs.arrow import list_column_to_matrix, matrix_to_list_column
from python_udfs.synthetic import write_parquet

STAGES = {
    "Gram": ["int_gram_matrices", "int_gram_matrices_arrow"],
    "transform model": ["int_transforms_solved"],
    "apply/write": [
        "int_users_stabilized",
        "int_items_stabilized",
        "stabilized_user_embeddings",
        "stabilized_item_embeddings",
    ],
}


class PeakMemory:
    """Samples the peak resident memory (VmHWM) of this process and its children (the JVM)."""

    def __init__(self):
        self.peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(0.5):
            self.sample()

    def sample(self):
        pids = {str(os.getpid()): "python driver"}
        children = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children")
        if children.exists():
            for pid in children.read_text().split():
                pids[pid] = "JVM driver" if "java" in _cmdline(pid) else "child"
        for pid, name in pids.items():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        self.peaks[name] = max(self.peaks.get(name, 0), int(line.split()[1]) * 1024)
            except FileNotFoundError:
                pass

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self.sample()


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
    except FileNotFoundError:
        return ""


def generate(data: Path, users: int, items: int, dimension: int, chunk_rows: int = 500_000) -> dict:
    """Write two retrains as Parquet, chunk by chunk (20M × 64 floats do not fit in memory twice).

    Version 1: random rows with a decaying spectrum. Version 2: the same model in
    new coordinates, (W + noise)·A and (T + noise)·A⁻ᵀ for one random invertible
    A, with 5 % of each side's ids replaced by new ones (as synthetic.next_retrain).
    """
    marker = data / "params.json"
    params = {"users": users, "items": items, "dimension": dimension}
    if marker.exists() and json.loads(marker.read_text()) == params:
        return params
    shutil.rmtree(data, ignore_errors=True)
    rng = np.random.default_rng(0)
    scale = np.linspace(1.0, 0.2, dimension)
    mixing = rng.standard_normal((dimension, dimension)) + 2 * np.eye(dimension)
    for side, rows, transform in (("users", users, mixing), ("items", items, np.linalg.inv(mixing).T)):
        fresh_id = rows
        for number, start in enumerate(range(0, rows, chunk_rows)):
            chunk = np.random.default_rng([1, number, rows])
            count = min(chunk_rows, rows - start)
            first = chunk.standard_normal((count, dimension)) * scale
            kept = chunk.random(count) >= 0.05
            fresh = np.arange(fresh_id, fresh_id + int((~kept).sum()), dtype=np.int64)
            fresh_id += fresh.size
            ids = np.arange(start, start + count, dtype=np.int64)
            second = np.concatenate([first[kept], chunk.standard_normal((fresh.size, dimension))])
            second += 0.05 * chunk.standard_normal(second.shape) * np.abs(second).mean()
            for version, version_ids, matrix in (
                ("v1", ids, first),
                ("v2", np.concatenate([ids[kept], fresh]), second @ transform),
            ):
                folder = data / version / side
                folder.mkdir(parents=True, exist_ok=True)
                write_parquet(folder / f"part-{number:05d}.parquet", version_ids, matrix.astype(np.float32))
    marker.write_text(json.dumps(params))
    return params


def relations(data: Path, version: str) -> dict:
    return {
        "user_embeddings": f"parquet.`{data / version / 'users'}`",
        "item_embeddings": f"parquet.`{data / version / 'items'}`",
    }


def dbt_build(runner, schema: str, version: str, data: Path, gram_method: str) -> tuple[float, dict]:
    os.environ["DBT_SCHEMA"] = schema
    variables = {"embedding_version": version, "gram_method": gram_method, **relations(data, version)}
    target = data / "target"
    start = time.perf_counter()
    result = runner.invoke(
        ["build", "--quiet", "--vars", json.dumps(variables), "--target-path", str(target)]
    )
    elapsed = time.perf_counter() - start
    if not result.success:
        raise SystemExit(f"dbt build {version} ({gram_method}) failed")
    results = json.loads((target / "run_results.json").read_text())["results"]
    nodes = {r["unique_id"].rsplit(".", 1)[-1]: r["execution_time"] for r in results}
    stages = {stage: sum(nodes.get(name, 0.0) for name in names) for stage, names in STAGES.items()}
    return elapsed, stages


def read_side(path: Path) -> tuple[pa.Array, np.ndarray]:
    table = pq.read_table(path)
    column = table.column("embedding").combine_chunks()
    dimension = len(column[0])
    return table.column("id").combine_chunks(), list_column_to_matrix(column, dimension)


def floor(data: Path, base_items: Path, output: Path) -> float:
    """The same math in one process: pyarrow + numpy, no Spark."""
    start = time.perf_counter()
    user_ids, users = read_side(data / "v2" / "users")
    item_ids, items = read_side(data / "v2" / "items")
    base_ids, base = read_side(base_items)
    gram_users, gram_items = users.T @ users, items.T @ items
    # inner join on id: position of each new item id among the base ids (null if absent)
    positions = pc.index_in(item_ids, value_set=base_ids)
    found = positions.is_valid().to_numpy(zero_copy_only=False)
    cross = items[found].T @ base[positions.drop_null().to_numpy()]
    solved = stabilizing_transforms(gram_users, gram_items, cross_items=cross)
    output.mkdir(parents=True, exist_ok=True)
    for name, ids, matrix, transform in (
        ("users", user_ids, users, solved.user_transform),
        ("items", item_ids, items, solved.item_transform),
    ):
        table = pa.table({"id": ids, "embedding": matrix_to_list_column(matrix @ transform)})
        pq.write_table(table, output / f"{name}.parquet")
    return time.perf_counter() - start


def usual_recipe(spark, data: Path, base_items: str, output: Path) -> float:
    """Grams with rdd.mapPartitions + np.outer per row; a row-at-a-time UDF to apply."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, FloatType

    start = time.perf_counter()
    users = spark.read.parquet(str(data / "v2" / "users"))
    items = spark.read.parquet(str(data / "v2" / "items"))
    base = spark.read.parquet(base_items).select("id", F.col("embedding").alias("base"))

    def cross_gram(df, left, right):
        dimension = len(df.select(left).first()[0])

        def add_outer_product(rows):
            partial = np.zeros((dimension, dimension))
            for row in rows:
                partial += np.outer(row[left], row[right])
            yield partial

        return df.rdd.mapPartitions(add_outer_product).reduce(lambda a, b: a + b)

    gram_users = cross_gram(users, "embedding", "embedding")
    gram_items = cross_gram(items, "embedding", "embedding")
    cross = cross_gram(items.join(base, "id"), "embedding", "base")
    solved = stabilizing_transforms(gram_users, gram_items, cross_items=cross)
    for name, df, transform in (
        ("users", users, solved.user_transform),
        ("items", items, solved.item_transform),
    ):
        matrix = transform.tolist()

        @F.udf(ArrayType(FloatType()))
        def apply(vector, matrix=matrix):
            return (np.asarray(vector) @ np.asarray(matrix)).tolist()

        df.select("id", apply("embedding").alias("embedding")).write.mode("overwrite").parquet(
            str(output / name)
        )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--dimension", type=int, default=64)
    parser.add_argument("--data", type=Path, default=PROJECT_DIR / "benchmarks" / "data")
    parser.add_argument("--methods", default="sql,arrow", help="gram methods to time")
    parser.add_argument("--skip-references", action="store_true", help="time dbt only")
    parser.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    data = args.data.resolve()
    if args.generate_only:
        generate(data, args.users, args.items, args.dimension)
        return
    print(f"generating {args.users:,} users, {args.items:,} items, e = {args.dimension} ...", flush=True)
    # in a child process, so the peak memory measured below is the pipeline's own;
    # and 1,000 users × 200 items, to measure what a build costs whatever the data
    for folder, users, items in ((data, args.users, args.items), (data / "tiny", 1000, 200)):
        subprocess.run([sys.executable, __file__, "--generate-only", "--data", str(folder),
                        "--users", str(users), "--items", str(items),
                        "--dimension", str(args.dimension)], check=True)

    os.chdir(PROJECT_DIR)
    os.environ["DBT_PROFILES_DIR"] = str(PROJECT_DIR / "profiles")
    home = data / "spark_home"
    shutil.rmtree(home, ignore_errors=True)
    os.environ["DBT_SPARK_HOME"] = str(home)
    os.environ.setdefault("SPARK_MASTER", "local[2]")
    from dbt.cli.main import dbtRunner

    runner = dbtRunner()
    timings: dict[str, float] = {}
    stage_timings: dict[str, dict] = {}
    with PeakMemory() as memory:
        for method in args.methods.split(","):
            schema = f"bench_{method}"
            print(f"dbt build v1 ({method}, the base; not timed) ...", flush=True)
            dbt_build(runner, schema, "v1", data, method)
            print(f"dbt build v2 ({method}) ...", flush=True)
            timings[f"dbt build, gram_method: {method}"], stage_timings[method] = dbt_build(
                runner, schema, "v2", data, method
            )
        dbt_peaks = dict(memory.peaks)
        method = args.methods.split(",")[-1]
        print(f"dbt build v1, v2 of 1,000 users ({method}; the fixed cost of a build) ...", flush=True)
        dbt_build(runner, "bench_tiny", "v1", data / "tiny", method)
        timings[f"fixed cost: dbt build of 1,000 users ({method})"], _ = dbt_build(
            runner, "bench_tiny", "v2", data / "tiny", method
        )

        if not args.skip_references:
            from pyspark.sql import SparkSession

            spark = SparkSession.builder.getOrCreate()
            schema = f"bench_{args.methods.split(',')[0]}"
            base_items = data / "base_items"
            spark.sql(
                f"select id, embedding from {schema}.stabilized_item_embeddings "
                "where embedding_version = 'v1'"
            ).write.mode("overwrite").parquet(str(base_items))
            print("floor (pyarrow + numpy, one process) ...", flush=True)
            timings["floor: pyarrow + numpy"] = floor(data, base_items, data / "out_floor")
            print("usual recipe (rdd.mapPartitions + np.outer, row UDF) ...", flush=True)
            timings["usual recipe: RDD outer products + row UDF"] = usual_recipe(
                spark, data, str(base_items), data / "out_usual"
            )

    fast = min(v for k, v in timings.items() if k.startswith("dbt build"))
    print(f"\n{args.users:,} users, {args.items:,} items, e = {args.dimension}, "
          f"{os.environ['SPARK_MASTER']}, {os.cpu_count()} cores")
    print(f"{'':48}{'seconds':>10}{'÷ fastest dbt build':>22}")
    for name, seconds in timings.items():
        print(f"{name:48}{seconds:>10.1f}{seconds / fast:>22.2f}")
        method = name.rsplit(": ", 1)[-1]
        for stage, stage_seconds in stage_timings.get(method, {}).items():
            print(f"{'  stage: ' + stage:48}{stage_seconds:>10.1f}")
    if {"sql", "arrow"} <= stage_timings.keys():
        ratio = stage_timings["sql"]["Gram"] / stage_timings["arrow"]["Gram"]
        print(f"\nGram stage, sql ÷ arrow: {ratio:.2f}")
    usual = timings.get("usual recipe: RDD outer products + row UDF")
    floor_seconds = timings.get("floor: pyarrow + numpy")
    if usual:
        print(f"usual recipe ÷ fastest dbt build: {usual / fast:.2f}")
    if floor_seconds:
        print(f"fastest dbt build ÷ floor: {fast / floor_seconds:.2f}")
    print("peak resident memory during the dbt builds: "
          + ", ".join(f"{k} {v / 2**30:.2f} GiB" for k, v in dbt_peaks.items()))


if __name__ == "__main__":
    main()
