"""Five retrains in a row, each aligned to the one before, including the
unusual but valid ones: rank deficient, ill conditioned, a dimension change.

One chain is built for the module; each test checks one property on it.
"""

from __future__ import annotations

import gc
import time

import numpy as np
import pytest
from conftest import max_relative_score_error

from stabilization_tools.synthetic import Retrain

pytestmark = pytest.mark.integration

VERSIONS = [f"v{number:02d}" for number in range(1, 6)]
#: versions that are not a plain retrain of the same 6-dimensional model
#: (a plain retrain landing on its base: test_pipeline's closeness test)
UNUSUAL = {"v02": "rank deficient", "v03": "ill conditioned", "v04": "wider", "v05": "narrower"}


def retrain_of(version: str, rng: np.random.Generator, model) -> Retrain:
    """One retrain of the model: its rows in new coordinates, with some ids churned."""
    users, items = (m + 0.02 * rng.standard_normal(m.shape) for m in model)
    kind = UNUSUAL.get(version)
    if kind == "wider":
        users, items = (
            np.hstack([m, 0.1 * rng.standard_normal((len(m), 2))]) for m in (users, items)
        )
    if kind == "narrower":
        users, items = users[:, :5], items[:, :5]
    if kind == "rank deficient":  # W of rank 3 < e, and a constant item column
        users = users[:, :3] @ rng.standard_normal((3, 6))
        items[:, 2] = 0.5
    mixing = rng.standard_normal((users.shape[1],) * 2) + 2 * np.eye(users.shape[1])
    users, items = users @ mixing, items @ np.linalg.inv(mixing).T
    if kind == "ill conditioned":  # condition number 1e6
        left, _ = np.linalg.qr(users)
        right, _ = np.linalg.qr(rng.standard_normal((6, 6)))
        users = left @ np.diag(np.logspace(0, -6, 6)) @ right * 10
    user_rows = np.sort(rng.choice(len(users), size=len(users) - 5, replace=False))
    item_rows = np.sort(rng.choice(len(items), size=len(items) - 2, replace=False))
    return Retrain(
        user_rows.astype(np.int64),
        users[user_rows].astype(np.float32),
        item_rows.astype(np.int64),
        items[item_rows].astype(np.float32),
    )


def driver_footprint(session) -> dict[str, float]:
    """What could pile up on the driver between runs."""
    jvm = session.sparkContext._jvm
    gc.collect()
    for _ in range(3):  # a hint: repeat it, so what is left is what is still referenced
        jvm.java.lang.System.gc()
        time.sleep(0.2)
    runtime = jvm.java.lang.Runtime.getRuntime()
    with open("/proc/self/status") as status:
        rss_kib = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return {
        "jvm_heap_mib": (runtime.totalMemory() - runtime.freeMemory()) / 2**20,
        "python_rss_mib": rss_kib / 1024,
        "temporary_views": sum(table.isTemporary for table in session.catalog.listTables()),
        "cached_rdds": session.sparkContext._jsc.getPersistentRDDs().size(),
    }


@pytest.fixture(scope="module")
def chain(module_project):
    from pyspark.sql import SparkSession

    rng = np.random.default_rng(0)
    model = rng.standard_normal((100, 6)), rng.standard_normal((50, 6))
    retrains, footprints = {}, []
    for version in VERSIONS:
        retrains[version] = retrain_of(version, rng, model)
        relations = module_project.write_retrain(version, retrains[version])
        run = module_project.build(version, *relations, allow_dimension_change=True)
        assert run.success, f"{version} ({UNUSUAL.get(version, 'usual')}):\n{run.output}"
        footprints.append(driver_footprint(SparkSession.builder.getOrCreate()))
    return retrains, footprints


def published(project, version):
    """(users, items) of a published version, ordered by id, float64."""
    _, users = project.embeddings("stabilized_user_embeddings", version)
    _, items = project.embeddings("stabilized_item_embeddings", version)
    return users, items


def test_each_version_is_aligned_to_the_one_before(module_project, chain):
    runs = module_project.table("stabilization_runs")
    assert runs["embedding_version"].tolist() == VERSIONS
    assert runs["base_version"].tolist()[1:] == VERSIONS[:-1]


def test_every_version_preserves_its_own_scores(module_project, chain):
    retrains, _ = chain
    for version, retrain in retrains.items():
        w, t = (m.astype(np.float64) for m in (retrain.users, retrain.items))
        w_new, t_new = published(module_project, version)
        error = max_relative_score_error(w, t, w_new, t_new)
        assert error < 1e-6, f"{version}: max relative score error {error:.2e}"


def test_a_rank_deficient_version_keeps_its_width_and_records_its_rank(module_project, chain):
    runs = module_project.table("stabilization_runs", "embedding_version = 'v02'")
    assert (runs.loc[0, "rank"], runs.loc[0, "dimension"]) == (3, 6)
    w_new, t_new = published(module_project, "v02")
    assert w_new.shape[1] == t_new.shape[1] == 6


def test_an_ill_conditioned_version_is_full_rank(module_project, chain):
    retrains, _ = chain
    assert np.linalg.cond(retrains["v03"].users.astype(np.float64)) == pytest.approx(1e6, rel=0.05)
    runs = module_project.table("stabilization_runs", "embedding_version = 'v03'")
    assert runs.loc[0, "rank"] == 6
    assert runs.loc[0, "condition_number"] > 1e5


def test_an_allowed_dimension_change_pads_with_zero_columns(module_project, chain):
    """v04 (e = 8) is wider than its base: published 8 wide; v05 (e = 5) is
    narrower than its base: published 8 wide as well."""
    runs = module_project.table("stabilization_runs")
    assert runs["dimension"].tolist()[2:] == [6, 8, 8]
    for version in ("v04", "v05"):
        w_new, t_new = published(module_project, version)
        assert w_new.shape[1] == t_new.shape[1] == 8
    # v05 keeps the 5 columns of the model it has, so it still lands close to v04
    v05 = runs[runs["embedding_version"] == "v05"].iloc[0]
    assert v05["item_cosine_stabilized"] > 0.9 > v05["item_cosine_raw"]


def test_nothing_accumulates_on_the_driver(chain):
    _, footprints = chain
    # dbt-spark leaves one `<mart>__dbt_tmp` view per incremental model (from the
    # second version on, when the marts exist), replaced by each run
    assert len({f["temporary_views"] for f in footprints[1:]}) == 1
    assert all(f["cached_rdds"] == 0 for f in footprints)
    # Heap in use after a GC request is noisy (what a collection frees varies), so the
    # last versions' lowest reading is compared with the early versions' highest: data
    # kept per version (5 versions of embeddings, Grams, ...) would lift every reading.
    for measure, factor in (("jvm_heap_mib", 1.5), ("python_rss_mib", 1.2)):
        readings = [round(f[measure]) for f in footprints]
        assert min(readings[-2:]) < max(readings[1:3]) * factor + 64, (measure, readings)
