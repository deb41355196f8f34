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
from conftest import build_arguments, spark_session, stabilized_by_numpy

from stabilization_tools.synthetic import Retrain, first_retrain, next_retrain

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def retrains():
    first = first_retrain(users=120, items=40, dimension=4, seed=0)
    second = next_retrain(first, seed=1)
    user_ids = second.user_ids.copy()
    user_ids[:5] = user_ids[5:10]  # 5 duplicated ids
    bad = Retrain(user_ids, second.users, second.item_ids, second.items)
    return {"v1": first, "v2": second, "v3": next_retrain(second, seed=2), "bad": bad}


@pytest.fixture(scope="module")
def project(module_project, retrains):
    """v1 published by a whole dbt build; the inputs of v2 and of a bad version written."""
    module_project.relations = {
        name: module_project.write_retrain(name, retrain) for name, retrain in retrains.items()
    }
    retrains.pop("bad")  # the good ones: the chain
    run = module_project.build("v1", *module_project.relations["v1"])
    assert run.success, run.output
    return module_project


def arguments(project, command: str, version: str, *select: str) -> list[str]:
    """dbt's arguments for ``command`` on ``version`` (its inputs), on ``select`` if given."""
    users, items = project.relations[version]
    variables = build_arguments(version, users, items)[-1]
    return [command, "--vars", variables, *(["--select", *select] if select else [])]


def manifest_nodes(project) -> dict:
    """dbt's manifest's nodes, as orchestrators read them (``dbt parse``)."""
    run = project.invoke("parse")
    assert run.success, run.output
    return json.loads((project.target_path / "manifest.json").read_text())["nodes"]


def models_in_dag_order(project) -> list[str]:
    """The project's models in an order that runs each after its parents (from dbt's
    manifest, as orchestrators read it)."""
    models = {
        unique_id: [p for p in node["depends_on"]["nodes"] if p.startswith("model.")]
        for unique_id, node in manifest_nodes(project).items()
        if node["resource_type"] == "model" and node["config"]["enabled"]
    }
    ordered: list[str] = []
    while len(ordered) < len(models):
        ordered += sorted(
            m for m, parents in models.items() if m not in ordered and set(parents) <= set(ordered)
        )
    return [unique_id.rsplit(".", 1)[-1] for unique_id in ordered]


def models_with_tests(project) -> set[str]:
    """The models some data test depends on: those astronomer-cosmos gives a test task
    (``dbt test --select <model>`` after its run) in its default test behaviour."""
    return {
        parent.rsplit(".", 1)[-1]
        for node in manifest_nodes(project).values()
        if node["resource_type"] == "test"
        for parent in node["depends_on"]["nodes"]
        if parent.startswith("model.")
    }


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


def test_run_then_test_per_model_publishes_a_good_version(project):
    """``dbt run --select m`` for each model in the DAG's order, then ``dbt test --select
    m`` if a test depends on it (astronomer-cosmos' default, ``after_each``): each mart
    publishes after its upstream models' test invocations passed. dbt's eager selection runs the test comparing
    ``int_items_stabilized`` with ``stg_retrain__items`` with the latter, while the former
    still holds an earlier version: it compares only once both hold v2."""
    outputs = []
    tested = models_with_tests(project)
    for model in models_in_dag_order(project):
        for command in ("run", "test") if model in tested else ("run",):
            run = project.invoke(*arguments(project, command, "v2", model))
            assert run.success, f"dbt {command} --select {model}\n{run.output}"
            outputs.append(run.output)
    # (the last rows staged before v2 are the bad version's, staged by the tests above)
    assert "int_items_stabilized holds version bad's rows: not compared" in "".join(outputs)
    runs = project.table("stabilization_runs")
    assert runs[["embedding_version", "base_version"]].values.tolist() == [
        ["v1", None],
        ["v2", "v1"],
    ]


def test_build_per_model_publishes_what_a_whole_build_does(project, retrains):
    """``dbt build --select m`` for each model in the DAG's order (astronomer-cosmos'
    build mode, dagster-dbt's asset subsets): v3 published as a whole build would, the
    chain equal to numpy's."""
    for model in models_in_dag_order(project):
        run = project.invoke(*arguments(project, "build", "v3", model))
        assert run.success, f"dbt build --select {model}\n{run.output}"
    runs = project.table("stabilization_runs")
    assert runs["base_version"].tolist() == [None, "v1", "v2"]
    for version, tables in stabilized_by_numpy(retrains).items():
        for name, (expected_ids, expected) in tables.items():
            ids, published = project.embeddings(name, version)
            np.testing.assert_array_equal(ids, expected_ids)
            np.testing.assert_allclose(
                published, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max()
            )


def test_rows_a_killed_run_staged_are_not_published(project):
    """A run killed after staging rows and before recording its build (its on-run-end)
    leaves an audit relation that the ledger's passed audits are not about: a mart
    built alone refuses it, for another version's rows and for this version's alike."""
    relation = f"{project.schema}.int_users_stabilized"
    spark = spark_session()
    before = project.published_tables()
    # untouched, a rerun of the mart alone publishes the audited rows again: a no-op
    run = project.invoke(*arguments(project, "run", "v3", "stabilized_user_embeddings"))
    assert run.success, run.output
    assert project.published_tables() == before
    assert readable_versions(project) == ["v1", "v2", "v3"]  # still read
    for key, value, problem in [
        ("embedding_stabilization.run", "killed-run", "staged by run killed-run, which recorded"),
        ("embedding_stabilization.version", "v9", "holds version v9's rows"),
    ]:
        spark.sql(f"alter table {relation} set tblproperties ('{key}' = '{value}')")
        run = project.invoke(*arguments(project, "run", "v3", "stabilized_user_embeddings"))
        assert not run.success
        assert f"int_users_stabilized: {problem}" in run.output
    assert project.published_tables() == before


def readable_versions(project) -> list[str]:
    return project.table("published_versions")["embedding_version"].tolist()


def scores(project, version: str, prefix: str = "stabilized") -> np.ndarray:
    """Every user·item score of a version, users and items ordered by id."""
    _, users = project.embeddings(f"{prefix}_user_embeddings", version)
    _, items = project.embeddings(f"{prefix}_item_embeddings", version)
    return users @ items.T


def test_a_rebuild_stopped_between_tables_is_hidden_until_it_finishes(project, retrains):
    """v3 rebuilt from other input publishes its users and stops before its items (as a
    kill between the two would): the tables then hold users and items of different runs,
    and the reader views leave v3 out; stabilization_runs alone and a new version aligned
    to v3 refuse; the rebuild rerun publishes v3 whole, with the new input's scores."""
    users, items = project.write_retrain("v3_again", next_retrain(retrains["v2"], seed=7))
    rebuild = build_arguments("v3", users, items)
    before = scores(project, "v3", "published")

    run = project.invoke(*rebuild, "--select", "+stabilized_user_embeddings")
    assert run.success, run.output
    assert readable_versions(project) == ["v1", "v2"]
    assert project.table("published_user_embeddings", "embedding_version = 'v3'").empty
    mixed = scores(project, "v3")  # the tables read directly: new users, old items
    assert not np.allclose(mixed, before, atol=1e-3)

    run = project.invoke("run", *rebuild[3:], "--select", "stabilization_runs")
    assert not run.success
    assert (
        "stabilized_item_embeddings: has not published this version's rows since they were"
        " built" in run.output
    )
    run = project.invoke(*build_arguments("v4", *project.relations["v1"]))
    assert not run.success
    assert "version v3 is the base version, but a rebuild of it began" in run.output
    assert readable_versions(project) == ["v1", "v2"]

    run = project.invoke(*rebuild)
    assert run.success, run.output
    assert readable_versions(project) == ["v1", "v2", "v3"]
    second = next_retrain(retrains["v2"], seed=7)
    order_users, order_items = np.argsort(second.user_ids), np.argsort(second.item_ids)
    raw = second.users[order_users] @ second.items[order_items].T
    np.testing.assert_allclose(
        scores(project, "v3", "published"), raw, rtol=1e-4, atol=1e-4 * np.abs(raw).max()
    )


def test_two_versions_built_per_model_interleaved_publish_no_mixed_version(project, retrains):
    """An orchestrated build of v4 (processes per group of models) whose first half ran
    when a whole build of v5 ran in the same schema, then its second half: v5, whole,
    is published; v4's second half reads v5's inputs and transforms and its publication
    refuses, naming them; nothing of v4 is published."""
    v4 = build_arguments("v4", *project.write_retrain("v4", next_retrain(retrains["v3"], seed=4)))
    v5 = build_arguments("v5", *project.write_retrain("v5", next_retrain(retrains["v3"], seed=5)))
    run = project.invoke(*v4, "--select", "+int_transforms_solved")
    assert run.success, run.output
    run = project.invoke(*v5)
    assert run.success, run.output
    before = project.published_tables()

    run = project.invoke(*v4, "--select", "int_users_stabilized+")
    assert not run.success
    assert "stg_retrain__users: holds version v5's rows" in run.output
    assert readable_versions(project) == ["v1", "v2", "v3", "v5"]
    assert project.published_tables() == before


def test_a_base_version_aligned_to_the_version_rebuilt_is_refused(project):
    """v2 rebuilt with var base_version v3, which is aligned to v2: the chain would be a
    cycle; refused before anything is built."""
    before = project.published_tables()
    run = project.build("v2", *project.relations["v2"], base_version="v3")
    assert not run.success
    assert (
        "var 'base_version' = 'v3' is published aligned to version v2 itself (v3 → v2)"
        in run.output
    )
    assert project.published_tables() == before
