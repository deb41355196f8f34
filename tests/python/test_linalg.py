"""Properties of the e×e math against numpy/scipy on small dense data."""

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from python_udfs import (
    DEFAULT_RTOL,
    canonical_transforms,
    gram_factor,
    orthogonality_error,
    procrustes_rotation,
    stabilizing_transforms,
)


@st.composite
def retrains(draw, min_rank_gap=0):
    """Dense (W, T, T_base) with e ≤ 8; optionally W of rank below e."""
    dimension = draw(st.integers(1, 8))
    users = draw(st.integers(dimension, 40))
    items = draw(st.integers(dimension, 40))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    scale = np.exp(rng.uniform(-2, 2, dimension))  # uneven spectrum
    w = rng.standard_normal((users, dimension)) * scale
    t = rng.standard_normal((items, dimension)) / scale
    rank_gap = draw(st.integers(0, min(min_rank_gap, dimension - 1)))
    if rank_gap:
        w = w[:, : dimension - rank_gap] @ rng.standard_normal((dimension - rank_gap, dimension))
    base = rng.standard_normal((items, dimension))
    return w, t, base


def scores_error(w, t, w_new, t_new):
    """max |w'·t' − w·t| / (‖w‖·‖t‖) over all pairs."""
    norms = np.outer(np.linalg.norm(w, axis=1), np.linalg.norm(t, axis=1))
    return np.max(np.abs(w_new @ t_new.T - w @ t.T) / np.where(norms > 0, norms, 1))


@settings(max_examples=200, deadline=None)
@given(retrains(min_rank_gap=3))
def test_gram_factor_reproduces_gram(data):
    w, _, _ = data
    gram = w.T @ w
    factor = gram_factor(gram)
    assert factor.shape[1] == w.shape[1]
    assert_allclose(factor.T @ factor, gram, atol=1e-9 * np.abs(gram).max())


@settings(max_examples=200, deadline=None)
@given(retrains(min_rank_gap=3))
def test_stabilizing_transforms_preserve_dot_products(data):
    w, t, base = data
    solved = stabilizing_transforms(w.T @ w, t.T @ t, cross_items=t.T @ base)
    assert solved.user_transform.shape == solved.item_transform.shape == (w.shape[1],) * 2
    assert scores_error(w, t, w @ solved.user_transform, t @ solved.item_transform) < 1e-9


@settings(max_examples=200, deadline=None)
@given(retrains())
def test_canonical_transforms_balance_both_sides(data):
    w, t, _ = data
    m_users, m_items, singular_values = canonical_transforms(w.T @ w, t.T @ t)
    rank = singular_values.size
    balanced = np.zeros((w.shape[1],) * 2)
    balanced[:rank, :rank] = np.diag(singular_values)
    scale = singular_values[0]
    assert_allclose((w @ m_users).T @ (w @ m_users), balanced, atol=1e-9 * scale)
    assert_allclose((t @ m_items).T @ (t @ m_items), balanced, atol=1e-9 * scale)


@settings(max_examples=200, deadline=None)
@given(retrains(min_rank_gap=3))
def test_singular_values_match_dense_svd_of_scores(data):
    w, t, _ = data
    _, _, singular_values = canonical_transforms(w.T @ w, t.T @ t)
    dense = np.linalg.svd(w @ t.T, compute_uv=False)
    # Through the Grams a singular value σ carries an absolute error of order
    # ε·σ_max²/σ (eigenvalues are σ²): small ones are checked against σ_max.
    assert_allclose(singular_values, dense[: singular_values.size], rtol=1e-8, atol=1e-9 * dense[0])
    # every dropped singular value really is zero
    assert np.all(dense[singular_values.size :] <= 2 * DEFAULT_RTOL * dense[0])


@settings(max_examples=200, deadline=None)
@given(retrains())
def test_rotation_is_orthogonal(data):
    w, t, base = data
    solved = stabilizing_transforms(w.T @ w, t.T @ t, cross_items=t.T @ base)
    assert orthogonality_error(solved.rotation) < 1e-12


@settings(max_examples=200, deadline=None)
@given(retrains())
def test_procrustes_agrees_with_scipy(data):
    w, t, base = data
    _, m_items, _ = canonical_transforms(w.T @ w, t.T @ t)
    canonical = t @ m_items
    expected, _ = scipy.linalg.orthogonal_procrustes(canonical, base)
    rotation = procrustes_rotation(canonical.T @ base)
    # compare the fitted values (the rotation is unique only on A's range)
    assert_allclose(canonical @ rotation, canonical @ expected, atol=1e-9 * np.abs(base).max())


def test_procrustes_recovers_a_known_rotation():
    rng = np.random.default_rng(7)
    a = rng.standard_normal((50, 6))
    rotation, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    assert_allclose(procrustes_rotation(a.T @ (a @ rotation)), rotation, atol=1e-12)


def test_stabilization_undoes_an_invertible_map():
    """A retrain that only re-coordinatizes the model is mapped back onto the base."""
    rng = np.random.default_rng(3)
    w, t = rng.standard_normal((200, 5)), rng.standard_normal((60, 5))
    first = stabilizing_transforms(w.T @ w, t.T @ t)
    w_base, t_base = w @ first.user_transform, t @ first.item_transform
    mixing = rng.standard_normal((5, 5)) + 3 * np.eye(5)
    w2, t2 = w @ mixing, t @ np.linalg.inv(mixing).T
    second = stabilizing_transforms(w2.T @ w2, t2.T @ t2, cross_items=t2.T @ t_base)
    assert_allclose(t2 @ second.item_transform, t_base, atol=1e-9)
    assert_allclose(w2 @ second.user_transform, w_base, atol=1e-9)


def test_first_version_has_identity_rotation():
    rng = np.random.default_rng(0)
    w, t = rng.standard_normal((30, 4)), rng.standard_normal((20, 4))
    solved = stabilizing_transforms(w.T @ w, t.T @ t)
    assert_allclose(solved.rotation, np.eye(4))


def test_aligning_on_both_sides_uses_both_cross_grams():
    rng = np.random.default_rng(1)
    w, t = rng.standard_normal((40, 4)), rng.standard_normal((30, 4))
    w_base, t_base = rng.standard_normal((40, 4)), rng.standard_normal((30, 4))
    m_users, m_items, _ = canonical_transforms(w.T @ w, t.T @ t)
    stacked_new = np.vstack([w @ m_users, t @ m_items])
    expected, _ = scipy.linalg.orthogonal_procrustes(stacked_new, np.vstack([w_base, t_base]))
    solved = stabilizing_transforms(
        w.T @ w, t.T @ t, cross_users=w.T @ w_base, cross_items=t.T @ t_base
    )
    assert_allclose(solved.rotation, expected, atol=1e-10)


def test_rank_deficient_users_keep_width_and_scores():
    rng = np.random.default_rng(5)
    w = rng.standard_normal((100, 3)) @ rng.standard_normal((3, 6))  # rank 3 < e = 6
    w[:, 2] = 1.0  # and a constant column
    t = rng.standard_normal((50, 6))
    solved = stabilizing_transforms(
        w.T @ w, t.T @ t, cross_items=t.T @ rng.standard_normal((50, 6))
    )
    assert solved.rank == np.linalg.matrix_rank(w @ t.T)
    assert solved.user_transform.shape == (6, 6)
    assert scores_error(w, t, w @ solved.user_transform, t @ solved.item_transform) < 1e-9


def test_ill_conditioned_input_keeps_float32_scores():
    rng = np.random.default_rng(11)
    w = rng.standard_normal((500, 8)) * np.logspace(0, -6, 8)  # condition number ~1e6
    t = rng.standard_normal((300, 8))
    solved = stabilizing_transforms(
        w.T @ w, t.T @ t, cross_items=t.T @ rng.standard_normal((300, 8))
    )
    assert solved.condition_number > 1e5
    w32 = (w @ solved.user_transform).astype(np.float32).astype(np.float64)
    t32 = (t @ solved.item_transform).astype(np.float32).astype(np.float64)
    assert scores_error(w, t, w32, t32) < 1e-5


@pytest.mark.parametrize(
    "gram, message",
    [
        (np.ones((2, 3)), "square"),
        (np.ones(3), "square"),
        (np.array([[1.0, np.nan], [np.nan, 1.0]]), "NaN"),
    ],
)
def test_bad_gram_is_rejected(gram, message):
    with pytest.raises(ValueError, match=message):
        gram_factor(gram)


def test_mismatched_dimensions_are_rejected():
    with pytest.raises(ValueError, match="3×3"):
        canonical_transforms(np.eye(3), np.eye(4))


def test_all_zero_embeddings_raise_linalg_error():
    with pytest.raises(np.linalg.LinAlgError, match="all zero"):
        canonical_transforms(np.zeros((3, 3)), np.eye(3))
