"""The demo: two ALS retrains of the same model, stabilized by `dbt build`.

    make demo        (or: .venv/bin/python scripts/demo.py)

Trains Spark ML's ALS twice (seeds 1 and 2) on the MovieLens ratings shipped in
pyspark, registers the factors as two retrains, runs `dbt build` for version 1
and version 2 exactly as a user would, and prints what each version published.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
DATA_DIR = PROJECT_DIR / "demo_data"
VERSIONS = {"2026-11-21": 1, "2026-11-22": 2}  # embedding_version → ALS seed


def main() -> int:
    os.chdir(PROJECT_DIR)
    os.environ.setdefault("DBT_PROFILES_DIR", str(PROJECT_DIR / "profiles"))
    os.environ.setdefault("DBT_SPARK_HOME", str(PROJECT_DIR / ".spark"))
    os.environ.setdefault("DBT_SCHEMA", "demo")

    for version, seed in VERSIONS.items():
        print(f"training ALS (seed {seed}) for version {version} ...", flush=True)
        subprocess.run(
            [sys.executable, "scripts/train_als.py", str(DATA_DIR / version), "--seed", str(seed)],
            check=True,
        )

    from dbt.cli.main import dbtRunner

    runner = dbtRunner()
    for version in VERSIONS:
        variables = {
            "embedding_version": version,
            "user_embeddings": f"parquet.`{DATA_DIR / version / 'users'}`",
            "item_embeddings": f"parquet.`{DATA_DIR / version / 'items'}`",
        }
        print(f"\ndbt build --vars '{json.dumps(variables)}'", flush=True)
        result = runner.invoke(["build", "--vars", json.dumps(variables)])
        if not result.success:
            print(f"dbt build of {version} failed", file=sys.stderr)
            return 1

    from pyspark.sql import SparkSession

    runs = (
        SparkSession.builder.getOrCreate()
        .sql(
            f"select * from {os.environ['DBT_SCHEMA']}.stabilization_runs "
            f"where embedding_version in ({', '.join(repr(v) for v in VERSIONS)}) "
            "order by embedding_version"
        )
        .toPandas()
    )
    print("\nPublished versions (table stabilization_runs):")
    header = f"{'version':<12}{'base':<12}{'users':>6}{'items':>6}{'aligned':>8}{'rank':>5}"
    header += f"{'max dot err':>13}{'item cos raw':>14}{'item cos stab':>15}"
    print(header)
    for row in runs.itertuples():
        cells = [
            f"{row.embedding_version:<12}{row.base_version or '-':<12}",
            f"{row.users:>6}{row.items:>6}{row.aligned_ids:>8}{row.rank:>5}",
            f"{row.max_dot_product_error:>13.2e}",
            f"{row.item_cosine_raw:>14.3f}" if row.base_version else f"{'-':>14}",
            f"{row.item_cosine_stabilized:>15.3f}" if row.base_version else f"{'-':>15}",
        ]
        print("".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
