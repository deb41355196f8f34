"""Publication enforces its audits however dbt is run: ``dbt run``, ``dbt run`` then
``dbt test``, one ``dbt build --select <model>`` per model in the DAG's order (as
dagster-dbt and astronomer-cosmos run a project), a mart rebuilt alone.

Each invocation here is a dbt invocation of its own (dbtRunner), as an orchestrator's
processes are; they share this process's Spark session because the embedded metastore
admits one process (what they share otherwise: the metastore and the audit ledger in it).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import build_arguments

from stabilization_tools.synthetic import Retrain, first_retrain, next_retrain

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def retrains():
    first = first_retrain(users=120, items=40, dimension=4, seed=0)
    second = next_retrain(first, seed=1)
    user_ids = second.user_ids.copy()
    user_ids[:5] = user_ids[5:10]  # 5 duplicated ids
    bad = Retrain(user_ids, second.users, second.item_ids, second.items)
    return {"v1": first, "v2": second, "bad": bad}


@pytest.fixture(scope="module")
def project(module_project, retrains):
    """v1 published by a whole dbt build; the inputs of v2 and of a bad version written."""
    module_project.relations = {
        name: module_project.write_retrain(name, retrain) for name, retrain in retrains.items()
    }
    run = module_project.build("v1", *module_project.relations["v1"])
    assert run.success, run.output
    return module_project


def arguments(project, command: str, version: str, *select: str) -> list[str]:
    """dbt's arguments for ``command`` on ``version`` (its inputs), on ``select`` if given."""
    users, items = project.relations[version]
    variables = build_arguments(version, users, items)[-1]
    return [command, "--vars", variables, *(["--select", *select] if select else [])]


def models_in_dag_order(project) -> list[str]:
    """The project's models in an order that runs each after its parents (from dbt's
    manifest, as orchestrators read it)."""
    run = project.invoke("parse")
    assert run.success, run.output
    manifest = json.loads((project.target_path / "manifest.json").read_text())
    models = {
        unique_id: [p for p in node["depends_on"]["nodes"] if p.startswith("model.")]
        for unique_id, node in manifest["nodes"].items()
        if node["resource_type"] == "model" and node["config"]["enabled"]
    }
    ordered: list[str] = []
    while len(ordered) < len(models):
        ordered += sorted(
            m for m, parents in models.items() if m not in ordered and set(parents) <= set(ordered)
        )
    return [unique_id.rsplit(".", 1)[-1] for unique_id in ordered]


def assert_unchanged(project, before: dict) -> None:
    """The published tables are as ``before``; the bad version is in none of them."""
    after = project.published_tables()
    for name, rows in after.items():
        assert "bad" not in {row["embedding_version"] for row in rows}, name
    assert after == before


def test_dbt_run_publishes_nothing_and_says_what_to_run(project):
    before = project.published_tables()
    run = project.invoke(*arguments(project, "run", "bad"))
    assert not run.success
    assert "stabilized_user_embeddings: version bad not published, nothing changed" in run.output
    # dbt run ran no test: each audit is named, with the command that runs them
    assert (
        "valid_ids_stg_retrain__users_id__user_embeddings: not run since stg_retrain__users was"
        " built" in run.output
    )
    assert "dbt build --select +stabilized_user_embeddings" in run.output
    assert_unchanged(project, before)


def test_a_failed_audit_then_a_mart_built_alone_publishes_nothing(project):
    before = project.published_tables()
    run = project.invoke(*arguments(project, "test", "bad"))
    assert not run.success
    assert "valid_ids_stg_retrain__users_id" in run.output
    for command in ("run", "build"):
        run = project.invoke(*arguments(project, command, "bad", "stabilized_user_embeddings"))
        assert not run.success
        assert "valid_ids_stg_retrain__users_id__user_embeddings: FAILED (error)" in run.output
    assert_unchanged(project, before)


def test_one_process_per_model_refuses_a_bad_version_at_each_step(project):
    """``dbt run --select m`` then ``dbt test --select m`` for each model (cosmos' default),
    carried on past each failure: no version is ever exposed."""
    before = project.published_tables()
    for model in models_in_dag_order(project):
        project.invoke(*arguments(project, "run", "bad", model))
        project.invoke(*arguments(project, "test", "bad", model))
    assert_unchanged(project, before)


def test_one_process_per_model_publishes_what_a_whole_build_does(project):
    """``dbt build --select m`` for each model in the DAG's order, dbt's default (eager)
    test selection: a test comparing two models compares only once both hold v2."""
    for model in models_in_dag_order(project):
        run = project.invoke(*arguments(project, "build", "v2", model))
        assert run.success, f"dbt build --select {model}\n{run.output}"
    per_model = project.published_tables(drop_columns=("published_at",))
    assert [row["embedding_version"] for row in per_model["stabilization_runs"]] == ["v1", "v2"]

    run = project.invoke(*arguments(project, "build", "v2"))  # a whole build of v2 again
    assert run.success, run.output
    assert project.published_tables(drop_columns=("published_at",)) == per_model
    ids, _ = project.embeddings("stabilized_user_embeddings", "v2")
    assert np.array_equal(ids, np.sort(next_retrain(first_retrain(120, 40, 4, 0), seed=1).user_ids))
