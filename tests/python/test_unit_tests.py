"""dbt unit tests of the Gram SQL (declared in models/intermediate/*.yml)."""

import json

import pytest

pytestmark = pytest.mark.integration


def test_gram_sql_unit_tests_pass(module_project):
    from stabilization_tools.synthetic import first_retrain

    relations = module_project.write_retrain("v1", first_retrain(users=5, items=4, dimension=2))
    # unit tests need their parents to exist: build them empty first
    users, items = relations
    variables = {"embedding_version": "v1", "user_embeddings": users, "item_embeddings": items}
    common = ["--vars", json.dumps(variables)]
    run = module_project.invoke(
        "run",
        "--empty",
        "--select",
        "+int_gram_matrices",
        "--exclude",
        "int_gram_matrices",
        *common,
    )
    assert run.success, run.output
    run = module_project.invoke("test", "--select", "int_gram_matrices,test_type:unit", *common)
    assert run.success, run.output
    unit_tests = {r.node.name: r.node for r in run.results if r.node.resource_type == "unit_test"}
    assert len(unit_tests) == 5, sorted(unit_tests)
    # two of them sum in blocks (var gram_sql_block_size), the others not
    blocked = {name for name, node in unit_tests.items() if "block_numbers" in node.compiled_code}
    assert blocked == {name for name in unit_tests if "_in_blocks_" in name}, blocked
