"""Benchmark: a backfill in one process against one `dbt build` process per version.

    .venv/bin/python benchmarks/backfill.py [--versions 8] [--users 1000] [--items 200]

Writes a history of synthetic retrains as one Parquet table per side,
partitioned by ds, then stabilizes it twice, each on a fresh embedded
metastore: `scripts/backfill.py` (dbt's programmatic API, Spark started once),
and the same versions as separate `dbt build` processes (as a shell loop or a
scheduler would run them). Prints the seconds per version of each and the
saving.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR))

from stabilization_tools.synthetic import history as synthetic_history
from stabilization_tools.synthetic import write_history


def environment(home: Path) -> dict:
    return {
        **os.environ,
        "DBT_SPARK_HOME": str(home),
        "DBT_SCHEMA": "bench_backfill",
        "DBT_PROFILES_DIR": str(PROJECT_DIR / "profiles"),
        "DBT_TARGET_PATH": str(home / "target"),
        "DBT_LOG_PATH": str(home / "logs"),
    }


def one_process(history: dict, home: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            str(PROJECT_DIR / "scripts" / "backfill.py"),
            "--users",
            history["users"],
            "--items",
            history["items"],
            "--partition-column",
            "ds",
        ],
        cwd=PROJECT_DIR,
        env=environment(home),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def process_per_version(history: dict, versions: list[str], home: Path) -> float:
    dbt = Path(sys.executable).with_name("dbt")
    started = time.perf_counter()
    for number, version in enumerate(versions):
        variables = {
            "embedding_version": version,
            "user_embeddings": history["users"],
            "item_embeddings": history["items"],
            "embeddings_filter": f"ds = '{version}'",
            **({"base_version": versions[number - 1]} if number else {}),
        }
        subprocess.run(
            [
                str(dbt),
                "build",
                "--exclude-resource-type",
                "unit_test",
                "--vars",
                json.dumps(variables),
                "--project-dir",
                str(PROJECT_DIR),
            ],
            cwd=PROJECT_DIR,
            env=environment(home),
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=8)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--dimension", type=int, default=16)
    args = parser.parse_args()
    versions = [f"2026-11-{day:02d}" for day in range(1, args.versions + 1)]
    with tempfile.TemporaryDirectory(prefix="bench_backfill_") as folder:
        root = Path(folder)
        history = write_history(
            root / "data", synthetic_history(versions, args.users, args.items, args.dimension)
        )
        single = one_process(history, root / "one_process")
        shutil.rmtree(root / "one_process")
        separate = process_per_version(history, versions, root / "per_version")
    count = len(versions)
    print(f"{count} versions of {args.users:,} users × {args.items:,} items × {args.dimension}")
    print(f"{'':40} {'seconds':>8} {'per version':>12}")
    print(f"{'backfill, one process (dbtRunner)':40} {single:8.1f} {single / count:12.1f}")
    print(f"{'a dbt build process per version':40} {separate:8.1f} {separate / count:12.1f}")
    print(
        f"saving per version: {(separate - single) / count:.1f} s "
        f"({1 - single / separate:.0%} of a separate process's time)"
    )


if __name__ == "__main__":
    main()
