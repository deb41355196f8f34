"""Bad input stops the run with a message naming the relation, the column and
the problem, before anything is published; earlier versions stay intact."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from python_udfs.arrow import matrix_to_list_column
from stabilization_tools.synthetic import first_retrain, next_retrain

pytestmark = pytest.mark.integration


def write_table(project, name, table: pa.Table) -> str:
    """Write any Arrow table as Parquet; return the relation to pass as a var."""
    path = project.data_dir / name
    path.mkdir(parents=True)
    pq.write_table(table, path / "part-0.parquet")
    return f"parquet.`{path}`"


def embeddings_table(ids, matrix) -> pa.Table:
    return pa.table({"id": pa.array(ids), "embedding": matrix_to_list_column(matrix)})


@pytest.fixture(scope="module")
def published(module_project):
    """v1 published; v2's good inputs written, for the tests to spoil one side of."""
    first = first_retrain(users=60, items=30, dimension=4, seed=0)
    run = module_project.build("v1", *module_project.write_retrain("v1", first))
    assert run.success, run.output
    second = next_retrain(first, seed=1)
    users, items = module_project.write_retrain("v2", second)
    return {
        "before": module_project.published_tables(),
        "retrain": second,
        "users": users,
        "items": items,
    }


def assert_stopped_with(project, published, run, *messages):
    assert not run.success
    for message in messages:
        assert message in run.output, f"{message!r} not in the output:\n{run.output[-4000:]}"
    assert project.published_tables() == published["before"]


def spoiled_users(retrain):
    """Bad user tables, each from the good v2 users: (problem, table, expected message)."""
    ids, users = retrain.user_ids, retrain.users
    good = embeddings_table(ids, users)
    rows = good.to_pylist()

    def with_rows(rows, schema=good.schema):
        return pa.Table.from_pylist(rows, schema=schema)

    nan_users, inf_users = users.copy(), users.copy()
    nan_users[5, 2] = np.nan
    inf_users[7, 0] = -np.inf
    ragged = [dict(row) for row in rows]
    ragged[9]["embedding"] = ragged[9]["embedding"][:3]
    nullable = pa.schema(
        [pa.field("id", pa.int64()), pa.field("embedding", pa.list_(pa.float32()))]
    )
    return {
        "null id": (
            with_rows([{**rows[0], "id": None}] + rows[1:], nullable),
            "column id: 1 rows have a null id",
        ),
        "null embedding": (
            with_rows(rows[:4] + [{**rows[4], "embedding": None}] + rows[5:], nullable),
            f"column embedding: 1 rows have a null embedding (e.g. id {ids[4]})",
        ),
        "duplicate id": (
            with_rows(rows + [{**rows[3], "embedding": rows[8]["embedding"]}]),
            f"column id: 1 ids appear more than once (e.g. {ids[3]})",
        ),
        "ragged lengths": (
            with_rows(ragged),
            f"embeddings have different lengths: 3 (e.g. id {ids[9]}) to 4",
        ),
        "NaN value": (
            embeddings_table(ids, nan_users),
            f"1 rows have a null, NaN or infinite value (e.g. id {ids[5]})",
        ),
        "infinite value": (
            embeddings_table(ids, inf_users),
            f"1 rows have a null, NaN or infinite value (e.g. id {ids[7]})",
        ),
        "empty table": (good.slice(0, 0), "column embedding: the relation has no rows"),
        "missing id column": (
            good.rename_columns(["user_id", "embedding"]),
            "has no column id (var id_column); its columns are: user_id, embedding",
        ),
        "embedding of the wrong type": (
            pa.table(
                {"id": good["id"], "embedding": pa.array([str(r["embedding"]) for r in rows])}
            ),
            "column embedding has type string; expected array<float> or array<double>",
        ),
        "id of the wrong type": (
            pa.table({"id": pa.array(ids.astype(np.float64)), "embedding": good["embedding"]}),
            "column id has type double; expected tinyint or smallint or int or bigint or string",
        ),
    }


@pytest.mark.parametrize(
    "problem",
    [
        "null id",
        "null embedding",
        "duplicate id",
        "ragged lengths",
        "NaN value",
        "infinite value",
        "empty table",
        "missing id column",
        "embedding of the wrong type",
        "id of the wrong type",
    ],
)
def test_bad_user_embeddings_stop_the_run(module_project, published, problem):
    assert_spoiled_users_stop_the_run(module_project, published, problem, "users")


def assert_spoiled_users_stop_the_run(project, published, problem: str, folder: str) -> None:
    """v2 built from the users spoiled with ``problem`` (written to their own folder)
    stops with its message, naming the input, and publishes nothing."""
    table, message = spoiled_users(published["retrain"])[problem]
    users = write_table(project, f"{folder} with {problem}".replace(" ", "_"), table)
    run = project.build("v2", users, published["items"])
    assert_stopped_with(project, published, run, f"{users} (var user_embeddings)", message)


def test_ids_of_another_type_than_the_base_stop_the_run(module_project, published):
    retrain = published["retrain"]
    items = write_table(
        module_project,
        "string_item_ids",
        embeddings_table(retrain.item_ids.astype(str), retrain.items),
    )
    run = module_project.build("v2", published["users"], items)
    assert_stopped_with(
        module_project,
        published,
        run,
        f"{items} (var item_embeddings), column id has type string but the ids of version v1 of",
        "stabilized_item_embeddings have type bigint",
    )


def test_no_id_in_common_with_the_base_stops_the_run(module_project, published):
    retrain = published["retrain"]
    items = write_table(
        module_project, "new_item_ids", embeddings_table(retrain.item_ids + 10_000, retrain.items)
    )
    run = module_project.build("v2", published["users"], items)
    assert_stopped_with(
        module_project,
        published,
        run,
        f"{items} (var item_embeddings), column id: no id is also in base version v1",
    )


def test_too_few_ids_in_common_with_the_base_stop_the_run(module_project, published):
    common = np.intersect1d(published["retrain"].item_ids, np.arange(30)).size
    run = module_project.build("v2", published["users"], published["items"], min_aligned_ids=1000)
    assert_stopped_with(
        module_project,
        published,
        run,
        f"only {common} ids are also in base version v1; at least 1000 are needed",
    )


def test_a_base_version_never_published_stops_the_run(module_project, published):
    run = module_project.build("v2", published["users"], published["items"], base_version="v0")
    assert_stopped_with(
        module_project,
        published,
        run,
        "var 'base_version' = 'v0' was never published: no row for it in "
        f"{module_project.schema}.stabilization_runs",
    )


@pytest.mark.parametrize("version", ["", "  "])
def test_an_empty_embedding_version_stops_the_run(module_project, published, version):
    run = module_project.build(version, published["users"], published["items"])
    assert_stopped_with(
        module_project, published, run, "var 'embedding_version' is required and must not be empty"
    )


def test_a_dimension_change_stops_the_run_unless_allowed(module_project, published):
    retrain = published["retrain"]
    rng = np.random.default_rng(3)
    widen = rng.standard_normal((4, 6))
    wide_users = write_table(
        module_project, "wide_users", embeddings_table(retrain.user_ids, retrain.users @ widen)
    )
    wide_items = write_table(
        module_project, "wide_items", embeddings_table(retrain.item_ids, retrain.items @ widen)
    )
    run = module_project.build("v2", wide_users, wide_items)
    assert_stopped_with(
        module_project,
        published,
        run,
        "column embedding has dimension 6 but version v1 of",
        "has dimension 4: set var allow_dimension_change: true",
    )


@pytest.mark.parametrize("problem", ["ragged lengths", "id of the wrong type"])
def test_bad_input_is_refused_alike_in_a_session_whose_ansi_mode_was_on(
    module_project, published, problem
):
    """ANSI mode (on by default on Spark 4, off on 3.5; a cluster may set either)
    changes what casts and array lookups do: the checks refuse the same inputs with
    the same messages either way (dbt-spark sets it off on every session it opens)."""
    from conftest import spark_session

    session = spark_session()
    session.conf.set("spark.sql.ansi.enabled", "true")
    try:
        assert_spoiled_users_stop_the_run(module_project, published, problem, "ansi users")
    finally:
        session.conf.set("spark.sql.ansi.enabled", "false")
