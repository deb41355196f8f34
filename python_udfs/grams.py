"""Grams in long form (gram_name, i, j, value) → e×e matrices → published transforms."""

from __future__ import annotations

from collections.abc import Mapping

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
    grams: Mapping[str, np.ndarray], rtol: float = DEFAULT_RTOL
) -> StabilizingTransforms:
    """Solve the published transforms from named Grams.

    Parameters
    ----------
    grams : mapping
        ``users`` (WᵀW) and ``items`` (TᵀT), both e×e; optionally
        ``users_cross`` / ``items_cross`` (new·base on the aligned ids).
    rtol : float
        Relative tolerance for rank decisions.

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
    for name in ("users_cross", "items_cross"):
        cross = grams.get(name)
        if cross is not None and cross.shape != (dimension, dimension):
            raise ValueError(
                f"the new {name.split('_')[0]} embeddings have dimension {dimension} but the "
                f"base version's have dimension {cross.shape[1]}"
            )
    return stabilizing_transforms(
        users,
        items,
        cross_users=grams.get("users_cross"),
        cross_items=grams.get("items_cross"),
        rtol=rtol,
    )
