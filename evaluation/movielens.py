"""Evaluate the stabilization on MovieLens 100k: weekly retrains of two model families.

    make evaluate-movielens    (or: .venv/bin/python evaluation/movielens.py)

MovieLens 100k (100,000 ratings, 943 users, 1,682 movies; Harper & Konstan, ACM TiiS
2015) comes from the wheel of recbole 1.2.1, fetched by `make movielens` into
evaluation/data/ml-100k (GroupLens' terms: research use, cite, no redistribution).

Each version is a weekly retrain on every rating up to the end of its week (weeks 21
to 28 after the first rating: 8 versions, 73,708 to 96,588 ratings), for two families:

  als         Spark ML's ALS, rank 16, regParam 0.1, 10 iterations, a new seed each
              week (a retrain that does not fix its seed): balanced factors;
  unbalanced  alternating least squares in numpy, rank 16, with a different L2 penalty
              per side drawn each week (log-uniform in [0.1, 30]): the scale moves
              between users and items from one retrain to the next, as in
              gradient-trained models.

Each family's versions are published by `dbt build`, chained (each aligned to the
version before, `align_on: items`), in a schema of their own, as a user runs them.
Then, per version: raw vs Procrustes alone (numpy, chained the same way) vs the
project (low-rank SVD + Procrustes, the published tables): same-id cosine to the
previous version (mean and 10th percentile), the largest dot-product error, the rank
and condition number (stabilization_runs); a downstream task trained once on the first
version's embeddings and applied unchanged (item genres from item embeddings, micro-F1;
user age band from user embeddings, accuracy), against the same classifier retrained
on each version; nDCG@10 on the next week's ratings and identical top-10 lists, raw vs
published. Writes evaluation/out/movielens/results.md, results.json and plots.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR))
sys.path.insert(0, str(PROJECT_DIR / "evaluation"))

from run import ablation_chain, build_chain, markdown_table, read_published, read_side

from stabilization_tools.evaluation import (
    max_relative_score_error,
    same_id_cosines,
    top_k_items,
)
from stabilization_tools.movielens import (
    AGE_BANDS,
    accuracy,
    micro_f1,
    ndcg_at_k,
    one_hot,
    read_movielens,
    ridge_classifier,
    split_ids,
    unbalanced_als,
    weekly_snapshots,
)

DATA_DIR = PROJECT_DIR / "evaluation" / "data" / "ml-100k"
OUT_DIR = PROJECT_DIR / "evaluation" / "out" / "movielens"
WEEKS = range(21, 29)
DIMENSION = 16
FAMILIES = ("als", "unbalanced")
#: raw, Procrustes alone, and the project (SVD + Procrustes, as published)
METHODS = ("raw", "procrustes", "project")
SIDES = ("users", "items")


def penalties(week: int) -> tuple[float, float]:
    """The unbalanced family's (user, item) L2 penalties of a week's retrain."""
    rng = np.random.default_rng(week)
    return tuple(float(10 ** rng.uniform(-1.0, np.log10(30.0))) for _ in SIDES)


def train(plan: list[dict], ratings: pd.DataFrame) -> None:
    """Train every retrain of ``plan`` ({family, week, output}) and write its factors as
    Parquet (``output``/users, ``output``/items: id, embedding array<float>).
    Run in a process of its own: Spark's ALS needs a session that is not dbt's."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    spark = None
    for retrain in plan:
        train_ratings = ratings[ratings["timestamp"] <= retrain["until"]]
        output = Path(retrain["output"])
        if retrain["family"] == "als":
            if spark is None:
                sys.path.insert(0, str(PROJECT_DIR / "scripts"))
                from train_als import als_session

                spark = als_session(Path(tempfile.mkdtemp(prefix="als_checkpoints_")))
            from train_als import train_and_write

            frame = spark.createDataFrame(
                train_ratings[["user_id", "item_id", "rating"]].astype(
                    {"user_id": "int32", "item_id": "int32", "rating": "float32"}
                )
            )
            train_and_write(frame, output, seed=retrain["week"], rank=DIMENSION, iterations=10)
        else:
            user_penalty, item_penalty = penalties(retrain["week"])
            sides = unbalanced_als(
                train_ratings, DIMENSION, user_penalty, item_penalty, seed=retrain["week"]
            )
            for side, embeddings in zip(SIDES, sides):
                (output / side).mkdir(parents=True, exist_ok=True)
                table = pa.table(
                    {
                        "id": pa.array(embeddings.ids, pa.int32()),
                        "embedding": pa.array(
                            list(embeddings.matrix.astype(np.float32)), pa.list_(pa.float32())
                        ),
                    }
                )
                pq.write_table(table, output / side / "part-0.parquet")
        print(f"  trained {retrain['family']} {output.name}", flush=True)
    if spark is not None:
        spark.stop()


def downstream(versions: list[str], embeddings: dict, movielens) -> list[dict]:
    """Per version: the first version's classifiers applied unchanged, and the same
    classifiers retrained on this version (the ceiling), on the held-out ids."""

    def task(side: str, version: str):
        found = embeddings[side][version]
        if side == "items":
            labels = movielens.genres.reindex(found.ids).fillna(0).to_numpy()
        else:
            classes = movielens.age_band.reindex(found.ids).to_numpy()
            labels = one_hot(classes, len(AGE_BANDS) - 1)
        return found.matrix, labels, split_ids(found.ids)

    def measure(side, weights, features, labels):
        if side == "items":
            return micro_f1(weights, features, labels)
        return accuracy(weights, features, np.argmax(labels, axis=1))

    frozen = {}
    for side in SIDES:
        features, labels, held_out = task(side, versions[0])
        frozen[side] = ridge_classifier(features[~held_out], labels[~held_out])
    rows = []
    for version in versions:
        row = {"version": version}
        for side in SIDES:
            features, labels, held_out = task(side, version)
            retrained = ridge_classifier(features[~held_out], labels[~held_out])
            test = features[held_out], labels[held_out]
            row[f"{side}_frozen"] = measure(side, frozen[side], *test)
            row[f"{side}_retrained"] = measure(side, retrained, *test)
        rows.append(row)
    return rows


def evaluate_family(family, versions, raw, published, runs, snapshots, movielens) -> dict:
    """Every measure of one family's chain."""
    chains = {
        "raw": raw,
        "procrustes": ablation_chain(versions, raw, "procrustes", "items"),
        "project": published,
    }
    stability, downstream_rows = [], {}
    for method, chain in chains.items():
        downstream_rows[method] = downstream(versions, chain, movielens)
        for index, version in enumerate(versions):
            row = {"family": family, "method": method, "version": version}
            for side in SIDES:
                if index == 0:
                    row[f"{side}_cosine_mean"] = row[f"{side}_cosine_p10"] = None
                    continue
                cosines = same_id_cosines(chain[side][version], chain[side][versions[index - 1]])
                row[f"{side}_cosine_mean"] = float(np.mean(cosines))
                row[f"{side}_cosine_p10"] = float(np.percentile(cosines, 10))
            row["max_dot_product_error"] = max_relative_score_error(
                raw["users"][version].matrix,
                raw["items"][version].matrix,
                chain["users"][version].matrix,
                chain["items"][version].matrix,
            )
            stability.append(row)
    ranking = []
    for snapshot, version in zip(snapshots, versions):
        users, items = raw["users"][version], raw["items"][version]
        new_users, new_items = published["users"][version], published["items"][version]
        same_top = np.all(
            top_k_items(users.matrix, items.matrix)
            == top_k_items(new_users.matrix, new_items.matrix),
            axis=1,
        )
        ranking.append(
            {
                "version": version,
                "ratings": len(snapshot.train),
                "rank": int(runs.loc[version, "rank"]),
                "condition_number": float(runs.loc[version, "condition_number"]),
                "ndcg_raw": ndcg_at_k(users, items, snapshot.held_out),
                "ndcg_published": ndcg_at_k(new_users, new_items, snapshot.held_out),
                "users_with_same_top10": int(same_top.sum()),
                "users": int(users.ids.size),
            }
        )
    return {"stability": stability, "downstream": downstream_rows, "ranking": ranking}


def evaluate(data_dir: Path, out_dir: Path, weeks: range, dbt_args=()) -> dict:
    """Train, publish through dbt and measure; the results by family."""
    movielens = read_movielens(data_dir)
    snapshots = weekly_snapshots(movielens.ratings, weeks)
    versions = [snapshot.version for snapshot in snapshots]
    start = movielens.ratings["timestamp"].min()
    retrains_dir = out_dir / "retrains"
    plan = [
        {
            "family": family,
            "week": snapshot.week,
            "until": int(start + (snapshot.week + 1) * 7 * 24 * 3600 - 1),
            "output": str(retrains_dir / family / snapshot.version),
        }
        for family in FAMILIES
        for snapshot in snapshots
    ]
    shutil.rmtree(retrains_dir, ignore_errors=True)
    retrains_dir.mkdir(parents=True)
    (retrains_dir / "plan.json").write_text(json.dumps(plan))
    print(f"training {len(plan)} retrains ...", flush=True)
    subprocess.run(
        [
            sys.executable,
            __file__,
            "--train",
            str(retrains_dir / "plan.json"),
            "--data",
            str(data_dir),
        ],
        check=True,
    )
    from pyspark.sql import SparkSession

    results = {}
    for family in FAMILIES:
        schema = f"eval_movielens_{family}"
        retrains = [{"version": v, "output": str(retrains_dir / family / v)} for v in versions]
        build_chain(retrains, schema, "items", dbt_args)
        spark = SparkSession.builder.getOrCreate()
        raw = {
            side: {v: read_side(retrains_dir / family / v / side) for v in versions}
            for side in SIDES
        }
        published = {side: read_published(spark, schema, side) for side in SIDES}
        runs = spark.table(f"{schema}.stabilization_runs").toPandas().set_index("embedding_version")
        results[family] = evaluate_family(
            family, versions, raw, published, runs, snapshots, movielens
        )
    return results


def summary(results: dict) -> dict[str, list[dict]]:
    """The tables of docs/evaluation.md: each family and method, over versions 2 … n."""
    stability, tasks, ranking = [], [], []
    for family, result in results.items():
        for method in METHODS:
            rows = [
                r
                for r in result["stability"]
                if r["method"] == method and r["users_cosine_mean"] is not None
            ]
            stability.append(
                {"family": family, "method": method}
                | {
                    key: float(np.mean([r[key] for r in rows]))
                    for key in rows[0]
                    if key.endswith(("_mean", "_p10"))
                }
                | {"max_dot_product_error": max(r["max_dot_product_error"] for r in rows)}
            )
            later = result["downstream"][method][1:]
            tasks.append(
                {"family": family, "method": method}
                | {
                    f"{side}_{kind}": float(np.mean([r[f"{side}_{kind}"] for r in later]))
                    for side in SIDES
                    for kind in ("frozen", "retrained")
                }
            )
        rows = result["ranking"]
        ranking.append(
            {
                "family": family,
                "ndcg_raw": float(np.nanmean([r["ndcg_raw"] for r in rows])),
                "ndcg_published": float(np.nanmean([r["ndcg_published"] for r in rows])),
                "same_top10": sum(r["users_with_same_top10"] for r in rows),
                "users": sum(r["users"] for r in rows),
                "rank": "–".join(sorted({str(r["rank"]) for r in rows})),
                "condition_number": f"{min(r['condition_number'] for r in rows):.0f}–"
                f"{max(r['condition_number'] for r in rows):.0f}",
            }
        )
    return {"stability": stability, "downstream": tasks, "ranking": ranking}


def write_results(results: dict, out_dir: Path) -> str:
    """results.json, results.md (the summary, then every version) and movielens.png."""
    tables = summary(results)
    parts = ["# MovieLens 100k, weekly retrains (evaluation/movielens.py)\n"]
    parts.append("Same-id cosine to the previous version, mean over versions 2 … n:\n")
    parts.append(
        markdown_table(
            tables["stability"],
            {
                "family": "family",
                "method": "method",
                "users_cosine_mean": "users mean",
                "users_cosine_p10": "users p10",
                "items_cosine_mean": "items mean",
                "items_cosine_p10": "items p10",
                "max_dot_product_error": "max dot-product error",
            },
        )
    )
    parts.append("\nDownstream, classifiers of version 1 applied unchanged (mean over 2 … n):\n")
    parts.append(
        markdown_table(
            tables["downstream"],
            {
                "family": "family",
                "method": "method",
                "items_frozen": "genres F1, frozen",
                "items_retrained": "genres F1, retrained",
                "users_frozen": "age band acc., frozen",
                "users_retrained": "age band acc., retrained",
            },
        )
    )
    parts.append("\nRanking, raw model vs published tables:\n")
    parts.append(
        markdown_table(
            tables["ranking"],
            {
                "family": "family",
                "ndcg_raw": "nDCG@10 raw",
                "ndcg_published": "nDCG@10 published",
                "same_top10": "identical top-10 lists",
                "users": "of users (all versions)",
                "rank": "rank",
                "condition_number": "condition number",
            },
        )
    )
    for family, result in results.items():
        parts.append(f"\n## {family}, per version\n")
        parts.append(
            markdown_table(
                [r for r in result["stability"] if r["users_cosine_mean"] is not None],
                {
                    "method": "method",
                    "version": "version",
                    "users_cosine_mean": "users mean",
                    "users_cosine_p10": "users p10",
                    "items_cosine_mean": "items mean",
                    "items_cosine_p10": "items p10",
                    "max_dot_product_error": "max dot-product error",
                },
            )
        )
        parts.append("")
        parts.append(
            markdown_table(
                result["ranking"],
                {
                    "version": "version",
                    "ratings": "ratings",
                    "rank": "rank",
                    "condition_number": "condition number",
                    "ndcg_raw": "nDCG@10 raw",
                    "ndcg_published": "nDCG@10 published",
                    "users_with_same_top10": "identical top-10",
                },
            )
        )
    markdown = "\n".join(parts) + "\n"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.md").write_text(markdown, encoding="utf-8")
    (out_dir / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    plot(results, out_dir / "movielens.png")
    return markdown


def plot(results: dict, path: Path) -> None:
    """Item cosine to the previous version and the frozen genre classifier's F1, by
    version, for each family and method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, len(results), figsize=(5 * len(results), 6.5), squeeze=False)
    for column, (family, result) in enumerate(results.items()):
        for method in METHODS:
            rows = [r for r in result["stability"] if r["method"] == method]
            weeks = [r["version"][4:] for r in rows]
            axes[0, column].plot(
                weeks, [r["items_cosine_mean"] for r in rows], marker="o", label=method
            )
            tasks = result["downstream"][method]
            axes[1, column].plot(
                weeks, [r["items_frozen"] for r in tasks], marker="o", label=f"{method}, frozen"
            )
        axes[1, column].plot(
            weeks,
            [r["items_retrained"] for r in result["downstream"]["project"]],
            linestyle="--",
            color="grey",
            label="retrained (ceiling)",
        )
        axes[0, column].set_title(f"{family}: item cosine to the previous week")
        axes[1, column].set_title(f"{family}: genre F1 of week 1's classifier")
        axes[1, column].set_xlabel("week")
        for axis in axes[:, column]:
            axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA_DIR)
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    parser.add_argument("--train", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.train:
        train(json.loads(args.train.read_text()), read_movielens(args.data).ratings)
        return 0
    if not (args.data / "ml-100k.inter").exists():
        raise SystemExit(f"{args.data} has no MovieLens 100k: run `make movielens` first")
    os.chdir(PROJECT_DIR)
    spark_home = args.out / "spark_home"  # the evaluation's own metastore, fresh each run
    shutil.rmtree(spark_home, ignore_errors=True)
    os.environ["DBT_SPARK_HOME"] = str(spark_home)
    os.environ.setdefault("DBT_PROFILES_DIR", str(PROJECT_DIR / "profiles"))
    results = evaluate(args.data, args.out, WEEKS)
    print(write_results(results, args.out))
    print(f"wrote {args.out / 'results.md'}, results.json and movielens.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
