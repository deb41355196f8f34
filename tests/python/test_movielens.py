"""The MovieLens evaluation (stabilization_tools.movielens, evaluation/movielens.py): its
measures against numpy, and its whole path on a small slice in MovieLens 100k's files —
two weekly versions of both model families, trained, published by dbt build, measured."""

import sys

import numpy as np
import pandas as pd
import pytest
from conftest import PROJECT_DIR
from numpy.testing import assert_allclose

from stabilization_tools.evaluation import Embeddings
from stabilization_tools.movielens import (
    SECONDS_PER_WEEK,
    accuracy,
    ndcg_at_k,
    ridge_classifier,
    unbalanced_als,
    weekly_snapshots,
)

sys.path.insert(0, str(PROJECT_DIR / "evaluation"))


def small_movielens(rng, users=40, items=30, weeks=3, per_week=160) -> dict[str, pd.DataFrame]:
    """Ratings of a rank-3 taste model over ``weeks`` weeks, users with ages, items with
    genres: MovieLens 100k's columns."""
    tastes, traits = rng.normal(size=(users, 3)), rng.normal(size=(items, 3))
    pairs = rng.choice(users * items, size=weeks * per_week, replace=False)
    user_rows, item_rows = pairs // items, pairs % items
    scores = np.einsum("ij,ij->i", tastes[user_rows], traits[item_rows])
    ratings = pd.DataFrame(
        {
            "user_id:token": user_rows + 1,
            "item_id:token": item_rows + 1,
            "rating:float": np.clip(np.round(3 + scores), 1, 5),
            "timestamp:float": 881_000_000
            + np.sort(rng.integers(0, weeks * SECONDS_PER_WEEK, pairs.size)),
        }
    )
    genres = np.array(["Action", "Comedy", "Drama"])
    return {
        "inter": ratings,
        "user": pd.DataFrame(
            {"user_id:token": np.arange(1, users + 1), "age:token": rng.integers(15, 70, users)}
        ),
        "item": pd.DataFrame(
            {
                "item_id:token": np.arange(1, items + 1),
                "class:token_seq": [" ".join(genres[traits[i] > 0]) for i in range(items)],
            }
        ),
    }


def test_weekly_snapshots_train_on_every_rating_up_to_their_week():
    ratings = pd.DataFrame(
        {
            "user_id": [1, 2, 2, 1, 3],
            "item_id": [1, 2, 1, 2, 9],
            "rating": [5.0, 4, 3, 2, 1],
            "timestamp": np.array([0, 1, 8, 15, 15]) * 24 * 3600 + 100,
        }
    )
    first, second = weekly_snapshots(ratings, range(2))
    assert (first.version, len(first.train), second.version, len(second.train)) == (
        "week00",
        2,
        "week01",
        3,
    )
    # the next week's ratings of a user and an item the model knows (user 3: unknown)
    assert first.held_out[["user_id", "item_id"]].values.tolist() == [[2, 1]]
    assert second.held_out[["user_id", "item_id"]].values.tolist() == [[1, 2]]


def test_unbalanced_als_splits_the_scale_as_its_penalties_say():
    """Each side's factors solve their penalized least squares (the gradient is zero at
    the last half-step), and the users' scale against the items' follows λ_t/λ_u."""
    rng = np.random.default_rng(0)
    frame = small_movielens(rng)["inter"]
    ratings = frame.set_axis(["user_id", "item_id", "rating", "timestamp"], axis=1)
    norms = {}
    for penalties in [(10.0, 0.1), (0.1, 10.0)]:
        users, items = unbalanced_als(ratings, 3, *penalties, iterations=30)
        norms[penalties] = np.linalg.norm(users.matrix) / np.linalg.norm(items.matrix)
        rows = np.searchsorted(items.ids, ratings["item_id"])
        columns = np.searchsorted(users.ids, ratings["user_id"])
        # w·t − r on every rating
        residual = np.einsum("ij,ij->i", users.matrix[columns], items.matrix[rows])
        residual -= ratings["rating"].to_numpy()
        gradient = np.zeros_like(items.matrix)
        np.add.at(gradient, rows, residual[:, None] * users.matrix[columns])
        assert_allclose(gradient + penalties[1] * items.matrix, 0, atol=1e-8)
    assert norms[(10.0, 0.1)] < 0.5
    assert norms[(0.1, 10.0)] > 2


def test_ridge_classifier_and_ndcg_against_numpy():
    rng = np.random.default_rng(1)
    features, classes = rng.normal(size=(50, 4)), rng.integers(0, 3, 50)
    weights = ridge_classifier(features, np.eye(3)[classes], regularization=0.0)
    design = np.hstack([features, np.ones((50, 1))])
    expected = np.linalg.lstsq(design, 2 * np.eye(3)[classes] - 1, rcond=None)[0]
    assert_allclose(weights, expected, atol=1e-10)
    predicted = np.argmax(design @ expected, axis=1)
    assert accuracy(weights, features, classes) == np.mean(predicted == classes)
    # one user, items scored 3 > 2 > 1: the held-out 5-star item ranked second of three
    users = Embeddings(np.array([7]), np.array([[1.0]]))
    items = Embeddings(np.array([1, 2, 3]), np.array([[3.0], [2.0], [1.0]]))
    held_out = pd.DataFrame({"user_id": [7], "item_id": [2], "rating": [5.0]})
    assert ndcg_at_k(users, items, held_out, k=2) == pytest.approx(1 / np.log2(3))


@pytest.mark.integration
def test_the_evaluation_trains_publishes_and_measures_both_families(module_project, tmp_path):
    import movielens

    data = tmp_path / "ml-100k"
    data.mkdir()
    for suffix, frame in small_movielens(np.random.default_rng(2)).items():
        frame.to_csv(data / f"ml-100k.{suffix}", sep="\t", index=False)
    dbt_args = ["--target-path", str(module_project.target_path)]
    results = movielens.evaluate(data, tmp_path / "out", range(2), dbt_args)
    assert set(results) == {"als", "unbalanced"}
    for result in results.values():
        for row in result["stability"]:
            if row["method"] != "raw":
                assert row["max_dot_product_error"] < 1e-5  # every score kept
        for row in result["ranking"]:
            assert row["ndcg_published"] == pytest.approx(row["ndcg_raw"], abs=1e-6)
            assert 1 <= row["rank"] <= 16
        later = [r for r in result["stability"] if r["version"] == "week01"]
        cosine = {r["method"]: r["items_cosine_mean"] for r in later}
        assert cosine["project"] > cosine["raw"]  # aligned to the week before
        assert len(result["downstream"]["project"]) == 2
    markdown = movielens.write_results(results, tmp_path / "out")
    assert "| unbalanced | project |" in markdown
    assert (tmp_path / "out" / "movielens.png").stat().st_size > 0
