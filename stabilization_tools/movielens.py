"""MovieLens 100k as weekly retrains, a second model family, and what downstream sees.

Pure numpy and pandas on data that fits in memory: the evaluation on MovieLens 100k
(``evaluation/movielens.py``) uses these to cut the ratings into weekly snapshots, to
train the unbalanced model family, and to measure what a user of the published
embeddings sees (a downstream classifier frozen on the first version; ranking quality
on the next week's ratings). MovieLens 100k: F. M. Harper and J. A. Konstan, "The
MovieLens Datasets: History and Context", ACM TiiS 5(4), 2015; GroupLens' terms apply
(research use, cite, no redistribution: fetched at set-up, never committed).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from stabilization_tools.evaluation import Embeddings

SECONDS_PER_WEEK = 7 * 24 * 3600
#: the user attribute bands of the user task (age in years, right-open)
AGE_BANDS = (0, 25, 35, 45, 200)


@dataclass(frozen=True)
class MovieLens:
    """The ratings (user_id, item_id, rating, timestamp), the users' age band and the
    items' genres (0/1 per genre), indexed by id."""

    ratings: pd.DataFrame
    age_band: pd.Series
    genres: pd.DataFrame


def read_movielens(folder: Path) -> MovieLens:
    """Read RecBole's atomic files of MovieLens 100k (``ml-100k.inter``, ``.user``,
    ``.item``: tab-separated, headers ``name:type``)."""

    def atomic(suffix: str) -> pd.DataFrame:
        frame = pd.read_csv(folder / f"ml-100k.{suffix}", sep="\t", dtype=str)
        frame.columns = [column.split(":")[0] for column in frame.columns]
        return frame

    ratings = atomic("inter").astype(
        {"user_id": int, "item_id": int, "rating": float, "timestamp": int}
    )
    users = atomic("user").astype({"user_id": int, "age": int}).set_index("user_id")
    items = atomic("item").astype({"item_id": int}).set_index("item_id")
    age_band = pd.Series(
        np.searchsorted(AGE_BANDS, users["age"].to_numpy(), side="right") - 1,
        index=users.index,
        name="age_band",
    )
    genres = items["class"].fillna("").str.get_dummies(sep=" ")
    return MovieLens(ratings, age_band, genres)


@dataclass(frozen=True)
class Snapshot:
    """One weekly retrain: the ratings up to the end of week ``week`` (train), and the
    next week's ratings of users and items the model knows (held out)."""

    version: str
    week: int
    train: pd.DataFrame
    held_out: pd.DataFrame


def weekly_snapshots(ratings: pd.DataFrame, weeks: range) -> list[Snapshot]:
    """A retrain per week in ``weeks`` (counted from the first rating): each trains on
    every rating up to that week's end, as a weekly retrain does."""
    week_of = (ratings["timestamp"] - ratings["timestamp"].min()) // SECONDS_PER_WEEK
    snapshots = []
    for week in weeks:
        train = ratings[week_of <= week]
        following = ratings[week_of == week + 1]
        known = following["user_id"].isin(train["user_id"]) & following["item_id"].isin(
            train["item_id"]
        )
        snapshots.append(Snapshot(f"week{week:02d}", week, train, following[known]))
    return snapshots


def unbalanced_als(
    ratings: pd.DataFrame,
    dimension: int,
    user_regularization: float,
    item_regularization: float,
    iterations: int = 10,
    seed: int = 0,
) -> tuple[Embeddings, Embeddings]:
    """Matrix factorization of the ratings by alternating least squares with a
    different L2 penalty per side, ``λ_u‖W‖² + λ_t‖T‖²``.

    The penalties decide where the scale goes: the best split of a score matrix
    S = W·Tᵀ has ``λ_u·WᵀW = λ_t·TᵀT``, so the user factors are ``(λ_t/λ_u)^¼`` times
    smaller or larger than a balanced split's, the items the inverse. Retrains that
    tune the penalties (or a gradient-trained model, whose scale depends on its
    initialization) give versions whose two sides are scaled differently each time.
    """
    rng = np.random.default_rng(seed)
    user_ids, user_rows = np.unique(ratings["user_id"].to_numpy(), return_inverse=True)
    item_ids, item_rows = np.unique(ratings["item_id"].to_numpy(), return_inverse=True)
    values = ratings["rating"].to_numpy(dtype=np.float64)
    users = rng.normal(scale=0.1, size=(user_ids.size, dimension))
    items = rng.normal(scale=0.1, size=(item_ids.size, dimension))

    def solve(rows, columns, fixed, regularization):
        # each row's normal equations (Σ t tᵀ + λ I) w = Σ r t over its ratings, the
        # ratings sorted by row so that each row's sums are one reduceat segment
        order = np.argsort(rows, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(rows[order]) != 0])
        factors = fixed[columns[order]]
        grams = np.add.reduceat(np.einsum("ni,nj->nij", factors, factors), starts)
        grams += regularization * np.eye(dimension)
        targets = np.add.reduceat(values[order, None] * factors, starts)
        return np.linalg.solve(grams, targets[..., None])[..., 0]

    for _ in range(iterations):
        users = solve(user_rows, item_rows, items, user_regularization)
        items = solve(item_rows, user_rows, users, item_regularization)
    return Embeddings(user_ids, users), Embeddings(item_ids, items)


def ridge_classifier(features: np.ndarray, labels: np.ndarray, regularization: float = 1.0):
    """A linear classifier fitted by ridge regression on ±1 targets, one column per
    class (one-vs-rest; a multi-label target is its 0/1 matrix). Returns the weights,
    the last row the bias."""
    design = np.hstack([features, np.ones((features.shape[0], 1))])
    penalty = regularization * np.eye(design.shape[1])
    penalty[-1, -1] = 0.0  # the bias is not penalized
    return np.linalg.solve(design.T @ design + penalty, design.T @ (2.0 * labels - 1.0))


def classifier_scores(weights: np.ndarray, features: np.ndarray) -> np.ndarray:
    return np.hstack([features, np.ones((features.shape[0], 1))]) @ weights


def one_hot(classes: np.ndarray, count: int) -> np.ndarray:
    return np.eye(count)[classes]


def accuracy(weights: np.ndarray, features: np.ndarray, classes: np.ndarray) -> float:
    """Share of rows whose highest-scoring class is theirs (a multi-class task)."""
    return float(np.mean(np.argmax(classifier_scores(weights, features), axis=1) == classes))


def micro_f1(weights: np.ndarray, features: np.ndarray, labels: np.ndarray) -> float:
    """Micro-averaged F1 of the labels predicted positive (score > 0; multi-label)."""
    predicted = classifier_scores(weights, features) > 0
    true_positives = np.sum(predicted & (labels > 0))
    return float(2 * true_positives / max(predicted.sum() + (labels > 0).sum(), 1))


def ndcg_at_k(users: Embeddings, items: Embeddings, held_out: pd.DataFrame, k: int = 10):
    """Mean nDCG@k, over the users with held-out ratings, of ranking every item by
    score (items a user rated in training included: the ranking, not a recommender's
    filter, is what is compared), a held-out rating of r counting 2^r − 1; NaN when
    nothing is held out."""
    if held_out.empty:
        return float("nan")
    user_index = {user_id: row for row, user_id in enumerate(users.ids)}
    item_index = {item_id: row for row, item_id in enumerate(items.ids)}
    values = []
    for user_id, rated in held_out.groupby("user_id"):
        scores = items.matrix @ users.matrix[user_index[user_id]]
        top = np.argsort(-scores, kind="stable")[:k]
        gain = np.zeros(items.ids.size)
        rows = [item_index[item_id] for item_id in rated["item_id"]]
        gain[rows] = 2.0 ** rated["rating"].to_numpy() - 1.0
        discounts = 1.0 / np.log2(np.arange(2, k + 2))
        ideal = np.sort(gain)[::-1][:k] @ discounts
        values.append(gain[top] @ discounts / ideal if ideal > 0 else 0.0)
    return float(np.mean(values))


def split_ids(ids: np.ndarray, test_share: float = 0.2) -> np.ndarray:
    """True for the ids held out of a classifier's training (a fixed hash of the id,
    so every version splits its ids alike)."""
    return (np.asarray(ids, dtype=np.uint64) * np.uint64(2654435761) % np.uint64(1000)) < (
        test_share * 1000
    )
