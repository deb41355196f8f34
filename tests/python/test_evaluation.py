"""The evaluation's measures and ablations (stabilization_tools.evaluation), against numpy and scipy."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.linalg import orthogonal_procrustes

from python_udfs import stabilizing_transforms
from stabilization_tools.evaluation import (
    STEPS,
    Embeddings,
    ablated,
    max_relative_score_error,
    same_id_cosines,
    top_k_items,
)


@pytest.fixture
def retrain_and_base():
    """A retrain (shuffled ids, some churned) and a base version in other coordinates."""
    rng = np.random.default_rng(7)
    users, items = rng.standard_normal((40, 5)), rng.standard_normal((30, 5))
    mixing = rng.standard_normal((5, 5)) + 3 * np.eye(5)
    base_users = Embeddings(np.arange(40), users)
    base_items = Embeddings(np.arange(30), items)
    new_user_ids, new_item_ids = rng.permutation(45), rng.permutation(np.arange(3, 33))
    new_users = np.where(new_user_ids[:, None] < 40, users[np.minimum(new_user_ids, 39)], 1.0)
    new_items = items[new_item_ids % 30]
    noisy_users = (new_users + 0.01 * rng.standard_normal(new_users.shape)) @ mixing
    noisy_items = (new_items + 0.01 * rng.standard_normal(new_items.shape)) @ np.linalg.inv(
        mixing
    ).T
    return (
        Embeddings(new_user_ids, noisy_users),
        Embeddings(new_item_ids, noisy_items),
        base_users,
        base_items,
    )


def test_common_rows_pair_ids(retrain_and_base):
    users, _, base_users, _ = retrain_and_base
    mine, theirs = users.common(base_users)
    shared = np.intersect1d(users.ids, base_users.ids)
    order = np.argsort(users.ids)
    assert_array_equal(mine, users.matrix[order][np.isin(users.ids[order], shared)])
    assert_array_equal(theirs, base_users.matrix[shared])


def test_same_id_cosines_match_a_direct_computation():
    old = Embeddings(np.array([3, 1, 2]), np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    new = Embeddings(np.array([2, 9, 3]), np.array([[1.0, 0.0], [5.0, 5.0], [-2.0, 0.0]]))
    # id 2: (1,0)·(1,1) → 1/√2; id 3: (-2,0)·(1,0) → -1
    assert_allclose(same_id_cosines(new, old), [1 / np.sqrt(2), -1.0])


def test_top_k_items_orders_by_score():
    users = np.array([[1.0, 0.0], [0.0, 1.0]])
    items = np.array([[0.5, 0.1], [2.0, 0.0], [0.0, 3.0], [1.0, 1.0]])
    assert_array_equal(top_k_items(users, items, k=2), [[1, 3], [2, 3]])


@pytest.mark.parametrize("steps", STEPS)
@pytest.mark.parametrize("align_on", ["items", "users", "both"])
def test_every_ablation_keeps_every_score(retrain_and_base, steps, align_on):
    users, items, base_users, base_items = retrain_and_base
    new_users, new_items = ablated(users, items, base_users, base_items, steps, align_on)
    assert_array_equal(new_users.ids, users.ids)
    assert (
        max_relative_score_error(users.matrix, items.matrix, new_users.matrix, new_items.matrix)
        < 1e-12
    )


def test_full_method_equals_the_published_transforms(retrain_and_base):
    users, items, base_users, base_items = retrain_and_base
    new_users, new_items = ablated(users, items, base_users, base_items, "svd+procrustes", "both")
    a_users, b_users = users.common(base_users)
    a_items, b_items = items.common(base_items)
    expected = stabilizing_transforms(
        users.matrix.T @ users.matrix,
        items.matrix.T @ items.matrix,
        a_users.T @ b_users,
        a_items.T @ b_items,
    )
    assert_allclose(new_users.matrix, users.matrix @ expected.user_transform, atol=1e-10)
    assert_allclose(new_items.matrix, items.matrix @ expected.item_transform, atol=1e-10)


def test_procrustes_only_is_scipys_rotation_of_the_raw_embeddings(retrain_and_base):
    users, items, base_users, base_items = retrain_and_base
    new_users, new_items = ablated(users, items, base_users, base_items, "procrustes", "items")
    rotation, _ = orthogonal_procrustes(*items.common(base_items))
    assert_allclose(new_items.matrix, items.matrix @ rotation, atol=1e-10)
    assert_allclose(new_users.matrix, users.matrix @ rotation, atol=1e-10)


def test_svd_only_and_a_first_version_do_not_rotate(retrain_and_base):
    users, items, base_users, base_items = retrain_and_base
    aligned = ablated(users, items, base_users, base_items, "svd")
    first = ablated(users, items, None, None, "svd+procrustes")
    for left, right in zip(aligned, first):
        assert_allclose(left.matrix, right.matrix)
    assert ablated(users, items, base_users, base_items, "raw")[0].matrix is not None
    assert_array_equal(ablated(users, items, base_users, base_items, "raw")[1].matrix, items.matrix)


def test_only_the_full_method_undoes_a_non_orthogonal_change_of_coordinates(retrain_and_base):
    users, items, base_users, base_items = retrain_and_base
    published_users, published_items = ablated(base_users, base_items, None, None, "svd+procrustes")

    def item_cosine(steps):
        _, aligned = ablated(users, items, published_users, published_items, steps, "items")
        return np.mean(same_id_cosines(aligned, published_items))

    # the same model in other coordinates (an invertible, non-orthogonal map)
    assert item_cosine("raw") < 0.9
    assert item_cosine("procrustes") < 0.97  # a rotation cannot undo a shear
    assert item_cosine("svd+procrustes") > 0.99


def test_unknown_steps_are_refused(retrain_and_base):
    with pytest.raises(ValueError, match="steps must be one of"):
        ablated(*retrain_and_base, steps="pca")
