"""The audit same_ids_as, on relations whose ids differ in each way it must catch.

Its fast path compares fingerprints (row count, non-null ids, hash sums); a
duplicated id that replaces a missing one keeps the row count, so only the
hash sums can see it.
"""

import pytest
from conftest import spark_session

pytestmark = pytest.mark.integration

INPUT_IDS = list(range(1, 201))


@pytest.fixture(scope="module")
def schema(module_project):
    module_project.start_spark()
    spark_session().sql(f"create schema if not exists {module_project.schema}")
    return module_project.schema


def ids_view(schema: str, name: str, ids: list) -> str:
    values = ", ".join("(null)" if i is None else f"({i})" for i in ids)
    spark_session().sql(
        f"create or replace view {schema}.{name} as "
        f"select cast(id as bigint) as id from values {values} as rows(id)"
    )
    return f"{schema}.{name}"


def same_ids_as(project, model: str, compare_model: str) -> tuple[list[str], str]:
    """The problems the audit returns, and the SQL it ran."""
    run = project.invoke(
        "show",
        "--limit",
        "10",
        "--inline",
        f"{{{{ test_same_ids_as(model='{model}', column_name='id', compare_model='{compare_model}') }}}}",
    )
    assert run.success, run.output
    shown = next(r for r in run.results if r.agate_table is not None)
    return sorted(row[0] for row in shown.agate_table.rows), shown.node.compiled_code


@pytest.mark.parametrize(
    "name, ids, problems",
    [
        ("reordered", INPUT_IDS[::-1], []),
        ("one_missing", INPUT_IDS[1:], ["1 ids of {input} are missing"]),
        ("one_extra", [*INPUT_IDS, 999], ["1 ids are not in {input}"]),
        (
            "duplicate_for_missing",  # as many rows as the input: the count alone passes it
            [INPUT_IDS[0], *INPUT_IDS[:-1]],
            ["1 ids appear more than once", "1 ids of {input} are missing"],
        ),
        ("null_for_missing", [None, *INPUT_IDS[1:]], ["1 ids of {input} are missing", "null ids"]),
    ],
)
def test_same_ids_as_finds_each_difference(module_project, schema, name, ids, problems):
    compare_model = ids_view(schema, "input_ids", INPUT_IDS)
    model = ids_view(schema, name, ids)
    found, sql = same_ids_as(module_project, model, compare_model)
    assert found == sorted(p.format(input=compare_model) for p in problems)
    # the ids are joined only when the fingerprints differ
    assert ("same fingerprint" in sql) == (not problems), sql
