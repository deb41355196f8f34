"""The e×e linear algebra of embedding stabilization (pure numpy, float64).

Notation follows ``docs/method.md``: users ``W`` (m×e) and items ``T`` (n×e) are row
vectors, scores are ``S = W Tᵀ``. Every function here takes only e×e matrices
(Gram and cross-Gram matrices computed by Spark) and returns e×e matrices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "DEFAULT_RTOL",
    "StabilizingTransforms",
    "canonical_transforms",
    "gram_factor",
    "orthogonality_error",
    "procrustes_rotation",
    "row_cosines",
    "stabilizing_transforms",
]

#: Relative tolerance on *singular values* below which a direction counts as
#: zero: σ ≤ rtol·σ_max for the embeddings (eigenvalues of a Gram are σ², so
#: λ ≤ rtol²·λ_max) and for the score matrix. Any invertible factor keeps the
#: scores exactly, so only true null directions should go: 1e-7 sits at float32
#: resolution, below the signal of a condition-1e6 input and above the ~1e-8
#: noise a Gram summed in double leaves in an exactly rank-deficient one.
DEFAULT_RTOL = 1e-7


def _as_square(name: str, matrix, size: int | None = None) -> np.ndarray:
    array = np.asarray(matrix, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] != array.shape[1]:
        raise ValueError(f"{name} must be a square 2-D matrix, got shape {array.shape}")
    if size is not None and array.shape[0] != size:
        raise ValueError(
            f"{name} must be {size}×{size} to match the other inputs, got {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def gram_factor(gram, rtol: float = DEFAULT_RTOL) -> np.ndarray:
    """Return a square-root factor ``R`` (k×e) with ``Rᵀ R = G`` on G's numerical range.

    Parameters
    ----------
    gram : (e, e) array_like
        Symmetric positive semi-definite Gram matrix ``XᵀX``.
    rtol : float
        Directions with ``√λ <= rtol·√λ_max`` are treated as zero and dropped.

    Returns
    -------
    R : (k, e) ndarray
        ``diag(√λ) Vᵀ`` over the k kept eigenpairs of ``G = V diag(λ) Vᵀ``.
        Unlike a Cholesky factor it exists when X is rank deficient.
    """
    gram = _as_square("gram", gram)
    gram = (gram + gram.T) / 2  # symmetrize away summation noise
    eigenvalues, eigenvectors = np.linalg.eigh(gram)
    largest = eigenvalues[-1] if eigenvalues.size else 0.0
    if largest <= 0:
        return np.zeros((0, gram.shape[0]))
    keep = eigenvalues > rtol**2 * largest
    return np.sqrt(eigenvalues[keep])[:, None] * eigenvectors[:, keep].T


def canonical_transforms(gram_users, gram_items, rtol: float = DEFAULT_RTOL):
    """Return ``(M_W, M_T, σ)``: the balanced, lossless low-rank SVD transforms.

    With ``R_W``, ``R_T`` square-root factors of ``WᵀW`` and ``TᵀT`` and the core
    SVD ``K = R_W R_Tᵀ = U Σ Vᵀ``, ``M_W = R_Tᵀ V Σ^-½`` and ``M_T = R_Wᵀ U Σ^-½``.

    Parameters
    ----------
    gram_users, gram_items : (e, e) array_like
        ``WᵀW`` and ``TᵀT``.
    rtol : float
        Relative tolerance for dropping eigenvalues and singular values.

    Returns
    -------
    M_W, M_T : (e, e) ndarray
        ``(W M_W)(T M_T)ᵀ = W Tᵀ`` and ``(W M_W)ᵀ(W M_W) = (T M_T)ᵀ(T M_T) = diag(σ)``.
        When only k < e singular values are kept, the last e-k columns are zero.
    singular_values : (k,) ndarray
        Non-zero singular values of the score matrix ``S = W Tᵀ``, descending.
    """
    gram_users = _as_square("gram_users", gram_users)
    gram_items = _as_square("gram_items", gram_items, gram_users.shape[0])
    dimension = gram_users.shape[0]
    factor_users = gram_factor(gram_users, rtol)
    factor_items = gram_factor(gram_items, rtol)
    # K has the same non-zero singular values as S = W Tᵀ = Q_W K Q_Tᵀ.
    core = factor_users @ factor_items.T
    if core.size == 0:
        raise np.linalg.LinAlgError("the user or item embeddings are all zero: no scores to keep")
    left, singular_values, right_t = np.linalg.svd(core, full_matrices=False)
    keep = singular_values > rtol * singular_values[0]
    singular_values = singular_values[keep]
    inv_sqrt = 1.0 / np.sqrt(singular_values)
    rank = singular_values.size
    m_users = np.zeros((dimension, dimension))
    m_items = np.zeros((dimension, dimension))
    m_users[:, :rank] = factor_items.T @ right_t[keep].T * inv_sqrt
    m_items[:, :rank] = factor_users.T @ left[:, keep] * inv_sqrt
    return m_users, m_items, singular_values


def procrustes_rotation(cross) -> np.ndarray:
    """Return the orthogonal ``O`` maximizing ``tr(Oᵀ C)``, i.e. minimizing ‖A O − B‖_F.

    Parameters
    ----------
    cross : (e, e) array_like
        ``C = AᵀB`` for the rows to align (A the new, B the base embeddings).

    Returns
    -------
    O : (e, e) ndarray
        ``P Qᵀ`` from the SVD ``C = P Λ Qᵀ``; the same result as
        ``scipy.linalg.orthogonal_procrustes(A, B)[0]``.
    """
    cross = _as_square("cross", cross)
    left, _, right_t = np.linalg.svd(cross)
    return left @ right_t


@dataclass(frozen=True)
class StabilizingTransforms:
    """Published transforms of one version: ``W·user_transform`` and ``T·item_transform``.

    The transforms are e×d: d = e, or a wider base's dimension when padded.
    """

    user_transform: np.ndarray
    item_transform: np.ndarray
    rotation: np.ndarray
    singular_values: np.ndarray

    @property
    def dimension(self) -> int:
        """The published width (the input's e, unless padded to a wider base)."""
        return self.rotation.shape[0]

    @property
    def rank(self) -> int:
        return int(self.singular_values.size)

    @property
    def condition_number(self) -> float:
        """``σ_max / σ_min`` of the score matrix over its kept singular values."""
        return float(self.singular_values[0] / self.singular_values[-1])


def stabilizing_transforms(
    gram_users,
    gram_items,
    cross_users=None,
    cross_items=None,
    rtol: float = DEFAULT_RTOL,
) -> StabilizingTransforms:
    """Return the transforms that balance a retrain and rotate it onto its base.

    Parameters
    ----------
    gram_users, gram_items : (e, e) array_like
        ``WᵀW`` and ``TᵀT`` of the new retrain (all rows).
    cross_users, cross_items : (e, e) array_like or None
        Cross Grams ``W_cᵀ B_W`` and ``T_cᵀ B_T`` of the new raw embeddings
        against the published base embeddings, on the ids present in both.
        Pass neither for a first version (``O = I``).
    rtol : float
        Relative tolerance for dropping eigenvalues and singular values.

    Returns
    -------
    StabilizingTransforms
        ``user_transform = M_W O`` and ``item_transform = M_T O``. Because
        ``O Oᵀ = I`` every user·item dot product is preserved exactly.

    Notes
    -----
    The Procrustes target is ``C = Σ_side M_sideᵀ (X_sideᵀ B_side)``: the cross
    Gram of the canonical new embeddings with the base, summed over the sides
    aligned on, so only e×e matrices are needed.
    """
    m_users, m_items, singular_values = canonical_transforms(gram_users, gram_items, rtol)
    dimension = m_users.shape[0]
    target = np.zeros((dimension, dimension))
    for name, canonical, cross in (
        ("cross_users", m_users, cross_users),
        ("cross_items", m_items, cross_items),
    ):
        if cross is not None:
            target += canonical.T @ _as_square(name, cross, dimension)
    rotation = procrustes_rotation(target) if target.any() else np.eye(dimension)
    return StabilizingTransforms(
        user_transform=m_users @ rotation,
        item_transform=m_items @ rotation,
        rotation=rotation,
        singular_values=singular_values,
    )


def orthogonality_error(matrix) -> float:
    """Return ``max |Oᵀ O − I|``: zero for an orthogonal matrix."""
    matrix = np.asarray(matrix, dtype=np.float64)
    return float(np.max(np.abs(matrix.T @ matrix - np.eye(matrix.shape[1]))))


def row_cosines(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of ``left`` with the same row of ``right``.

    0 where either row is the zero vector.
    """
    norms = np.linalg.norm(left, axis=1) * np.linalg.norm(right, axis=1)
    dots = np.einsum("ij,ij->i", left, right)
    return np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)
