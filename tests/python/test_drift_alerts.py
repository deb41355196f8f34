"""Drift alerts: warn tests on stabilization_runs, each triggered by a generated
retrain made to cross its threshold, none by a normal retrain."""

from __future__ import annotations

import re

import numpy as np
import pytest

from stabilization_tools.synthetic import Retrain, first_retrain, next_retrain

pytestmark = pytest.mark.integration

ALERTS = ("stabilized_cosine", "procrustes_residual", "shape_change", "aligned_share")


def alerts_raised(run) -> set[str]:
    """The drift alert tests that did not pass."""
    statuses = {
        result.node.name.removeprefix("drift_alert_"): str(result.status)
        for result in run.results
        if result.node.name.startswith("drift_alert_")
    }
    assert set(statuses) == set(ALERTS), statuses
    return {alert for alert, status in statuses.items() if status != "pass"}


@pytest.fixture(scope="module")
def base(module_project):
    """v1, then v2: a normal retrain of it (the base of the retrains below)."""
    first = first_retrain(users=200, items=100, dimension=6, seed=0)
    run = module_project.build("v1", *module_project.write_retrain("v1", first))
    assert run.success, run.output
    second = next_retrain(first, seed=1)
    run = module_project.build("v2", *module_project.write_retrain("v2", second))
    assert run.success, run.output
    return {"retrain": second, "normal_run": run}


def build_against_v2(project, version: str, retrain: Retrain):
    run = project.build(version, *project.write_retrain(version, retrain), base_version="v2")
    assert run.success, run.output  # warnings do not fail the build
    return run


def test_a_normal_retrain_raises_no_alert(base):
    run = base["normal_run"]
    assert alerts_raised(run) == set()
    assert "drift alert, version v2" not in run.output


def test_another_model_moves_the_space_too_far(module_project, base):
    """Same ids, unrelated embeddings: the stabilized space cannot be close."""
    v2 = base["retrain"]
    unrelated = first_retrain(users=v2.user_ids.size, items=v2.item_ids.size, dimension=6, seed=7)
    retrain = Retrain(v2.user_ids, unrelated.users, v2.item_ids, unrelated.items)
    run = build_against_v2(module_project, "v3_unrelated", retrain)
    assert alerts_raised(run) == {"stabilized_cosine", "procrustes_residual"}
    assert re.search(
        r"drift alert, version v3_unrelated: stabilized cosine to base version v2 is "
        r"0\.\d{3}, below 0\.8 \(var drift_min_stabilized_cosine\)",
        run.output,
    ), run.output[-3000:]
    assert re.search(
        r"drift alert, version v3_unrelated: Procrustes residual relative to base version v2 "
        r"is \d\.\d{3}, above 0\.6 \(var drift_max_procrustes_residual\)",
        run.output,
    )


def test_a_lost_direction_changes_the_rank(module_project, base):
    v2 = base["retrain"]
    users, items = v2.users.copy(), v2.items.copy()
    users[:, -1] = 0  # the score matrix loses a direction: rank 5 of 6
    run = build_against_v2(
        module_project, "v4_rank", Retrain(v2.user_ids, users, v2.item_ids, items)
    )
    assert alerts_raised(run) == {"shape_change"}
    assert (
        "drift alert, version v4_rank: rank 5 and dimension 6 differ from base version v2's "
        "(rank 6, dimension 6)"
    ) in run.output


def test_churned_ids_leave_too_few_aligned(module_project, base):
    v2 = base["retrain"]
    churned = next_retrain(v2, churn=0.7, seed=4)
    share = np.isin(churned.item_ids, v2.item_ids).sum() / v2.item_ids.size
    run = build_against_v2(module_project, "v5_churn", churned)
    assert alerts_raised(run) == {"aligned_share"}
    assert (
        f"drift alert, version v5_churn: aligned ids are {share:.3f} of base version v2's ids, "
        "below 0.5 (var drift_min_aligned_share)"
    ) in run.output


def test_thresholds_and_severity_are_vars(module_project, base):
    # every version checked by `dbt test` without a version; error severity fails it
    run = module_project.invoke(
        "test",
        "--select",
        "stabilization_runs",
        "--vars",
        "{drift_alert_severity: error, drift_min_stabilized_cosine: 0.9999}",
    )
    assert not run.success
    failed = {result.node.name for result in run.results if str(result.status) == "fail"}
    assert "drift_alert_stabilized_cosine" in failed
    # the normal v2 crosses the stricter threshold too
    assert "drift alert, version v2: stabilized cosine to base version v1 is" in run.output
