"""Spark entry points used by the dbt Python models.

Everything of size ``rows`` stays on the executors: transforms are applied with
``mapInArrow`` on whole Arrow batches; only e×e matrices reach the driver.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from functools import partial

import numpy as np
import pyarrow as pa

from python_udfs.arrow import list_column_to_matrix, matrix_to_list_column
from python_udfs.linalg import row_cosines

__all__ = [
    "alignment_measures",
    "apply_transform",
    "gram_matrix",
    "gram_partials",
    "stabilize",
    "transform_batches",
]


def transform_batches(
    batches: Iterable[pa.RecordBatch],
    transform: np.ndarray,
    column: str = "embedding",
) -> Iterator[pa.RecordBatch]:
    """Yield each batch with ``column`` replaced by ``column @ transform`` as float32."""
    dimension = transform.shape[0]
    for batch in batches:
        index = batch.schema.get_field_index(column)
        matrix = list_column_to_matrix(batch.column(index), dimension, column)
        arrays = list(batch.columns)
        arrays[index] = matrix_to_list_column(matrix @ transform)
        names = batch.schema.names
        yield pa.RecordBatch.from_arrays(arrays, names=names)


GRAM_PARTIALS_SCHEMA = "partition_id int, gram_name string, i int, j int, partial_value double"


def gram_partials(
    batches: Iterable[pa.RecordBatch], left: str, right: str, gram_name: str
) -> Iterator[pa.RecordBatch]:
    """Yield this partition's partial Gram Σ x_leftᵀ·x_right in long form.

    Each Arrow batch becomes two 2-D arrays (no per-row Python objects) and
    adds one matrix product; the partition's sum is emitted once, tagged with
    the partition id so partials can be added in a fixed order.
    """
    from pyspark import TaskContext

    total = None
    for batch in batches:
        if batch.num_rows == 0:
            continue
        left_column = batch.column(batch.schema.get_field_index(left))
        right_column = batch.column(batch.schema.get_field_index(right))
        x = list_column_to_matrix(left_column, name=left)
        y = x if right == left else list_column_to_matrix(right_column, name=right)
        product = x.T @ y
        total = product if total is None else total + product
    if total is None:
        return
    rows, columns = np.indices(total.shape)
    yield pa.RecordBatch.from_arrays(
        [
            pa.array(np.full(total.size, TaskContext.get().partitionId(), dtype=np.int32)),
            pa.array([gram_name] * total.size, type=pa.string()),
            pa.array(rows.ravel().astype(np.int32)),
            pa.array(columns.ravel().astype(np.int32)),
            pa.array(total.ravel()),
        ],
        names=["partition_id", "gram_name", "i", "j", "partial_value"],
    )


def gram_matrix(dataframe, left: str, right: str, gram_name: str):
    """Return ``Xᵀ·Y`` of two array columns in long form (gram_name, i, j, value).

    The same result, to rounding, as the SQL macro ``gram_matrix``, and summed
    in the same fixed order: partials per input partition (numpy on Arrow
    batches, on the executors), then added in partition order.
    """
    from pyspark.sql import functions as F

    columns = [left] if left == right else [left, right]
    partials = dataframe.select(*columns).mapInArrow(
        partial(gram_partials, left=left, right=right, gram_name=gram_name),
        GRAM_PARTIALS_SCHEMA,
    )
    ordered = F.array_sort(F.collect_list(F.struct("partition_id", "partial_value")))
    return partials.groupBy("gram_name", "i", "j").agg(
        F.aggregate(ordered, F.lit(0.0), lambda total, p: total + p["partial_value"]).alias("value")
    )


def apply_transform(dataframe, transform, column: str = "embedding"):
    """Return ``dataframe`` with ``column`` (array of e numbers) mapped to ``column · transform``.

    Parameters
    ----------
    dataframe : pyspark.sql.DataFrame
        Any columns, one of which is ``array<float>`` or ``array<double>`` of length e.
    transform : (e, e) array_like
        Row-vector transform: output row = input row @ transform.
    column : str
        The embedding column; written back as ``array<float>``.
    """
    from pyspark.sql.types import ArrayType, FloatType, StructField, StructType

    transform = np.asarray(transform, dtype=np.float64)
    schema = StructType(
        [
            StructField(field.name, ArrayType(FloatType(), False), False)
            if field.name == column
            else field
            for field in dataframe.schema.fields
        ]
    )
    return dataframe.mapInArrow(
        partial(transform_batches, transform=transform, column=column), schema
    )


def stabilize(embeddings, transforms, side: str):
    """Return ``embeddings`` (id, embedding, embedding_version) in the stabilized space.

    Parameters
    ----------
    embeddings : pyspark.sql.DataFrame
        The new retrain's embeddings of one side.
    transforms : pyspark.sql.DataFrame
        One row per side with an e×e ``transform`` (``int_transforms_solved``).
    side : {"users", "items"}
    """
    columns = embeddings.select("id", "embedding", "embedding_version")
    return apply_transform(columns, solved_transform(transforms, side))


def solved_transform(transforms, side: str) -> np.ndarray:
    """Return the e×e transform of one side from ``int_transforms_solved``."""
    row = transforms.where(transforms.side == side).select("transform").first()
    if row is None:
        raise ValueError(f"no transform was solved for side {side!r}")
    return np.array(row["transform"], dtype=np.float64)


MEASURES = [
    "aligned_ids",
    "cosine_raw_sum",
    "cosine_stabilized_sum",
    "squared_residual_sum",
    "base_squared_norm_sum",
]


def _zero_padded_pair(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both matrices widened with zero columns to the wider one's width.

    Only a dimension change makes them differ; otherwise they are returned as is.
    """
    if left.shape[1] == right.shape[1]:
        return left, right
    width = max(left.shape[1], right.shape[1])
    return tuple(np.pad(m, ((0, 0), (0, width - m.shape[1]))) for m in (left, right))


def alignment_partials(batches: Iterable[pa.RecordBatch], transform: np.ndarray):
    """Yield one row of per-partition sums comparing new (raw and stabilized) to base rows."""
    from pyspark import TaskContext

    dimension = transform.shape[0]
    totals = np.zeros(len(MEASURES))
    for batch in batches:
        if batch.num_rows == 0:
            continue
        raw = list_column_to_matrix(batch.column(0), dimension, "embedding")
        base = list_column_to_matrix(batch.column(1), name="base_embedding")
        # the published values: float32, as in the stabilized tables
        stabilized = (raw @ transform).astype(np.float32).astype(np.float64)
        # rows of different widths (a dimension change) are compared zero-padded
        stabilized, base_for_stabilized = _zero_padded_pair(stabilized, base)
        totals += [
            batch.num_rows,
            row_cosines(*_zero_padded_pair(raw, base)).sum(),
            row_cosines(stabilized, base_for_stabilized).sum(),
            np.square(stabilized - base_for_stabilized).sum(),
            np.square(base).sum(),
        ]
    yield pa.RecordBatch.from_arrays(
        [pa.array([TaskContext.get().partitionId()], pa.int32())]
        + [pa.array([value]) for value in totals],
        names=["partition_id"] + MEASURES,
    )


def alignment_measures(joined_by_side: dict, transforms, session):
    """Return per side: aligned ids and sums of cosine (raw, stabilized) and residual.

    The rows are measured on the executors (numpy on Arrow batches); only one
    row of sums per partition reaches the driver, where ``math.fsum`` adds them
    exactly, so the result does not depend on partition order.
    """
    schema = "partition_id int, " + ", ".join(f"{name} double" for name in MEASURES)
    rows = []
    for side, joined in joined_by_side.items():
        transform = solved_transform(transforms, side)
        partials = (
            joined.select("embedding", "base_embedding")
            .mapInArrow(partial(alignment_partials, transform=transform), schema)
            .collect()
        )
        sums = [math.fsum(p[name] for p in partials) for name in MEASURES]
        rows.append((side, int(sums[0]), *sums[1:]))
    columns = "side string, aligned_ids long, " + ", ".join(f"{n} double" for n in MEASURES[1:])
    return session.createDataFrame(rows, columns)
