"""Arrow list columns ↔ numpy matrices, and batch-wise application of a transform."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

import python_udfs.spark
from python_udfs.arrow import list_column_to_matrix, matrix_to_list_column
from python_udfs.spark import transform_batches, write_parquet_file


@settings(max_examples=100, deadline=None)
@given(rows=st.integers(0, 50), dimension=st.integers(1, 16), seed=st.integers(0, 1000))
def test_matrix_round_trips_through_a_float_list_column(rows, dimension, seed):
    matrix = np.random.default_rng(seed).standard_normal((rows, dimension)).astype(np.float32)
    column = matrix_to_list_column(matrix)
    assert column.type == pa.list_(pa.float32())
    assert_array_equal(list_column_to_matrix(column, dimension), matrix)


def test_sliced_column_reads_only_its_rows():
    matrix = np.arange(20, dtype=np.float64).reshape(5, 4)
    column = pa.array(matrix.tolist(), type=pa.list_(pa.float64()))
    assert_array_equal(list_column_to_matrix(column.slice(2, 2), 4), matrix[2:4])


def test_chunked_column_is_combined():
    column = pa.chunked_array([pa.array([[1.0, 2.0]]), pa.array([[3.0, 4.0]])])
    assert_array_equal(list_column_to_matrix(column, 2), [[1, 2], [3, 4]])


@pytest.mark.parametrize(
    "rows, message",
    [
        ([[1.0, 2.0], None], "1 null embeddings"),
        ([[1.0, 2.0], [1.0]], "exactly 2"),
        ([[1.0, None]], "exactly 2"),
    ],
)
def test_bad_rows_are_rejected_with_the_column_name(rows, message):
    with pytest.raises(ValueError, match=message) as error:
        list_column_to_matrix(pa.array(rows, type=pa.list_(pa.float64())), 2, "user_vector")
    assert "user_vector" in str(error.value)


def test_transform_batches_multiplies_each_row_and_keeps_other_columns():
    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((7, 3))
    transform = rng.standard_normal((3, 3))
    batch = pa.RecordBatch.from_arrays(
        [pa.array(np.arange(7)), pa.array(matrix.tolist()), pa.array(["v1"] * 7)],
        names=["id", "embedding", "embedding_version"],
    )
    (out,) = list(transform_batches([batch], transform))
    assert out.schema.names == ["id", "embedding", "embedding_version"]
    assert out.column(1).type == pa.list_(pa.float32())
    assert_allclose(list_column_to_matrix(out.column(1), 3), matrix @ transform, rtol=1e-6)
    assert out.column(0).equals(batch.column(0))


def test_width_defaults_to_the_first_row_and_is_enforced():
    column = pa.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert list_column_to_matrix(column).shape == (2, 3)
    with pytest.raises(ValueError, match="exactly 3"):
        list_column_to_matrix(pa.array([[1.0, 2.0, 3.0], [4.0]]))


def embedding_batches(count: int, rows: int = 10, dimension: int = 4) -> list[pa.RecordBatch]:
    rng = np.random.default_rng(count)
    return [
        pa.RecordBatch.from_arrays(
            [
                pa.array(np.arange(n * rows, (n + 1) * rows)),
                matrix_to_list_column(rng.standard_normal((rows, dimension))),
                pa.array(["v1"] * rows),
            ],
            names=["id", "embedding", "embedding_version"],
        )
        for n in range(count)
    ]


def test_a_partition_is_written_as_one_parquet_file_without_the_dropped_columns(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(python_udfs.spark, "ROW_GROUP_BYTES", 500)  # a row group per ~2 batches
    batches = embedding_batches(5)
    path = tmp_path / "staged" / "part-00003.snappy.parquet"

    assert write_parquet_file(batches, str(path), ["embedding_version"]) == 50

    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    written = pq.ParquetFile(path)
    expected = pa.Table.from_batches(batches).drop_columns(["embedding_version"])
    assert written.read().equals(expected)
    assert 1 < written.metadata.num_row_groups < 5
    encodings = written.metadata.row_group(0).column(1).encodings
    assert "PLAIN" in encodings and not any("DICTIONARY" in e for e in encodings)


def test_a_retried_attempt_replaces_the_file_and_a_failed_one_leaves_it_as_it_was(tmp_path):
    path = tmp_path / "part-00000.snappy.parquet"
    write_parquet_file(embedding_batches(3), str(path))
    first = path.read_bytes()

    def failing_after_one_batch():
        yield embedding_batches(3)[0]
        raise RuntimeError("executor lost")

    with pytest.raises(RuntimeError, match="executor lost"):
        write_parquet_file(failing_after_one_batch(), str(path))
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    assert path.read_bytes() == first

    # a second attempt of the same partition: the same rows, the same bytes, one file
    write_parquet_file(embedding_batches(3), str(path))
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    assert path.read_bytes() == first


def test_no_rows_write_no_file_and_no_folder(tmp_path):
    empty = embedding_batches(1)[0].slice(0, 0)
    assert write_parquet_file([empty], str(tmp_path / "staged" / "part-00000.parquet")) == 0
    assert not (tmp_path / "staged").exists()
