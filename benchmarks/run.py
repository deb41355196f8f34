"""Benchmark: what a version costs with `dbt build`, against the numpy floor and the usual recipe.

    .venv/bin/python benchmarks/run.py [--users 1000000,4000000] [--items 200000] [--dimension 64]
    .venv/bin/python benchmarks/run.py --users 1000000 --table-formats hive,iceberg,delta
    .venv/bin/python benchmarks/run.py --users 250000,1000000 --widths 16,64,128,256

Generates synthetic retrains as Parquet (the second is the first under a random
invertible map plus noise, with 5 % of ids churned) and, in one run, on the
same files, times whole processes as a scheduler would start them:

1. fixed cost: `dbt build` of version 2 (aligned to version 1) of 1,000 users ×
   200 items (4e when wider), next to the usual Spark recipe's script on the same
   files (Grams via rdd.mapPartitions summing np.outer row by row, the transforms applied
   with a row-at-a-time Python UDF);
2. marginal cost: `dbt build` of version 2 at each --users size (two sizes:
   the slope per million users), and the floor, the same math in one process
   with pyarrow + numpy, at the same sizes; their slopes and the ratio. Also
   what Spark alone costs to read the inputs once and write them once
   (Parquet to Parquet, no math, the profile's settings): the least any
   Spark design of a version can cost.

Prints a table, where the time of the largest build goes (dbt's node timings)
and the peak resident memory of its processes (the dbt/Python driver, the JVM).

``--table-formats`` times only version 2 at the first size, published as each
format (Hive Parquet, Iceberg, Delta), ``--rounds`` times each, the formats taking
turns (medians), and the nodes whose time differs most.

``--widths`` times only the marginal cost at each embedding width, both Gram
methods (sql, arrow; or the one ``--gram-method`` names) against the floor, the
best of ``--rounds``, and which one the default (auto) takes.
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
import yaml

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR))

from python_udfs import stabilizing_transforms
from python_udfs.arrow import list_column_to_matrix, matrix_to_list_column
from python_udfs.spark import gram_method_for
from stabilization_tools.synthetic import write_parquet

TINY_USERS, TINY_ITEMS = 1_000, 200


def tiny_items(dimension: int) -> int:
    """Items of the fixed-cost data: 200, or 4e for wider embeddings (a build refuses
    fewer aligned ids than the dimension, and a tenth of the items churn)."""
    return max(TINY_ITEMS, 4 * dimension)


class PeakMemory:
    """Samples the peak resident memory (VmHWM) of this process's descendants:
    the dbt process (Python driver) and its JVM."""

    def __init__(self):
        self.peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(0.5):
            self.sample()

    def sample(self):
        for pid in _descendants(os.getpid()):
            name = "JVM" if "java" in _cmdline(pid) else "Python driver"
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


def _descendants(pid: int) -> list[str]:
    found = []
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return found
    for child in children:
        found += [child, *_descendants(int(child))]
    return found


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
    for side, rows, transform in (
        ("users", users, mixing),
        ("items", items, np.linalg.inv(mixing).T),
    ):
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
                write_parquet(
                    folder / f"part-{number:05d}.parquet", version_ids, matrix.astype(np.float32)
                )
    marker.write_text(json.dumps(params))
    return params


def relations(data: Path, version: str) -> dict:
    return {
        "user_embeddings": f"parquet.`{data / version / 'users'}`",
        "item_embeddings": f"parquet.`{data / version / 'items'}`",
    }


def dbt_build(
    data: Path,
    version: str,
    gram_method: str,
    table_format: str = "hive",
    label: str | None = None,
    base_version: str = "",
) -> tuple[float, dict]:
    """A whole `dbt build` process (Python, dbt, Spark's JVM): wall seconds, node timings.
    Published as ``table_format`` tables (Iceberg, Delta: their local target, a
    metastore of their own), as version ``label`` (default: ``version``) of the
    retrain ``version``, aligned to ``base_version`` (default: the latest)."""
    variables = {
        "embedding_version": label or version,
        "base_version": base_version,
        "gram_method": gram_method,
        "table_format": table_format,
        **relations(data, version),
    }
    home = "spark_home" if table_format == "hive" else f"spark_home_{table_format}"
    env = {
        **os.environ,
        "DBT_SPARK_HOME": str(data / home),
        "DBT_SCHEMA": "bench",
        "DBT_PROFILES_DIR": str(PROJECT_DIR / "profiles"),
        "DBT_TARGET": "local" if table_format == "hive" else f"local_{table_format}",
        "DBT_LAKEHOUSE_JARS": str(PROJECT_DIR / ".venv" / "jars"),
    }
    env.setdefault("SPARK_MASTER", "local[2]")
    target = data / "target"
    start = time.perf_counter()
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("dbt")),
            "build",
            "--quiet",
            "--vars",
            json.dumps(variables),
            "--target-path",
            str(target),
            "--log-path",
            str(data / "logs"),
        ],
        check=False,
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"dbt build {version} of {data} failed:\n{done.stdout}{done.stderr}")
    results = json.loads((target / "run_results.json").read_text())["results"]
    return elapsed, {r["unique_id"].split(".", 2)[-1]: r["execution_time"] for r in results}


def published_base_items(data: Path) -> Path:
    """The folder of the published items of version 1 (the base of version 2)."""
    table = data / "spark_home" / "warehouse" / "bench.db" / "stabilized_item_embeddings"
    # the run's owner file (``_<run>.owner``) lies beside its folder
    folders = [f for f in table.glob("_staged/v1-*/*") if f.is_dir()]
    if len(folders) != 1:
        raise SystemExit(f"expected one published folder of v1 under {table}, found {folders}")
    return folders[0]


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
    base_ids = base_ids.cast(item_ids.type)
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


def usual_recipe_process(data: Path, base_items: Path, output: Path) -> float:
    """The usual recipe as a whole process (Python, Spark's JVM): wall seconds."""
    start = time.perf_counter()
    done = subprocess.run(  # its Spark log and progress bar are kept out of the report
        [sys.executable, __file__, "--usual-recipe", str(data), str(base_items), str(output)],
        check=False,
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "SPARK_MASTER": os.environ.get("SPARK_MASTER", "local[2]"),
            "PYSPARK_PYTHON": sys.executable,
        },  # workers with numpy and pyarrow
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"the usual recipe on {data} failed:\n{done.stdout}{done.stderr}")
    return elapsed


def usual_recipe(data: Path, base_items: str, output: Path) -> None:
    """Grams with rdd.mapPartitions + np.outer per row; a row-at-a-time UDF to apply."""
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, FloatType

    spark = (
        SparkSession.builder.master(os.environ["SPARK_MASTER"])
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    users = spark.read.parquet(str(data / "v2" / "users"))
    items = spark.read.parquet(str(data / "v2" / "items"))
    base = spark.read.parquet(str(base_items)).select("id", F.col("embedding").alias("base"))

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


def spark_copy_process(data: Path, output: Path) -> float:
    """Seconds for Spark (started beforehand, not timed) to read a version's inputs and
    write them again as Parquet, with the `local` profile's settings."""
    done = subprocess.run(
        [sys.executable, __file__, "--spark-copy", str(data), str(output)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "SPARK_MASTER": os.environ.get("SPARK_MASTER", "local[2]")},
    )
    return float(done.stdout.split()[-1])


def spark_copy(data: Path, output: Path) -> None:
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master(os.environ["SPARK_MASTER"])
        .config("spark.driver.memory", os.environ.get("SPARK_DRIVER_MEMORY", "4g"))
        .config("spark.sql.files.maxPartitionBytes", "32m")
        .config("spark.driver.extraJavaOptions", "-XX:+UseParallelGC")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    spark.range(1).collect()  # started
    start = time.perf_counter()
    for side in ("users", "items"):
        spark.read.parquet(str(data / "v2" / side)).write.mode("overwrite").parquet(
            str(output / side)
        )
    print(f"{time.perf_counter() - start:.3f}")


def generate_in_child(folder: Path, users: int, items: int, dimension: int) -> None:
    """Synthetic retrains in a child process: the peaks measured later are the builds' own."""
    print(f"generating {users:,} users, {items:,} items, e = {dimension} ...", flush=True)
    subprocess.run(
        [
            sys.executable,
            __file__,
            "--generate-only",
            "--data",
            str(folder),
            "--users",
            str(users),
            "--items",
            str(items),
            "--dimension",
            str(dimension),
        ],
        check=True,
    )


def compare_table_formats(data: Path, users: int, args) -> None:
    """Version 2 of ``users`` users published as each format, in one run; the ratios.

    Version 1 is built once per format; then version 2 is built (then rebuilt) once
    per format in each of ``--rounds`` rounds, the formats taking turns, so that the
    machine's drift over the run (seen here: the same Hive build 62.6 s, then 83.4 s
    an hour later) falls on every format alike. Each format's time is its median."""
    folder = data / f"users_{users}"
    if not (folder / "v2").exists():
        generate_in_child(folder, users, args.items, args.dimension)
    formats = args.table_formats.split(",")
    for table_format in formats:
        home = "spark_home" if table_format == "hive" else f"spark_home_{table_format}"
        shutil.rmtree(folder / home, ignore_errors=True)
        print(f"dbt build v1, {table_format} (the base; not timed) ...", flush=True)
        dbt_build(folder, "v1", args.gram_method, table_format)
    seconds = {table_format: [] for table_format in formats}
    nodes = {table_format: [] for table_format in formats}
    for round_number in range(1, args.rounds + 1):
        for table_format in formats:
            elapsed, timings = dbt_build(folder, "v2", args.gram_method, table_format)
            seconds[table_format].append(elapsed)
            nodes[table_format].append(timings)
            print(
                f"round {round_number}: dbt build v2, {table_format}: {elapsed:.1f} s", flush=True
            )
    median = {name: float(np.median(times)) for name, times in seconds.items()}
    print(
        f"\n{users:,} users, {args.items:,} items, e = {args.dimension}, gram_method "
        f"{args.gram_method}, {os.environ.get('SPARK_MASTER', 'local[2]')}, {os.cpu_count()} "
        f"cores; median of {args.rounds} rounds"
    )
    print(f"{'dbt build process of version 2, published as':52}{'seconds':>10}{'ratio':>8}")
    for table_format in formats:
        ratio = median[table_format] / median[formats[0]]
        print(f"{table_format:52}{median[table_format]:>10.1f}{ratio:>8.2f}")
    print("\nthe nodes that differ most from the first format's (median seconds):")
    node_medians = {
        table_format: {
            node: float(np.median([run.get(node, 0.0) for run in runs])) for node in runs[0]
        }
        for table_format, runs in nodes.items()
    }
    first = node_medians[formats[0]]
    for table_format in formats[1:]:
        these = node_medians[table_format]
        changed = sorted(these, key=lambda n: -abs(these[n] - first.get(n, 0)))
        for node in changed[:6]:
            print(f"  {table_format:8} {node[:60]:60}{first.get(node, 0):>8.1f}{these[node]:>8.1f}")


def compare_widths(data: Path, sizes: list[int], args) -> None:
    """The marginal cost per million users at each of ``--widths``, against the floor,
    in one run: both Gram methods (``--gram-method`` auto), or the one given. At each
    width and size, version 1 is built once (the default path, not timed), then in each
    of ``--rounds`` rounds version 2 once per method, as a new version aligned to
    version 1 (the methods taking turns), and the floor once; each takes its best
    round (noise only ever adds time). Only the inputs are kept afterwards."""
    widths = [int(width) for width in args.widths.split(",")]
    methods = ["sql", "arrow"] if args.gram_method == "auto" else [args.gram_method]
    project = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())
    arrow_above = int(project["vars"]["gram_arrow_above"])
    slopes: dict[int, dict[str, float | None]] = {}
    for width in widths:
        seconds: dict[str, dict[int, float]] = {name: {} for name in ["floor", *methods]}
        for n in sizes:
            folder = data / f"e_{width}" / f"users_{n}"
            generate_in_child(folder, n, args.items, width)
            shutil.rmtree(folder / "spark_home", ignore_errors=True)
            print(f"e = {width}, {n:,} users: dbt build v1 (the base; not timed) ...", flush=True)
            dbt_build(folder, "v1", "auto")
            base = published_base_items(folder)
            # once untimed: the first read of the inputs comes from disk, not the page
            # cache (docs/performance.md, "Python tasks that start faster")
            floor(folder, base, folder / "out_floor")
            for round_number in range(1, args.rounds + 1):
                for method in methods:
                    # the last build's or floor's written files reach the disk first:
                    # their write-back would slow what is timed next
                    os.sync()
                    elapsed, timings = dbt_build(
                        folder,
                        "v2",
                        method,
                        label=f"v2_{method}_{round_number}",
                        base_version="v1",
                    )
                    seconds[method][n] = min(elapsed, seconds[method].get(n, elapsed))
                    gram = sum(t for node, t in timings.items() if node.startswith("int_gram"))
                    print(
                        f"  round {round_number}: dbt build v2, gram_method {method}: "
                        f"{elapsed:.1f} s (the Gram nodes {gram:.1f} s)",
                        flush=True,
                    )
                os.sync()
                elapsed = floor(folder, base, folder / "out_floor")
                seconds["floor"][n] = min(elapsed, seconds["floor"].get(n, elapsed))
                print(f"  round {round_number}: floor: {elapsed:.1f} s", flush=True)
            shutil.rmtree(folder / "spark_home", ignore_errors=True)
            shutil.rmtree(folder / "out_floor", ignore_errors=True)
        slopes[width] = {name: slope_per_million(times) for name, times in seconds.items()}
    sizes_text = " and ".join(f"{n:,}" for n in sizes)
    print(
        f"\nmarginal cost per million users (slope between {sizes_text} users; best of "
        f"{args.rounds} rounds), {args.items:,} items, "
        f"{os.environ.get('SPARK_MASTER', 'local[2]')}, {os.cpu_count()} cores"
    )
    header = "".join(f"{method + ' s':>10}{'× floor':>9}" for method in methods)
    print(f"{'e':>5}{'floor s':>10}{header}  default")
    for width, slope in slopes.items():
        cells = "".join(
            f"{slope[method]:>10.1f}{slope[method] / slope['floor']:>9.2f}" for method in methods
        )
        default = gram_method_for("auto", width, arrow_above)
        print(f"{width:>5}{slope['floor']:>10.1f}{cells}  {default}")


def slope_per_million(seconds: dict[int, float]) -> float | None:
    """Seconds per million users between the smallest and the largest size."""
    if len(seconds) < 2:
        return None
    small, large = min(seconds), max(seconds)
    return (seconds[large] - seconds[small]) / (large - small) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", default="1000000,4000000", help="user counts, comma-separated")
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--dimension", type=int, default=64)
    parser.add_argument("--data", type=Path, default=PROJECT_DIR / "benchmarks" / "data")
    parser.add_argument("--gram-method", default="auto", choices=["auto", "arrow", "sql"])
    parser.add_argument(
        "--widths",
        help="only this: the marginal cost by embedding width (comma-separated, e.g. "
        "16,64,128,256) between the --users sizes, both Gram methods and the floor",
    )
    parser.add_argument(
        "--skip-references",
        action="store_true",
        help="time dbt only (no fixed cost, floor or usual recipe)",
    )
    parser.add_argument(
        "--fixed-only",
        action="store_true",
        help="the fixed cost only: the tiny build and the usual recipe",
    )
    parser.add_argument(
        "--table-formats",
        help="only this: version 2 of the first --users size published as each of these "
        "formats (comma-separated: hive,iceberg,delta), and each one's ratio to the first",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="with --table-formats: builds of version 2 per format, the formats taking "
        "turns (medians); with --widths: builds of version 2 per method and size (best)",
    )
    parser.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--usual-recipe", nargs=3, type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--spark-copy", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.spark_copy:
        spark_copy(*args.spark_copy)
        return

    if args.usual_recipe:
        usual_recipe(*args.usual_recipe)
        return
    data = args.data.resolve()
    sizes = [int(n) for n in args.users.split(",")]
    if args.generate_only:
        generate(data, sizes[0], args.items, args.dimension)
        return
    if args.table_formats:
        compare_table_formats(data, sizes[0], args)
        return
    if args.widths:
        compare_widths(data, sizes, args)
        return
    if args.fixed_only:
        sizes = []
    folders = {n: data / f"users_{n}" for n in sizes}
    tiny = data / "tiny"
    wanted = [] if args.skip_references else [(tiny, TINY_USERS, tiny_items(args.dimension))]
    wanted += [(folders[n], n, args.items) for n in sizes]
    for folder, users, items in wanted:
        generate_in_child(folder, users, items, args.dimension)

    rows: list[tuple[str, float]] = []
    if not args.skip_references:
        shutil.rmtree(tiny / "spark_home", ignore_errors=True)
        print(
            "fixed cost: dbt build v1, v2 of 1,000 users; the usual recipe on them ...", flush=True
        )
        dbt_build(tiny, "v1", args.gram_method)
        tiny_build, _ = dbt_build(tiny, "v2", args.gram_method)
        tiny_recipe = usual_recipe_process(tiny, published_base_items(tiny), tiny / "out_usual")
        rows += [
            ("fixed cost: dbt build process, 1,000 users", tiny_build),
            ("fixed cost: usual recipe process, 1,000 users", tiny_recipe),
        ]

    builds, floors, copies, nodes = {}, {}, {}, {}
    with PeakMemory() as memory:
        for n in sizes:
            shutil.rmtree(folders[n] / "spark_home", ignore_errors=True)
            print(f"dbt build v1 of {n:,} users (the base; not timed) ...", flush=True)
            dbt_build(folders[n], "v1", args.gram_method)
            print(f"dbt build v2 of {n:,} users ...", flush=True)
            builds[n], nodes[n] = dbt_build(folders[n], "v2", args.gram_method)
            rows.append((f"dbt build process, {n:,} users", builds[n]))
    peaks = dict(memory.peaks)
    if not args.skip_references:
        for n in sizes:
            print(f"floor (pyarrow + numpy) at {n:,} users, best of 3 ...", flush=True)
            floors[n] = min(
                floor(folders[n], published_base_items(folders[n]), folders[n] / "out_floor")
                for _ in range(3)
            )
            rows.append((f"floor: pyarrow + numpy, {n:,} users", floors[n]))
        for n in sizes:
            print(f"Spark: read and write the inputs of {n:,} users once ...", flush=True)
            copies[n] = spark_copy_process(folders[n], folders[n] / "out_copy")
            rows.append((f"Spark read + write once, no math, {n:,} users", copies[n]))

    print(
        f"\n{args.items:,} items, e = {args.dimension}, gram_method {args.gram_method}, "
        f"{os.environ.get('SPARK_MASTER', 'local[2]')}, {os.cpu_count()} cores, "
        f"spark.driver.memory {os.environ.get('SPARK_DRIVER_MEMORY', '4g')}"
    )
    print(f"{'':52}{'seconds':>10}")
    for name, seconds in rows:
        print(f"{name:52}{seconds:>10.1f}")
    if not args.skip_references:
        print(f"\nfixed cost, dbt build ÷ usual recipe: {tiny_build / tiny_recipe:.2f}")
    dbt_slope, floor_slope = slope_per_million(builds), slope_per_million(floors)
    copy_slope = slope_per_million(copies)
    if dbt_slope is not None:
        print(f"marginal cost per million users: dbt build {dbt_slope:.1f} s", end="")
        if floor_slope:
            print(f", floor {floor_slope:.1f} s, ratio {dbt_slope / floor_slope:.2f}")
            print(
                f"  Spark read + write once {copy_slope:.1f} s ({copy_slope / floor_slope:.2f}× the "
                f"floor); dbt build ÷ Spark read + write once: {dbt_slope / copy_slope:.2f}"
            )
        else:
            print()
    if not sizes:
        return
    largest = max(sizes)
    print(
        f"\nwhere the time of the {largest:,}-user build goes (dbt node timings, "
        f"{sum(nodes[largest].values()):.0f} s of node time in {builds[largest]:.0f} s):"
    )
    for name, seconds in sorted(nodes[largest].items(), key=lambda item: -item[1])[:12]:
        print(f"  {name[:70]:72}{seconds:>7.1f}")
    print(
        "peak resident memory of the dbt build processes: "
        + ", ".join(f"{k} {v / 2**30:.2f} GiB" for k, v in sorted(peaks.items()))
    )


if __name__ == "__main__":
    main()
