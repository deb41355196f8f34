"""Train the evaluation's ALS retrains in one Spark session (run by evaluation/run.py).

    python evaluation/retrains.py PLAN.json

PLAN.json lists retrains as {"output": dir, "seed": s, "window": [start, end] | null}:
a window keeps the ratings whose position in time order is in [start, end)
(fractions of all ratings). Time order is the ratings' timestamp, ties broken by a
fixed hash of (user, item): the MovieLens sample shipped in pyspark has a single
timestamp for all its ratings, so there the hash alone orders them (a fixed,
arbitrary arrival order).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from train_als import als_session, movielens_ratings, train_and_write


def ratings_in_time_order(spark):
    """The ratings with ``position``: their rank in time order, from 0 to 1 (exclusive)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    ratings = movielens_ratings(spark)
    order = Window.orderBy("timestamp", F.xxhash64("user_id", "item_id"), "user_id", "item_id")
    total = ratings.count()
    return ratings.withColumn("position", (F.row_number().over(order) - 1) / F.lit(total)).cache()


def main(plan_path: str) -> None:
    from pyspark.sql import functions as F

    plan = json.loads(Path(plan_path).read_text())
    checkpoints = Path(tempfile.mkdtemp(prefix="als_checkpoints_"))
    spark = als_session(checkpoints)
    ratings = ratings_in_time_order(spark)
    for retrain in plan:
        window = retrain.get("window")
        selected = ratings
        if window is not None:
            selected = ratings.where(
                (F.col("position") >= window[0]) & (F.col("position") < window[1])
            )
        train_and_write(selected, Path(retrain["output"]), retrain["seed"])
        print(f"  trained {retrain['output']}", flush=True)
    spark.stop()
    shutil.rmtree(checkpoints, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1])
