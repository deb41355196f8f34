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


def with_every_data_problem(ids, matrix) -> tuple[pa.Table, list[str]]:
    """An input with one row for each data problem the checks find (a null id, a
    repeated id, a null embedding, a NaN, a null value, both infinities, a shorter
    embedding), and the messages that must name them all."""
    good = embeddings_table(ids, matrix)
    rows = good.to_pylist()
    rows[0]["id"] = None
    rows[2]["embedding"][1] = float("inf")
    rows[4]["embedding"] = None
    rows[5]["embedding"][2] = float("nan")
    rows[6]["embedding"][0] = None
    rows[7]["embedding"][0] = float("-inf")
    rows[9]["embedding"] = rows[9]["embedding"][:3]
    rows.append({**rows[3], "embedding": rows[8]["embedding"]})
    nullable = pa.schema(
        [pa.field("id", pa.int64()), pa.field("embedding", pa.list_(pa.float32()))]
    )
    return pa.Table.from_pylist(rows, nullable), [
        "column id: 1 rows have a null id",
        f"1 ids appear more than once (e.g. {ids[3]})",
        f"column embedding: 1 rows have a null embedding (e.g. id {ids[4]})",
        f"4 rows have a null, NaN or infinite value (e.g. id {min(ids[i] for i in (2, 5, 6, 7))})",
        f"embeddings have different lengths: 3 (e.g. id {ids[9]}) to {matrix.shape[1]}",
    ]


def with_schema_problem(ids, matrix, problem: str) -> tuple[pa.Table, str]:
    """An input whose columns or rows make it unreadable as embeddings, and its message
    (what follows the input's name in it)."""
    good = embeddings_table(ids, matrix)
    return {
        "empty table": (good.slice(0, 0), ", column embedding: the relation has no rows"),
        "missing id column": (
            good.rename_columns(["user_id", "embedding"]),
            " has no column id (var id_column); its columns are: user_id, embedding",
        ),
        "embedding of the wrong type": (
            pa.table({"id": good["id"], "embedding": pa.array([str(list(row)) for row in matrix])}),
            ", column embedding has type string; expected array<float> or array<double>",
        ),
        "id of the wrong type": (
            pa.table({"id": pa.array(ids.astype(np.float64)), "embedding": good["embedding"]}),
            ", column id has type double; expected tinyint or smallint or int or bigint or string",
        ),
    }[problem]


def test_every_data_problem_of_an_input_is_named_in_one_run(module_project, published):
    """The input checks list all they find, so one run says all there is to fix."""
    retrain = published["retrain"]
    table, messages = with_every_data_problem(retrain.user_ids, retrain.users)
    users = write_table(module_project, "users_with_every_problem", table)
    run = module_project.build("v2", users, published["items"])
    assert_stopped_with(module_project, published, run, f"{users} (var user_embeddings)", *messages)


@pytest.mark.parametrize(
    ("users_problem", "items_problem"),
    [("missing id column", "embedding of the wrong type"), ("id of the wrong type", "empty table")],
)
def test_inputs_that_cannot_be_read_as_embeddings_stop_the_run(
    module_project, published, users_problem, items_problem
):
    """Each input's problem is named with the input, in the same run."""
    retrain = published["retrain"]
    users_table, users_message = with_schema_problem(retrain.user_ids, retrain.users, users_problem)
    items_table, items_message = with_schema_problem(retrain.item_ids, retrain.items, items_problem)
    users = write_table(module_project, f"users_{users_problem}".replace(" ", "_"), users_table)
    items = write_table(module_project, f"items_{items_problem}".replace(" ", "_"), items_table)
    run = module_project.build("v2", users, items)
    assert_stopped_with(
        module_project,
        published,
        run,
        f"{users} (var user_embeddings){users_message}",
        f"{items} (var item_embeddings){items_message}",
    )


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


def test_bad_input_is_refused_alike_in_a_session_whose_ansi_mode_was_on(module_project, published):
    """ANSI mode (on by default on Spark 4, off on 3.5; a cluster may set either)
    changes what casts and array lookups do: the checks refuse the same inputs with
    the same messages either way (dbt-spark sets it off on every session it opens)."""
    from conftest import spark_session

    retrain = published["retrain"]
    users_table, users_messages = with_every_data_problem(retrain.user_ids, retrain.users)
    items_table, items_message = with_schema_problem(
        retrain.item_ids, retrain.items, "id of the wrong type"
    )
    users = write_table(module_project, "ansi_users_with_every_problem", users_table)
    items = write_table(module_project, "ansi_items_with_double_ids", items_table)
    session = spark_session()
    session.conf.set("spark.sql.ansi.enabled", "true")
    try:
        run = module_project.build("v2", users, items)
    finally:
        session.conf.set("spark.sql.ansi.enabled", "false")
    assert_stopped_with(
        module_project,
        published,
        run,
        *users_messages,
        f"{items} (var item_embeddings){items_message}",
    )
