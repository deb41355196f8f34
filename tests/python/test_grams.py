"""Long-form Grams (as the SQL writes them) → matrices → transforms."""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from python_udfs.grams import grams_from_long, transforms_from_grams


def long_form(name, matrix):
    i, j = np.indices(matrix.shape)
    return pd.DataFrame(
        {"gram_name": name, "i": i.ravel(), "j": j.ravel(), "value": matrix.ravel()}
    )


def test_grams_from_long_rebuilds_each_matrix():
    rng = np.random.default_rng(0)
    users, cross = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))
    frame = pd.concat([long_form("users", users), long_form("items_cross", cross)])
    grams = grams_from_long(frame.sample(frac=1, random_state=1))  # any row order
    assert set(grams) == {"users", "items_cross"}
    assert_allclose(grams["users"], users)
    assert_allclose(grams["items_cross"], cross)


def test_transforms_from_grams_name_the_mismatched_dimensions():
    with pytest.raises(ValueError, match="dimension 3 but item embeddings have dimension 4"):
        transforms_from_grams({"users": np.eye(3), "items": np.eye(4)})


def test_transforms_from_grams_reject_a_base_of_another_dimension():
    grams = {"users": np.eye(3), "items": np.eye(3), "items_cross": np.ones((3, 5))}
    with pytest.raises(ValueError, match="base version's have dimension 5"):
        transforms_from_grams(grams)


def test_transforms_from_grams_require_both_sides():
    with pytest.raises(ValueError, match="items embeddings are empty"):
        transforms_from_grams({"users": np.eye(3)})


@pytest.mark.parametrize("base_dimension", [3, 7])
def test_a_dimension_change_is_padded_with_zero_columns_and_keeps_every_score(base_dimension):
    """A new e = 5 retrain aligned to a narrower (3) or wider (7) base."""
    rng = np.random.default_rng(base_dimension)
    w, t = rng.standard_normal((40, 5)), rng.standard_normal((30, 5))
    base = rng.standard_normal((30, base_dimension))
    grams = {"users": w.T @ w, "items": t.T @ t, "items_cross": t.T @ base}
    solved = transforms_from_grams(grams, allow_dimension_change=True)
    width = max(5, base_dimension)
    assert solved.dimension == width
    assert solved.user_transform.shape == solved.item_transform.shape == (5, width)
    w_new, t_new = w @ solved.user_transform, t @ solved.item_transform
    assert_allclose(w_new @ t_new.T, w @ t.T, atol=1e-10)
    # the same result as padding the inputs themselves with zero columns
    padded = [np.pad(m, ((0, 0), (0, width - m.shape[1]))) for m in (w, t, base)]
    reference = transforms_from_grams(
        {
            "users": padded[0].T @ padded[0],
            "items": padded[1].T @ padded[1],
            "items_cross": padded[1].T @ padded[2],
        }
    )
    assert_allclose(t_new, padded[1] @ reference.item_transform, atol=1e-10)


@pytest.mark.parametrize(
    ("method", "dimension", "chosen"),
    [
        ("auto", 16, "sql"),
        ("auto", 17, "arrow"),
        ("auto", None, "sql"),  # no rows: the SQL Gram's empty form
        ("sql", 256, "sql"),
        ("arrow", 8, "arrow"),
    ],
)
def test_gram_method_auto_takes_arrow_only_past_the_width(method, dimension, chosen):
    from python_udfs.spark import gram_method_for

    assert gram_method_for(method, dimension, arrow_above=16) == chosen


def test_gram_method_names_the_var_it_rejects():
    from python_udfs.spark import gram_method_for

    with pytest.raises(ValueError, match="'gram_method' = 'numpy' must be auto, sql or arrow"):
        gram_method_for("numpy", 8, arrow_above=16)
