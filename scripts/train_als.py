"""Train Spark ML's ALS on the MovieLens sample shipped in pyspark; write the factors.

    python scripts/train_als.py OUTPUT_DIR --seed 1 [--rank 10]

Writes OUTPUT_DIR/users and OUTPUT_DIR/items as Parquet with columns
(id int, embedding array<float>): one retrain of a recommendation model.
The functions are also used by the evaluation (evaluation/retrains.py).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path


def movielens_ratings_path() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent / "data" / "mllib" / "als" / "sample_movielens_ratings.txt"


def als_session(checkpoint_dir: Path):
    """A local Spark session for training (not dbt's: no metastore needed)."""
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("train-als")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        # ALS's iterations build a long lineage; a deep one overflows the
        # default thread stack when tasks are serialized
        .config("spark.driver.extraJavaOptions", "-Xss16m")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    # with a checkpoint folder ALS truncates the lineage every 10 iterations
    spark.sparkContext.setCheckpointDir(str(checkpoint_dir))
    return spark


def movielens_ratings(spark):
    """The ratings as (user_id, item_id, rating, timestamp); lines are user::item::rating::time."""
    from pyspark.sql import functions as F

    parts = F.split(F.col("value"), "::")
    return spark.read.text(str(movielens_ratings_path())).select(
        parts[0].cast("int").alias("user_id"),
        parts[1].cast("int").alias("item_id"),
        parts[2].cast("float").alias("rating"),
        parts[3].cast("long").alias("timestamp"),
    )


def train_and_write(ratings, output: Path, seed: int, rank: int = 10, iterations: int = 15) -> None:
    """Fit ALS on the ratings and write its user and item factors under ``output``."""
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import functions as F

    model = ALS(
        rank=rank,
        maxIter=iterations,
        regParam=0.1,
        userCol="user_id",
        itemCol="item_id",
        ratingCol="rating",
        seed=seed,
    ).fit(ratings)
    for side, factors in (("users", model.userFactors), ("items", model.itemFactors)):
        factors.select("id", F.col("features").alias("embedding")).coalesce(1).write.mode(
            "overwrite"
        ).parquet(str(output / side))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rank", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=15)
    args = parser.parse_args()
    spark = als_session(args.output / "_checkpoints")
    train_and_write(movielens_ratings(spark), args.output, args.seed, args.rank, args.iterations)
    spark.stop()
    shutil.rmtree(args.output / "_checkpoints", ignore_errors=True)


if __name__ == "__main__":
    main()
