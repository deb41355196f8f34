"""Spark entry points used by the dbt Python models.

Everything of size ``rows`` stays on the executors: transforms are applied with
``mapInArrow`` on whole Arrow batches; only e×e matrices reach the driver.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pyarrow as pa

from python_udfs.arrow import list_column_to_matrix, matrix_to_list_column
from python_udfs.linalg import row_cosines

__all__ = [
    "ArrowMapped",
    "alignment_measures",
    "apply_transform",
    "embedding_width",
    "gram_matrix",
    "gram_method_for",
    "gram_partials",
    "parquet_written",
    "stabilize",
    "transform_batches",
    "transformed",
    "write_parquet_file",
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


def gram_method_for(method: str, dimension: int | None, arrow_above: int) -> str:
    """The Gram path a build takes: ``method`` (sql or arrow), or for ``auto``
    arrow when the embeddings are wider than ``arrow_above`` and sql otherwise
    (also when there is no row to tell the width). As the macro ``gram_method``."""
    if method not in ("auto", "sql", "arrow"):
        raise ValueError(f"var 'gram_method' = '{method}' must be auto, sql or arrow")
    if method != "auto":
        return method
    return "arrow" if dimension is not None and dimension > arrow_above else "sql"


def embedding_width(dataframe, column: str = "embedding") -> int | None:
    """The length of ``column``'s arrays, read from one row (None without rows)."""
    from pyspark.sql import functions as F

    rows = dataframe.where(F.col(column).isNotNull()).select(F.size(column)).limit(1).collect()
    return rows[0][0] if rows else None


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
    return transformed(dataframe, transform, column).to_spark()


def transformed(dataframe, transform, column: str = "embedding") -> ArrowMapped:
    """:func:`apply_transform`'s rows, not yet run (see :class:`ArrowMapped`)."""
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
    return ArrowMapped(
        dataframe, partial(transform_batches, transform=transform, column=column), schema
    )


# Row groups of about Spark's default size (parquet.block.size, 128 MiB).
ROW_GROUP_BYTES = 128 * 1024 * 1024


def parquet_written(
    batches: Iterable[pa.RecordBatch],
    function: Callable[[Iterable[pa.RecordBatch]], Iterator[pa.RecordBatch]],
    folder: str,
    columns_dropped: Sequence[str] = (),
) -> Iterator[pa.RecordBatch]:
    """Write ``function(batches)`` as this partition's one Parquet file in ``folder``.

    Yields one row (file, rows). Runs on an executor, in the Python worker that
    computed the rows: they go straight to pyarrow's writer, not back through
    the JVM to Spark's. The file is named after the partition, so a retried
    or speculative attempt replaces it with the same bytes and never adds a
    second copy (:func:`write_parquet_file`).
    """
    from pyspark import TaskContext

    name = f"part-{TaskContext.get().partitionId():05d}.snappy.parquet"
    rows = write_parquet_file(function(batches), os.path.join(folder, name), columns_dropped)
    if rows:
        yield pa.RecordBatch.from_arrays(
            [pa.array([name]), pa.array([rows], pa.int64())], names=["file", "rows"]
        )


def write_parquet_file(
    batches: Iterable[pa.RecordBatch], path: str, columns_dropped: Sequence[str] = ()
) -> int:
    """Write ``batches`` (without ``columns_dropped``) to one Parquet file; return its rows.

    Written under a hidden name next to ``path`` (Spark skips names starting
    with ``.``) and renamed to ``path`` once complete: no reader sees half a
    file, and a failure leaves ``path`` as it was. Nothing is written, and no
    folder made, for no rows. Row groups of about ``ROW_GROUP_BYTES``.
    """
    import pyarrow.parquet as pq

    folder, name = os.path.split(path)
    hidden = os.path.join(folder, f".{name}.{uuid.uuid4().hex}.tmp")
    writer, buffered, rows = None, [], 0
    try:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            batch = batch.drop_columns(list(columns_dropped))
            if writer is None:
                os.makedirs(folder, exist_ok=True)
                # float embeddings never fit a dictionary: trying costs 4× the write
                writer = pq.ParquetWriter(hidden, batch.schema, use_dictionary=False)
            buffered.append(batch)
            rows += batch.num_rows
            if sum(b.nbytes for b in buffered) >= ROW_GROUP_BYTES:
                _write_row_group(writer, buffered)
                buffered = []
        if writer is not None:
            _write_row_group(writer, buffered)
            writer.close()
            os.replace(hidden, path)
    finally:
        if os.path.exists(hidden):
            os.remove(hidden)
    return rows


def _write_row_group(writer, batches: list[pa.RecordBatch]) -> None:
    if batches:
        table = pa.Table.from_batches(batches)
        writer.write_table(table, row_group_size=table.num_rows)


@dataclass(frozen=True)
class ArrowMapped:
    """Rows computed on the executors from a DataFrame's Arrow batches, not yet run:
    ``source.mapInArrow(function, schema)``.

    A dbt Python model configured with ``publish_to`` may return this instead
    of that DataFrame: the adapter then has the Python workers that compute
    the rows write them (:meth:`write_parquet`), and the rows never cross
    back into the JVM or Spark's Parquet writer (half the cost of the pass
    at 4M users: README). Anywhere else it is :meth:`to_spark`.
    """

    source: Any
    function: Callable[[Iterable[pa.RecordBatch]], Iterator[pa.RecordBatch]]
    schema: Any

    def to_spark(self):
        """The rows as a Spark DataFrame."""
        return self.source.mapInArrow(self.function, self.schema)

    def write_parquet(self, folder: str, columns_dropped: Sequence[str] = ()) -> int:
        """Write the rows as Parquet files into ``folder``, a path every executor
        can write to (a local or shared file system); return how many rows."""
        written = self.source.mapInArrow(
            partial(
                parquet_written,
                function=self.function,
                folder=folder,
                columns_dropped=tuple(columns_dropped),
            ),
            "file string, rows long",
        ).collect()
        return sum(row["rows"] for row in written)


def stabilize(embeddings, transforms, side: str) -> ArrowMapped:
    """Return ``embeddings`` (id, embedding, embedding_version) in the stabilized space,
    not yet run: written by the workers that compute it (see :class:`ArrowMapped`).

    Parameters
    ----------
    embeddings : pyspark.sql.DataFrame
        The new retrain's embeddings of one side.
    transforms : pyspark.sql.DataFrame
        One row per side with an e×e ``transform`` (``int_transforms_solved``).
    side : {"users", "items"}
    """
    columns = embeddings.select("id", "embedding", "embedding_version")
    return transformed(columns, solved_transforms(transforms, [side])[side])


def solved_transforms(transforms, sides: Iterable[str]) -> dict[str, np.ndarray]:
    """Return {side: e×e transform} of ``sides`` from ``int_transforms_solved``, read at once."""
    rows = transforms.where(transforms.side.isin(list(sides))).select("side", "transform").collect()
    solved = {row["side"]: np.array(row["transform"], dtype=np.float64) for row in rows}
    for side in sides:
        if side not in solved:
            raise ValueError(f"no transform was solved for side {side!r}")
    return solved


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


def alignment_partials(batches: Iterable[pa.RecordBatch], transforms: dict[str, np.ndarray]):
    """Yield per side one row of this partition's sums comparing new (raw and
    stabilized) to base rows. Columns: embedding, base_embedding, side."""
    import pyarrow.compute as pc
    from pyspark import TaskContext

    totals = {side: np.zeros(len(MEASURES)) for side in transforms}
    for batch in batches:
        for side in pc.unique(batch.column(2)).to_pylist():
            rows = batch.filter(pc.equal(batch.column(2), side))
            transform = transforms[side]
            raw = list_column_to_matrix(rows.column(0), transform.shape[0], "embedding")
            base = list_column_to_matrix(rows.column(1), name="base_embedding")
            # the published values: float32, as in the stabilized tables
            stabilized = (raw @ transform).astype(np.float32).astype(np.float64)
            # rows of different widths (a dimension change) are compared zero-padded
            stabilized, base_for_stabilized = _zero_padded_pair(stabilized, base)
            totals[side] += [
                rows.num_rows,
                row_cosines(*_zero_padded_pair(raw, base)).sum(),
                row_cosines(stabilized, base_for_stabilized).sum(),
                np.square(stabilized - base_for_stabilized).sum(),
                np.square(base).sum(),
            ]
    sides = list(totals)
    yield pa.RecordBatch.from_arrays(
        [pa.array([TaskContext.get().partitionId()] * len(sides), pa.int32()), pa.array(sides)]
        + [pa.array([totals[side][index] for side in sides]) for index in range(len(MEASURES))],
        names=["partition_id", "side", *MEASURES],
    )


def alignment_measures(joined_by_side: dict, transforms, session):
    """Return per side: aligned ids and sums of cosine (raw, stabilized) and residual.

    The rows of every side are measured in one Spark job on the executors (numpy
    on Arrow batches); only one row of sums per partition and side reaches the
    driver, where ``math.fsum`` adds them exactly, so the result does not depend
    on partition order.
    """
    from pyspark.sql import functions as F

    solved = solved_transforms(transforms, joined_by_side)
    frames = [
        joined.select("embedding", "base_embedding", F.lit(side).alias("side"))
        for side, joined in joined_by_side.items()
    ]
    unioned = frames[0]
    for frame in frames[1:]:
        unioned = unioned.unionByName(frame)
    schema = "partition_id int, side string, " + ", ".join(f"{name} double" for name in MEASURES)
    partials = unioned.mapInArrow(
        partial(alignment_partials, transforms=solved),
        schema,
    ).collect()
    rows = []
    for side in joined_by_side:
        sums = [math.fsum(p[name] for p in partials if p["side"] == side) for name in MEASURES]
        rows.append((side, int(sums[0]), *sums[1:]))
    columns = "side string, aligned_ids long, " + ", ".join(f"{n} double" for n in MEASURES[1:])
    return session.createDataFrame(rows, columns)
