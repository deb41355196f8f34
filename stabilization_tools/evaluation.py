"""Measures of stability, and the method's ablations, on in-memory embeddings.

Pure numpy on small data (a model that fits in memory): the evaluation on real
retrains uses these to compare published versions and to run the ablations
(each step of the method alone) next to the dbt project's results.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from python_udfs.linalg import DEFAULT_RTOL, canonical_transforms, procrustes_rotation, row_cosines

#: The ablations: which steps of the method are applied.
STEPS = ("raw", "svd", "procrustes", "svd+procrustes")


@dataclass(frozen=True)
class Embeddings:
    """One side of one version: ``ids[i]`` has embedding ``matrix[i]``."""

    ids: np.ndarray
    matrix: np.ndarray

    def common(self, other: Embeddings) -> tuple[np.ndarray, np.ndarray]:
        """Rows of self and of other for the ids present in both, in the same order."""
        _, mine, theirs = np.intersect1d(
            self.ids, other.ids, assume_unique=True, return_indices=True
        )
        return self.matrix[mine], other.matrix[theirs]


def same_id_cosines(new: Embeddings, old: Embeddings) -> np.ndarray:
    """Cosine similarity of each id's embedding in two versions (ids in both)."""
    return row_cosines(*new.common(old))


def max_relative_score_error(users, items, new_users, new_items) -> float:
    """Largest ``|w'·t' − w·t| / (‖w‖·‖t‖)`` over all user–item pairs."""
    norms = np.outer(np.linalg.norm(users, axis=1), np.linalg.norm(items, axis=1))
    return float(np.max(np.abs(new_users @ new_items.T - users @ items.T) / norms))


def top_k_items(users: np.ndarray, items: np.ndarray, k: int = 10) -> np.ndarray:
    """Each user's k best item rows by score, best first (ties: lower row first)."""
    scores = users @ items.T
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def ablated(
    users: Embeddings,
    items: Embeddings,
    base_users: Embeddings | None,
    base_items: Embeddings | None,
    steps: str,
    align_on: str = "items",
    rtol: float = DEFAULT_RTOL,
) -> tuple[Embeddings, Embeddings]:
    """Apply some steps of the method to one retrain, aligned to a base version.

    Parameters
    ----------
    users, items : Embeddings
        The raw retrain.
    base_users, base_items : Embeddings or None
        The version to align to (the same ablation's previous version); None
        for a first version.
    steps : {"raw", "svd", "procrustes", "svd+procrustes"}
        ``svd``: the balanced low-rank SVD transforms M_W, M_T only (O = I);
        ``procrustes``: the orthogonal Procrustes rotation of the raw
        embeddings onto the base (W·O, T·O); both: the full method.
    align_on : {"items", "users", "both"}
        The side(s) the rotation is fitted on.

    Every choice keeps every user·item score: M_W·M_Tᵀ = I on the data's span,
    and O·Oᵀ = I.
    """
    if steps not in STEPS:
        raise ValueError(f"steps must be one of {STEPS}, got {steps!r}")
    w, t = users.matrix.astype(np.float64), items.matrix.astype(np.float64)
    if "svd" in steps:
        m_users, m_items, _ = canonical_transforms(w.T @ w, t.T @ t, rtol)
        w, t = w @ m_users, t @ m_items
    if "procrustes" in steps and base_items is not None:
        # C = Σ over aligned sides of (new rows)ᵀ·(base rows), on the shared ids
        pairs = {
            "users": (Embeddings(users.ids, w), base_users),
            "items": (Embeddings(items.ids, t), base_items),
        }
        sides = ("users", "items") if align_on == "both" else (align_on,)
        target = sum(
            np.transpose(new_rows) @ base_rows
            for new_rows, base_rows in (pairs[side][0].common(pairs[side][1]) for side in sides)
        )
        rotation = procrustes_rotation(target)
        w, t = w @ rotation, t @ rotation
    return Embeddings(users.ids, w), Embeddings(items.ids, t)
