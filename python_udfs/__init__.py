"""Embedding stabilization: pure e×e math (``linalg``) and vectorized Spark UDFs."""

from python_udfs.linalg import (
    DEFAULT_RTOL,
    StabilizingTransforms,
    canonical_transforms,
    gram_factor,
    orthogonality_error,
    procrustes_rotation,
    stabilizing_transforms,
)

__all__ = [
    "DEFAULT_RTOL",
    "StabilizingTransforms",
    "canonical_transforms",
    "gram_factor",
    "orthogonality_error",
    "procrustes_rotation",
    "stabilizing_transforms",
]
