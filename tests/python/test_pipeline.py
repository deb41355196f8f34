"""`dbt build` of two versions on a local Spark session, checked against numpy."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import (
    PROJECT_DIR,
    DbtProject,
    free_port,
    max_relative_score_error,
    rendered_images,
    spark_session,
    stabilized_by_numpy,
    wait_until,
)
from numpy.testing import assert_allclose, assert_array_equal

from dbt.adapters.sparksession.publication import version_folder
from python_udfs import orthogonality_error, stabilizing_transforms
from stabilization_tools.synthetic import first_retrain, next_retrain

pytestmark = pytest.mark.integration

USER_SAMPLE = 100
# v2 measures users (not aligned on) on a hash sample of about 100 of its 400
BUILD_VARS = {"v1": {}, "v2": {"alignment_sample_size": USER_SAMPLE}}
#: each build's output (dbt's debug log included), by version
BUILD_OUTPUTS: dict[str, str] = {}
#: the rows of int_gram_matrices_arrow after v2's build (e = 8: auto takes the SQL Gram)
ARROW_GRAMS_AT_E8: dict = {}


@pytest.fixture(scope="module")
def retrains():
    first = first_retrain(users=400, items=120, dimension=8, seed=0)
    return {"v1": first, "v2": next_retrain(first, noise=0.05, churn=0.1, seed=1)}


@pytest.fixture(scope="module")
def built(module_project, retrains):
    relations = {name: module_project.write_retrain(name, r) for name, r in retrains.items()}
    for version in ("v1", "v2"):
        run = module_project.build(version, *relations[version], **BUILD_VARS[version])
        assert run.success, run.output
        BUILD_OUTPUTS[version] = run.output
    ARROW_GRAMS_AT_E8["v2"] = module_project.table("int_gram_matrices_arrow", order_by="i")
    return relations


def raw(relation):
    """(ids, float64 matrix) of a Parquet input, ordered by id."""
    table = pq.read_table(relation.split("`")[1]).sort_by("id")
    ids = table.column("id").to_numpy()
    matrix = np.stack(table.column("embedding").to_numpy(zero_copy_only=False)).astype(np.float64)
    return ids, matrix


def mean_cosine(a, b):
    return np.mean(np.sum(a * b, axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1))


def test_runs_record_each_version_and_its_base(module_project, built, retrains):
    runs = module_project.table("stabilization_runs")
    assert runs["embedding_version"].tolist() == ["v1", "v2"]
    assert runs["base_version"].isna().tolist() == [True, False]
    assert runs.loc[1, "base_version"] == "v1"
    for row, retrain in zip(runs.itertuples(), retrains.values()):
        assert row.users == len(retrain.user_ids)
        assert row.items == len(retrain.item_ids)
        assert row.dimension == row.rank == 8
        assert row.max_dot_product_error < 1e-6
    common_items = np.intersect1d(retrains["v1"].item_ids, retrains["v2"].item_ids)
    assert runs.loc[1, "aligned_ids"] == runs.loc[1, "aligned_items"] == len(common_items)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_every_user_item_score_is_preserved(module_project, built, version):
    _, w = raw(built[version][0])
    _, t = raw(built[version][1])
    _, w_new = module_project.embeddings("stabilized_user_embeddings", version)
    _, t_new = module_project.embeddings("stabilized_item_embeddings", version)
    assert w_new.shape == w.shape and t_new.shape == t.shape
    assert max_relative_score_error(w, t, w_new, t_new) < 1e-6


def test_published_ids_equal_input_ids(module_project, built, retrains):
    for version, retrain in retrains.items():
        user_ids, _ = module_project.embeddings("stabilized_user_embeddings", version)
        item_ids, _ = module_project.embeddings("stabilized_item_embeddings", version)
        assert_array_equal(user_ids, np.sort(retrain.user_ids))
        assert_array_equal(item_ids, np.sort(retrain.item_ids))


def test_new_version_is_close_to_the_previous_one(module_project, built):
    ids_1, items_1 = module_project.embeddings("stabilized_item_embeddings", "v1")
    ids_2, items_2 = module_project.embeddings("stabilized_item_embeddings", "v2")
    raw_ids_2, raw_items_2 = raw(built["v2"][1])
    common, in_1, in_2 = np.intersect1d(ids_1, ids_2, return_indices=True)
    stabilized = mean_cosine(items_2[in_2], items_1[in_1])
    raw_cosine = mean_cosine(raw_items_2[np.searchsorted(raw_ids_2, common)], items_1[in_1])
    assert stabilized > 0.95 and raw_cosine < 0.5
    runs = module_project.table("stabilization_runs", "embedding_version = 'v2'")
    assert runs.loc[0, "item_cosine_stabilized"] == pytest.approx(stabilized, abs=1e-5)
    assert runs.loc[0, "item_cosine_raw"] == pytest.approx(raw_cosine, abs=1e-5)


def test_the_side_not_aligned_on_is_measured_on_a_hash_sample_of_its_ids(module_project, built):
    """Users are not aligned on: their cosine to base is measured on the ids whose hash
    is in the lowest USER_SAMPLE / 400 of its range, in both versions, and equals numpy's
    on exactly those ids."""
    spark = spark_session()
    sampled = {
        row["id"]
        for row in spark.sql(
            f"select id from {module_project.schema}.stabilized_user_embeddings "
            f"where embedding_version = 'v1' "
            f"and pmod(xxhash64(id), 1000000000) < 1000000000 * ({USER_SAMPLE} / 400)"
        ).collect()
    }
    ids_1, users_1 = module_project.embeddings("stabilized_user_embeddings", "v1")
    ids_2, users_2 = module_project.embeddings("stabilized_user_embeddings", "v2")
    raw_ids_2, raw_users_2 = raw(built["v2"][0])
    common, in_1, in_2 = np.intersect1d(ids_1, ids_2, return_indices=True)
    measured = np.isin(common, list(sampled))
    assert 50 < measured.sum() < 150 < len(common)

    runs = module_project.table("stabilization_runs", "embedding_version = 'v2'")
    assert runs.loc[0, "measured_users"] == measured.sum()
    assert np.isnan(runs.loc[0, "aligned_users"])  # not counted: that would need the whole join
    assert (
        runs.loc[0, "measured_items"] == runs.loc[0, "aligned_items"] == runs.loc[0, "aligned_ids"]
    )
    stabilized = mean_cosine(users_2[in_2][measured], users_1[in_1][measured])
    raw_cosine = mean_cosine(
        raw_users_2[np.searchsorted(raw_ids_2, common[measured])], users_1[in_1][measured]
    )
    assert runs.loc[0, "user_cosine_stabilized"] == pytest.approx(stabilized, abs=1e-5)
    assert runs.loc[0, "user_cosine_raw"] == pytest.approx(raw_cosine, abs=1e-5)


def test_the_sample_prunes_both_inputs_before_the_join_shuffles_them(module_project, built):
    """In the physical plan of the sampled join, each input is filtered on the id's hash
    below the exchange that shuffles it (or the broadcast), not after the join."""
    variables = {
        "embedding_version": "v2",
        "alignment_sample_size": USER_SAMPLE,
        "user_embeddings": built["v2"][0],
        "item_embeddings": built["v2"][1],
    }
    compiled = module_project.invoke(
        "compile", "--select", "int_users_joined_to_base", "--vars", json.dumps(variables)
    )
    assert compiled.success, compiled.output
    sql = compiled.results[0].node.compiled_code
    spark = spark_session()
    spark.conf.set("spark.sql.autoBroadcastJoinThreshold", "-1")  # shuffled, as at scale
    try:
        plan = spark.sql(sql)._jdf.queryExecution().executedPlan().toString().splitlines()
    finally:
        spark.conf.unset("spark.sql.autoBroadcastJoinThreshold")
    shuffles = [i for i, line in enumerate(plan) if "Exchange hashpartitioning(id" in line]
    assert len(shuffles) == 2, "\n".join(plan)
    for start in shuffles:
        scan = next(i for i in range(start, len(plan)) if "FileScan" in plan[i])
        below_shuffle = plan[start + 1 : scan]
        assert any("Filter" in line and "xxhash64" in line for line in below_shuffle), "\n".join(
            plan
        )


def test_pipeline_matches_a_dense_numpy_reference(module_project, built):
    """Grams, join, Procrustes and apply in Spark equal the same math done in numpy."""
    _, w = raw(built["v2"][0])
    item_ids, t = raw(built["v2"][1])
    base_ids, base = module_project.embeddings("stabilized_item_embeddings", "v1")
    _, in_new, in_base = np.intersect1d(item_ids, base_ids, return_indices=True)
    expected = stabilizing_transforms(w.T @ w, t.T @ t, cross_items=t[in_new].T @ base[in_base])
    _, published = module_project.embeddings("stabilized_item_embeddings", "v2")
    assert_allclose(published, t @ expected.item_transform, rtol=1e-5, atol=1e-5)


def test_published_transforms_reproduce_published_embeddings(module_project, built):
    transforms = module_project.table(
        "stabilization_transforms", order_by="embedding_version, side"
    )
    assert len(transforms) == 4
    for row in transforms.itertuples():
        rotation = np.stack(row.rotation)
        assert orthogonality_error(rotation) < 1e-12
        name = "stabilized_user_embeddings" if row.side == "users" else "stabilized_item_embeddings"
        _, raw_matrix = raw(built[row.embedding_version][0 if row.side == "users" else 1])
        _, published = module_project.embeddings(name, row.embedding_version)
        assert_allclose(published, raw_matrix @ np.stack(row.transform), rtol=1e-6, atol=1e-6)


def test_apply_transform_macro_stabilizes_a_late_embedding(module_project, built):
    """The SQL macro users call at serving time gives the published embedding."""
    first_user = raw(built["v2"][0])
    run = module_project.invoke(
        "show",
        "--inline",
        "select {{ apply_transform('users.embedding', 'transforms.transform') }} as stabilized "
        f"from {built['v2'][0]} as users "
        f"cross join {module_project.schema}.stabilization_transforms as transforms "
        "where transforms.embedding_version = 'v2' and transforms.side = 'users' "
        f"and users.id = {first_user[0][0]}",
        "--output",
        "json",
        "--vars",
        "{embedding_version: v2}",
    )
    assert run.success, run.output
    shown = next(r for r in run.results if r.agate_table is not None).agate_table
    stabilized = np.array(json.loads(shown.rows[0]["stabilized"]), dtype=np.float64)
    _, published = module_project.embeddings("stabilized_user_embeddings", "v2")
    assert_allclose(stabilized, published[0], rtol=1e-5, atol=1e-6)


def test_rebuilding_an_earlier_version_is_identical_and_touches_no_other(module_project, built):
    """v1 rebuilt after v2 was published: its recorded base (none) is kept, not v2, and
    every table is as it was (the latest version rebuilt: test_publication). Its
    publication removes the staged folder of an earlier run of v1 whose process is gone,
    not the one of a run that still runs (another run of v1 at once, per model)."""
    table = Path(os.environ["DBT_SPARK_HOME"]) / "warehouse" / f"{module_project.schema}.db"
    staged = Path(version_folder(str(table / "stabilized_user_embeddings"), "v1"))
    runs = {"running": os.getppid(), "killed": 2**22 + 1}  # alive; above Linux's pid_max
    for run, pid in runs.items():
        (staged / run).mkdir(parents=True)
        (staged / run / "part-0.parquet").write_bytes(b"")
        owner = {"host": socket.gethostname(), "pid": pid, "started": int(time.time())}
        (staged / f"_{run}.owner").write_text(json.dumps(owner))
    before = module_project.published_tables()
    run = module_project.build("v1", *built["v1"], **BUILD_VARS["v1"])
    assert run.success, run.output
    after = module_project.published_tables()
    for name, rows in before.items():
        assert after[name] == rows, name
    assert (staged / "running").is_dir() and (staged / "_running.owner").exists()
    assert not (staged / "killed").exists() and not (staged / "_killed.owner").exists()
    assert f"kept the staged folder file:{staged / 'running'}" in run.output
    # the rebuild's own folder has its owner file
    assert any(staged.glob("_*.owner")) and len(list(staged.glob("_*.owner"))) >= 2


def test_a_run_sends_no_usage_events_and_leaves_no_folder_in_the_system_temp(module_project, built):
    """For air-gapped clusters and long-lived hosts: dbt sends no usage events (the
    project's flags), and Hive's folder for a session's resources is one folder in
    DBT_SPARK_HOME, not a new /tmp/<session id>_resources left behind by every run."""
    run = module_project.invoke("show", "--inline", "select 1")
    assert run.success, run.output
    assert "Running with dbt=" in run.output  # dbt's debug log is in the output
    assert "Sending event" not in run.output
    resources = Path(os.environ["DBT_SPARK_HOME"]) / "hive_resources"
    assert resources.is_dir()  # made by Hive's session there
    hadoop_conf = spark_session().sparkContext._jsc.hadoopConfiguration()
    assert hadoop_conf.get("hive.downloaded.resources.dir") == str(resources)


def test_a_build_asks_for_its_base_version_and_drift_alerts_once(built):
    """Metadata many nodes of a build need is queried once per build (query_once), not
    by every node: the published versions and their bases (one read of the runs table
    resolves the base version), and the drift alerts of the four tests."""
    log = BUILD_OUTPUTS["v2"]
    assert log.count("order by runs.published_at desc, runs.embedding_version desc") == 1
    assert "as version_run" not in log  # not the self-join it replaced
    assert log.count("runs_with_base as (") == 1
    assert log.count("drift_alert_") >= 4  # the four tests ran, one query between them


def test_spark_jobs_are_grouped_by_the_dbt_node_that_ran_them(built):
    """The Spark UI and event log name the dbt node of every job (its job group)."""
    tracker = spark_session().sparkContext.statusTracker()
    for node in (
        "model.embedding_stabilization.int_gram_matrices",
        "model.embedding_stabilization.int_users_stabilized",
        "model.embedding_stabilization.stabilization_runs",
    ):
        assert tracker.getJobIdsForGroup(node), node


def test_a_wide_retrain_takes_the_arrow_gram_by_default_and_equals_numpy(built, tmp_path):
    """e = 128, past gram_arrow_above: the default (auto) sums the Grams with numpy on
    Arrow batches (the SQL Gram's blocks of offsets at that width: the dbt unit tests);
    the version equals numpy's. At e = 8 (the module's versions, which equal numpy's
    too) it took the SQL Gram: its arrow model wrote no row."""
    assert ARROW_GRAMS_AT_E8["v2"].empty
    project = DbtProject("wide", tmp_path / "target", tmp_path / "data")
    retrains = {"v1": first_retrain(users=150, items=140, dimension=128, seed=0)}
    run = project.build("v1", *project.write_retrain("v1", retrains["v1"]))
    assert run.success, run.output[-5000:]
    arrow_grams = project.table("int_gram_matrices_arrow", order_by="i")
    assert set(arrow_grams["gram_name"]) == {"users", "items"}  # v1 has no base
    assert len(arrow_grams) == 2 * 128 * 128
    for name, (expected_ids, expected_rows) in stabilized_by_numpy(retrains)["v1"].items():
        ids, rows = project.embeddings(name, "v1")
        assert_array_equal(ids, expected_ids)
        assert_allclose(rows, expected_rows, rtol=1e-4, atol=1e-4 * np.abs(expected_rows).max())


def test_report_from_the_published_tables_renders_in_chromium(
    module_project, built, browser, tmp_path
):
    sys.path.insert(0, str(PROJECT_DIR / "scripts"))
    from report import report_frames

    from stabilization_tools.report import CHARTS, render_report

    os.environ["DBT_SCHEMA"] = module_project.schema
    frames = report_frames(["--target-path", str(module_project.target_path)])
    assert sorted(frames["runs"]["embedding_version"]) == ["v1", "v2"]
    assert all(len(values) == 8 for values in frames["spectra"]["singular_values"])
    assert frames["tolerance"] == 1e-5 and frames["alerts"].empty
    report = tmp_path / "report.html"
    report.write_text(render_report(**frames), encoding="utf-8")
    page = browser.new_page()
    page.goto(report.as_uri())
    images = rendered_images(page)
    assert sorted(image["figure"] for image in images) == sorted(CHARTS)
    assert all(image["decoded"] for image in images), images
    assert page.locator("table tbody tr").count() == 2
    assert "none" in page.locator("#headline").inner_text()  # no drift alert
    page.close()


def test_docs_site_shows_the_lineage_of_the_item_embeddings(
    module_project, built, browser, tmp_path
):
    # parse writes the manifest; --no-compile: the lineage needs no compiled SQL
    for command in (["parse"], ["docs", "generate", "--no-compile"]):
        run = module_project.invoke(*command)
        assert run.success, run.output
    target = module_project.target_path
    manifest = json.loads((target / "manifest.json").read_text())
    catalog = json.loads((target / "catalog.json").read_text())
    # every column the tables really have is documented
    for key, table in catalog["nodes"].items():
        documented = manifest["nodes"][key]["columns"]
        for column in table["columns"]:
            assert documented.get(column, {}).get("description"), (
                f"{key}.{column} is not documented"
            )

    port = free_port()
    dbt = str(Path(sys.executable).with_name("dbt"))
    log_path = tmp_path / "serve.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [
                dbt,
                "docs",
                "serve",
                "--no-browser",
                "--port",
                str(port),
                "--host",
                "127.0.0.1",
                "--project-dir",
                str(PROJECT_DIR),
                "--target-path",
                str(target),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def serving() -> bool:
        assert server.poll() is None, f"dbt docs serve exited: {log_path.read_text()}"
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True

    try:
        wait_until(serving, 60, f"dbt docs serve on port {port} (log: {log_path})")
        page = browser.new_page(viewport={"width": 1600, "height": 900})
        model = "model.embedding_stabilization.stabilized_item_embeddings"
        page.goto(f"http://127.0.0.1:{port}/#!/model/{model}")
        assert page.locator("h1", has_text="stabilized_item_embeddings").count() == 1
        # open the lineage graph, expand it and select everything upstream
        page.click("[ng-click='onLauncherClick()']")
        page.click("[ng-click='showExpanded()']")
        selector = page.locator("input[ng-model='selectorService.selection.dirty.include']")
        selector.fill("+stabilized_item_embeddings")
        selector.press("Enter")
        page.wait_for_function(
            "document.getElementById('cy')._cyreg.cy.nodes(':visible').length > 5", timeout=20000
        )
        graph = page.evaluate(
            """(() => { const cy = document.getElementById('cy')._cyreg.cy;
                return {nodes: cy.nodes(':visible').map(n => n.id()),
                        edges: cy.edges(':visible').map(e => [e.source().id(), e.target().id()])}; })()"""
        )
        page.screenshot(path=str(tmp_path / "lineage.png"))
        page.close()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    sources = {
        "source.embedding_stabilization.retrain_items.item_embeddings",
        "source.embedding_stabilization.retrain_users.user_embeddings",
        "source.embedding_stabilization.published.stabilized_item_embeddings",
    }
    assert sources <= set(graph["nodes"])
    # a drawn path from each source to the published item embeddings
    parents = {}
    for source, child in graph["edges"]:
        parents.setdefault(child, set()).add(source)
    upstream, frontier = set(), {model}
    while frontier:
        node = frontier.pop()
        for parent in parents.get(node, ()):
            if parent not in upstream:
                upstream.add(parent)
                frontier.add(parent)
    assert sources <= upstream
    assert "model.embedding_stabilization.int_transforms_solved" in upstream
