"""Vectorized conversions between Arrow list columns and 2-D numpy arrays.

An embedding column arrives as an Arrow ``list<float>`` or ``list<double>``;
its flattened child array *is* the row-major (rows×e) matrix, so conversions
are a reshape, never a Python loop over rows.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["list_column_to_matrix", "matrix_to_list_column"]


def list_column_to_matrix(
    column: pa.Array, dimension: int | None = None, name: str = "embedding"
) -> np.ndarray:
    """Return the (rows, dimension) float64 matrix held by an Arrow list column.

    ``dimension`` defaults to the length of the first row; every row must have it.

    Raises
    ------
    ValueError
        If a row is null or does not hold exactly ``dimension`` values.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if column.null_count:
        raise ValueError(f"column {name!r} has {column.null_count} null embeddings")
    rows = len(column)
    offsets = np.asarray(column.offsets)
    if dimension is None:
        dimension = int(offsets[1] - offsets[0]) if rows else 0
    values = column.flatten()  # respects slicing, unlike .values
    lengths = np.diff(offsets)
    if values.null_count or len(values) != rows * dimension or np.any(lengths != dimension):
        raise ValueError(
            f"column {name!r} must hold exactly {dimension} non-null values per row "
            f"(lengths seen: {sorted(set(lengths.tolist()))[:5]})"
        )
    return (
        values.to_numpy(zero_copy_only=False)
        .astype(np.float64, copy=False)
        .reshape(rows, dimension)
    )


def matrix_to_list_column(matrix: np.ndarray) -> pa.ListArray:
    """Return a ``list<float>`` Arrow column with one row per matrix row (float32 storage)."""
    rows, dimension = matrix.shape
    offsets = pa.array(np.arange(0, (rows + 1) * dimension, dimension, dtype=np.int32))
    values = pa.array(np.ascontiguousarray(matrix, dtype=np.float32).ravel())
    return pa.ListArray.from_arrays(offsets, values)
