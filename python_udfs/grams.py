"""Grams in long form (gram_name, i, j, value) → e×e matrices → published transforms."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import pandas as pd

from python_udfs.linalg import DEFAULT_RTOL, StabilizingTransforms, stabilizing_transforms

__all__ = ["grams_from_long", "transforms_from_grams"]


def grams_from_long(long_form: pd.DataFrame) -> dict[str, np.ndarray]:
    """Return ``{gram_name: matrix}`` from rows ``(gram_name, i, j, value)``.

    A matrix's shape is (max i + 1, max j + 1); entries not listed are zero.
    """
    matrices = {}
    for name, rows in long_form.groupby("gram_name", sort=True):
        i = rows["i"].to_numpy(dtype=np.int64)
        j = rows["j"].to_numpy(dtype=np.int64)
        matrix = np.zeros((i.max() + 1, j.max() + 1))
        matrix[i, j] = rows["value"].to_numpy(dtype=np.float64)
        matrices[name] = matrix
    return matrices


def transforms_from_grams(
    grams: Mapping[str, np.ndarray],
    rtol: float = DEFAULT_RTOL,
    allow_dimension_change: bool = False,
) -> StabilizingTransforms:
    """Solve the published transforms from named Grams.

    Parameters
    ----------
    grams : mapping
        ``users`` (WᵀW) and ``items`` (TᵀT), both e×e; optionally
        ``users_cross`` / ``items_cross`` (new·base on the aligned ids, e×b
        for a base of dimension b).
    rtol : float
        Relative tolerance for rank decisions.
    allow_dimension_change : bool
        When the base's dimension b differs from e, pad the narrower side with
        zero columns to ``max(e, b)`` (no score changes) instead of raising.
        The transforms are then e×max(e, b): the published width is max(e, b).

    Raises
    ------
    ValueError
        If a Gram is missing or the dimensions disagree, naming both.
    """
    for name in ("users", "items"):
        if name not in grams:
            raise ValueError(f"the {name} embeddings are empty: no Gram matrix {name!r} to factor")
    users, items = grams["users"], grams["items"]
    if users.shape != items.shape:
        raise ValueError(
            f"user embeddings have dimension {users.shape[0]} but item embeddings have "
            f"dimension {items.shape[0]}: both sides of one retrain must have the same dimension"
        )
    dimension = users.shape[0]
    crosses = {name: grams[name] for name in ("users_cross", "items_cross") if name in grams}
    width = dimension
    for name, cross in crosses.items():
        if cross.shape[0] != dimension or (
            cross.shape[1] != dimension and not allow_dimension_change
        ):
            raise ValueError(
                f"the new {name.split('_')[0]} embeddings have dimension {dimension} but the "
                f"base version's have dimension {cross.shape[1]} (allow_dimension_change is off)"
            )
        width = max(width, cross.shape[1])
    # Zero columns appended to W, T and the base add nothing to any product:
    # the padded problem has the same scores, and its solution restricted to
    # the first e rows maps the unpadded embeddings.
    solved = stabilizing_transforms(
        _zero_padded(users, width),
        _zero_padded(items, width),
        cross_users=_zero_padded(crosses.get("users_cross"), width),
        cross_items=_zero_padded(crosses.get("items_cross"), width),
        rtol=rtol,
    )
    return replace(
        solved,
        user_transform=solved.user_transform[:dimension],
        item_transform=solved.item_transform[:dimension],
    )


def _zero_padded(matrix: np.ndarray | None, width: int) -> np.ndarray | None:
    """``matrix`` in the top-left corner of a width×width zero matrix."""
    if matrix is None or matrix.shape == (width, width):
        return matrix
    padded = np.zeros((width, width))
    padded[: matrix.shape[0], : matrix.shape[1]] = matrix
    return padded
