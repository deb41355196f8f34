"""Evaluate the stabilization on real retrains: ALS on MovieLens, chained through dbt.

    make evaluate        (or: .venv/bin/python evaluation/run.py)

Three scenarios of six retrains each, trained with Spark ML's ALS (rank 10) on the
MovieLens ratings shipped in pyspark:
  seeds              all ratings, ALS seeds 1..6 (the same data, a new random start);
  windows            sliding windows of 70 % of the ratings in time order, moved by 6 %
                     (seed 1 each time; see evaluation/retrains.py for the time order);
  windows_and_seeds  the same windows, a new seed each time (both change, as in
                     production retrains that do not fix their seed).
Each retrain is stabilized by `dbt build` against the previous one (chained; its own
schema per scenario), exactly as a user would run it. Then, from the published tables
and the raw factors: same-id cosine similarity at lag 1, 2 and 4 versions (raw vs
stabilized, users and items), the max dot-product error against the raw model over
all user×item pairs, whether every user's top-10 items are unchanged, and the
ablations (each step of the method alone, items-only vs both sides) computed with
numpy on the same retrains. Writes evaluation/out/results.md (and .json) and an
HTML report per scenario.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR))

from python_udfs.arrow import list_column_to_matrix
from stabilization_tools.evaluation import (
    Embeddings,
    ablated,
    max_relative_score_error,
    same_id_cosines,
    top_k_items,
)

OUT_DIR = PROJECT_DIR / "evaluation" / "out"
LAGS = (1, 2, 4)
SIDES = ("users", "items")
RETRAINS = 6
WINDOW, WINDOW_STEP = 0.70, 0.06
#: (label, steps, align_on) of the ablations
ABLATIONS = (
    ("raw (no transform)", "raw", "items"),
    ("low-rank SVD only", "svd", "items"),
    ("Procrustes only, items", "procrustes", "items"),
    ("SVD + Procrustes, items (the default)", "svd+procrustes", "items"),
    ("Procrustes only, both sides", "procrustes", "both"),
    ("SVD + Procrustes, both sides", "svd+procrustes", "both"),
)


def scenarios(data_dir: Path) -> dict[str, list[dict]]:
    """Each scenario's retrains, in order: version label, ALS seed, ratings window."""

    def retrain(version: str, seed: int, window: list[float] | None) -> dict:
        return {
            "version": version,
            "seed": seed,
            "window": window,
            "output": str(data_dir / version),
        }

    windows = [
        [round(n * WINDOW_STEP, 2), round(n * WINDOW_STEP + WINDOW, 2)] for n in range(RETRAINS)
    ]
    numbers = range(1, RETRAINS + 1)
    return {
        "seeds": [retrain(f"seed{n}", n, None) for n in numbers],
        "windows": [retrain(f"window{n}", 1, window) for n, window in zip(numbers, windows)],
        "windows_and_seeds": [
            retrain(f"window{n}_seed{n}", n, window) for n, window in zip(numbers, windows)
        ],
    }


def read_side(path: Path) -> Embeddings:
    """A side of a raw retrain (Parquet written by ALS), ordered by id."""
    table = pq.read_table(path).sort_by("id")
    return Embeddings(
        table["id"].to_numpy(), list_column_to_matrix(table["embedding"]).astype(np.float64)
    )


def read_published(spark, schema: str, side: str) -> dict[str, Embeddings]:
    """Every published version of one side, ordered by id."""
    frame = spark.sql(
        f"select embedding_version, id, embedding from {schema}.stabilized_{side[:-1]}_embeddings"
        " order by embedding_version, id"
    ).toPandas()
    return {
        version: Embeddings(
            rows["id"].to_numpy(), np.stack(rows["embedding"].to_numpy()).astype(np.float64)
        )
        for version, rows in frame.groupby("embedding_version")
    }


def build_chain(retrains: list[dict], schema: str, align_on: str, dbt_args=()) -> None:
    """`dbt build` each retrain ({version, output}) against the previous one, as a user
    would (``dbt_args``: more of dbt's arguments, e.g. a target path)."""
    from dbt.cli.main import dbtRunner

    os.environ["DBT_SCHEMA"] = schema
    previous = None
    for retrain in retrains:
        variables = {
            "embedding_version": retrain["version"],
            "user_embeddings": f"parquet.`{retrain['output']}/users`",
            "item_embeddings": f"parquet.`{retrain['output']}/items`",
            "align_on": align_on,
        }
        if previous:
            variables["base_version"] = previous
        print(f"dbt build {schema} {retrain['version']} (base {previous or '-'})", flush=True)
        result = dbtRunner().invoke(
            [
                "build",
                "--exclude-resource-type",
                "unit_test",
                "--quiet",
                "--vars",
                json.dumps(variables),
                *dbt_args,
            ]
        )
        if not result.success:
            raise SystemExit(f"dbt build of {retrain['version']} in {schema} failed")
        previous = retrain["version"]


def lag_cosines(versions: list[str], raw: dict, published: dict, side: str) -> list[dict]:
    """Same-id cosine of each version with the one ``lag`` versions before, raw and stabilized.

    ``raw`` and ``published`` map side → version → Embeddings.
    """
    rows = []
    for index, version in enumerate(versions):
        for lag in LAGS:
            if index < lag:
                continue
            earlier = versions[index - lag]
            raw_cos = same_id_cosines(raw[side][version], raw[side][earlier])
            stable_cos = same_id_cosines(published[side][version], published[side][earlier])
            rows.append(
                {
                    "version": version,
                    "side": side,
                    "lag": lag,
                    "ids": int(raw_cos.size),
                    "raw_mean": float(np.mean(raw_cos)),
                    "raw_median": float(np.median(raw_cos)),
                    "stabilized_mean": float(np.mean(stable_cos)),
                    "stabilized_median": float(np.median(stable_cos)),
                }
            )
    return rows


def invariants(versions: list[str], raw: dict, published: dict) -> list[dict]:
    """Per version: the max dot-product error over all pairs, and top-10 unchanged."""
    rows = []
    for version in versions:
        users, items = raw["users"][version], raw["items"][version]
        new_users, new_items = published["users"][version], published["items"][version]
        assert np.array_equal(users.ids, new_users.ids) and np.array_equal(items.ids, new_items.ids)
        same_top = np.all(
            top_k_items(users.matrix, items.matrix)
            == top_k_items(new_users.matrix, new_items.matrix),
            axis=1,
        )
        rows.append(
            {
                "version": version,
                "users": int(users.ids.size),
                "items": int(items.ids.size),
                "max_dot_product_error": max_relative_score_error(
                    users.matrix, items.matrix, new_users.matrix, new_items.matrix
                ),
                "users_with_same_top10": int(same_top.sum()),
            }
        )
    return rows


def ablation_chain(versions: list[str], raw: dict, steps: str, align_on: str) -> dict:
    """Some steps of the method (``ablated``) chained over the versions with numpy, each
    version aligned to the same ablation's previous one: side → version → Embeddings."""
    chain: dict[str, dict[str, Embeddings]] = {"users": {}, "items": {}}
    previous = None
    for version in versions:
        chain["users"][version], chain["items"][version] = ablated(
            raw["users"][version],
            raw["items"][version],
            chain["users"].get(previous),
            chain["items"].get(previous),
            steps,
            align_on,
        )
        previous = version
    return chain


def ablation_chains(versions: list[str], raw: dict, published: dict) -> list[dict]:
    """Each ablation chained over the versions with numpy, measured like the dbt chain."""
    rows = []
    for label, steps, align_on in ABLATIONS:
        chain = ablation_chain(versions, raw, steps, align_on)
        row = {"ablation": label, "steps": steps, "align_on": align_on}
        cosines = [r for side in SIDES for r in lag_cosines(versions, raw, chain, side)]
        for summary in summary_by_lag(cosines):
            if summary["lag"] in (1, 4):
                row[f"{summary['side']}_lag{summary['lag']}"] = summary["stabilized_mean"]
        row["max_dot_product_error"] = max(
            r["max_dot_product_error"] for r in invariants(versions, raw, chain)
        )
        if (steps, align_on) == ("svd+procrustes", "items"):
            # the numpy chain of the full method must reproduce what dbt published
            row["max_abs_difference_to_dbt"] = max(
                float(np.max(np.abs(chain[side][v].matrix - published[side][v].matrix)))
                for v in versions
                for side in SIDES
            )
        rows.append(row)
    return rows


def summary_by_lag(cosines: list[dict]) -> list[dict]:
    """The lag cosines averaged over the versions that have that lag."""
    rows = []
    for side in SIDES:
        for lag in LAGS:
            selected = [row for row in cosines if row["side"] == side and row["lag"] == lag]
            summary = {"side": side, "lag": lag, "versions": len(selected)}
            for key in ("raw_mean", "raw_median", "stabilized_mean", "stabilized_median"):
                summary[key] = float(np.mean([row[key] for row in selected]))
            rows.append(summary)
    return rows


def markdown_table(rows: list[dict], columns: dict[str, str]) -> str:
    """Rows as a Markdown table; ``columns`` maps keys to headers."""

    def cell(value):
        if isinstance(value, float):
            return f"{value:.2e}" if abs(value) < 1e-3 and value != 0 else f"{value:.3f}"
        return str(value)

    lines = ["| " + " | ".join(columns.values()) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row[key]) for key in columns) + " |" for row in rows]
    return "\n".join(lines)


def write_results(results: dict) -> str:
    """Write results.json and results.md; return the Markdown."""
    parts = ["# Evaluation on ALS retrains of MovieLens (evaluation/run.py)\n"]
    for name, result in results.items():
        parts.append(f"## Scenario `{name}`\n")
        parts.append("Same-id cosine similarity, averaged over the versions with that lag:\n")
        parts.append(
            markdown_table(
                result["summary"],
                {
                    "side": "side",
                    "lag": "lag",
                    "versions": "versions",
                    "raw_mean": "raw mean",
                    "raw_median": "raw median",
                    "stabilized_mean": "stabilized mean",
                    "stabilized_median": "stabilized median",
                },
            )
        )
        parts.append("\nPer version:\n")
        parts.append(
            markdown_table(
                result["cosines"],
                {
                    "version": "version",
                    "side": "side",
                    "lag": "lag",
                    "ids": "ids",
                    "raw_mean": "raw mean",
                    "raw_median": "raw median",
                    "stabilized_mean": "stabilized mean",
                    "stabilized_median": "stabilized median",
                },
            )
        )
        parts.append("\nScores kept (all user×item pairs, raw model vs published tables):\n")
        parts.append(
            markdown_table(
                result["invariants"],
                {
                    "version": "version",
                    "users": "users",
                    "items": "items",
                    "max_dot_product_error": "max dot-product error",
                    "users_with_same_top10": "users with identical top-10",
                },
            )
        )
        parts.append("\nAblations (numpy, chained the same way; mean same-id cosine):\n")
        parts.append(
            markdown_table(
                result["ablations"],
                {
                    "ablation": "ablation",
                    "users_lag1": "users lag 1",
                    "items_lag1": "items lag 1",
                    "users_lag4": "users lag 4",
                    "items_lag4": "items lag 4",
                    "max_dot_product_error": "max dot-product error",
                },
            )
        )
        full = next(row for row in result["ablations"] if "max_abs_difference_to_dbt" in row)
        parts.append(
            f"\nThe numpy chain of the full method reproduces the dbt-published tables to "
            f"{full['max_abs_difference_to_dbt']:.1e} (max absolute difference; float32 storage).\n"
        )
    markdown = "\n".join(parts) + "\n"
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "results.md").write_text(markdown, encoding="utf-8")
    (OUT_DIR / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    return markdown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--skip-training", action="store_true", help="reuse evaluation/out/retrains"
    )
    args = parser.parse_args(argv)
    os.chdir(PROJECT_DIR)
    data_dir = OUT_DIR / "retrains"
    plans = scenarios(data_dir)
    if not args.skip_training:
        shutil.rmtree(data_dir, ignore_errors=True)
        data_dir.mkdir(parents=True)
        plan_file = data_dir / "plan.json"
        plan_file.write_text(json.dumps([r for retrains in plans.values() for r in retrains]))
        print(f"training {sum(map(len, plans.values()))} ALS retrains ...", flush=True)
        subprocess.run([sys.executable, "evaluation/retrains.py", str(plan_file)], check=True)

    # the evaluation's own embedded metastore and warehouse, fresh every run
    spark_home = OUT_DIR / "spark_home"
    shutil.rmtree(spark_home, ignore_errors=True)
    os.environ["DBT_SPARK_HOME"] = str(spark_home)
    os.environ.setdefault("DBT_PROFILES_DIR", str(PROJECT_DIR / "profiles"))
    from pyspark.sql import SparkSession

    sys.path.insert(0, str(PROJECT_DIR / "scripts"))
    from report import render_report, report_frames

    results = {}
    for name, retrains in plans.items():
        schema = f"eval_{name}"
        build_chain(retrains, schema, align_on="items")
        versions = [r["version"] for r in retrains]
        raw = {
            side: {r["version"]: read_side(Path(r["output"]) / side) for r in retrains}
            for side in SIDES
        }
        spark = SparkSession.builder.getOrCreate()
        published = {side: read_published(spark, schema, side) for side in SIDES}
        cosines = [row for side in SIDES for row in lag_cosines(versions, raw, published, side)]
        results[name] = {
            "versions": versions,
            "cosines": cosines,
            "summary": summary_by_lag(cosines),
            "invariants": invariants(versions, raw, published),
            "ablations": ablation_chains(versions, raw, published),
        }
        report = OUT_DIR / f"report_{name}.html"
        report.write_text(
            render_report(**report_frames([]), title=f"Evaluation: ALS retrains ({name})"),
            encoding="utf-8",
        )
    print(write_results(results))
    print(f"wrote {OUT_DIR / 'results.md'} and the reports {OUT_DIR}/report_*.html")
    return 0


if __name__ == "__main__":
    sys.exit(main())
