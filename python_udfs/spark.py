"""Spark entry points used by the dbt Python models.

Everything of size ``rows`` stays on the executors: transforms are applied with
``mapInArrow`` on whole Arrow batches; only e×e matrices reach the driver.
"""

from __future__ import annotations

from functools import partial
from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa

from python_udfs.arrow import list_column_to_matrix, matrix_to_list_column

__all__ = ["apply_transform", "stabilize", "transform_batches"]


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
    return dataframe.mapInArrow(partial(transform_batches, transform=transform, column=column), schema)


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
    row = transforms.where(transforms.side == side).select("transform").first()
    if row is None:
        raise ValueError(f"no transform was solved for side {side!r}")
    columns = embeddings.select("id", "embedding", "embedding_version")
    return apply_transform(columns, np.array(row["transform"], dtype=np.float64))
