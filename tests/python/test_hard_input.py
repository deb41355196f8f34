"""Inputs that are unusual but valid: published, with every dot product kept."""

import numpy as np
import pytest

from python_udfs.synthetic import Retrain

pytestmark = pytest.mark.integration


def max_relative_score_error(w, t, w_new, t_new):
    norms = np.outer(np.linalg.norm(w, axis=1), np.linalg.norm(t, axis=1))
    return np.max(np.abs(w_new @ t_new.T - w @ t.T) / norms)


def published(project, version):
    """(users, items) of a published version, ordered by id, float64."""
    _, users = project.embeddings("stabilized_user_embeddings", version)
    _, items = project.embeddings("stabilized_item_embeddings", version)
    return users, items


def as_float32(retrain):
    """The retrain as training writes it (float32), in float64 for the checks."""
    return retrain.users.astype(np.float32).astype(np.float64), retrain.items.astype(
        np.float32
    ).astype(np.float64)


def retrain(users, items):
    return Retrain(np.arange(len(users)), users, np.arange(len(items)), items)


def test_rank_deficient_embeddings_keep_their_width_and_every_score(dbt_project):
    rng = np.random.default_rng(0)
    # W of rank 3 < e = 6; T with a constant column
    users = rng.standard_normal((80, 3)) @ rng.standard_normal((3, 6))
    items = rng.standard_normal((40, 6))
    items[:, 2] = 0.5
    first = retrain(users, items)
    run = dbt_project.build("v1", *dbt_project.write_retrain("v1", first))
    assert run.success, run.output

    runs = dbt_project.table("stabilization_runs")
    assert (runs.loc[0, "rank"], runs.loc[0, "dimension"]) == (3, 6)
    w, t = as_float32(first)
    w_new, t_new = published(dbt_project, "v1")
    assert w_new.shape == (80, 6) and t_new.shape == (40, 6)
    assert max_relative_score_error(w, t, w_new, t_new) < 1e-6
    # the null directions are zero columns after the balanced transform (before rotation)
    transforms = dbt_project.table("stabilization_transforms", order_by="side")
    for row in transforms.itertuples():
        assert np.abs(np.stack(row.transform)[:, 3:]).max() == 0.0


def test_an_ill_conditioned_input_keeps_every_score_to_float32_precision(dbt_project):
    rng = np.random.default_rng(1)
    left, _ = np.linalg.qr(rng.standard_normal((120, 8)))
    right, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    users = left @ np.diag(np.logspace(0, -6, 8)) @ right * 10  # condition number 1e6
    items = rng.standard_normal((50, 8))
    first = retrain(users, items)
    w, t = as_float32(first)
    assert np.linalg.cond(w) == pytest.approx(1e6, rel=0.01)

    run = dbt_project.build("v1", *dbt_project.write_retrain("v1", first))
    assert run.success, run.output
    assert dbt_project.table("stabilization_runs").loc[0, "rank"] == 8
    w_new, t_new = published(dbt_project, "v1")
    assert max_relative_score_error(w, t, w_new, t_new) < 1e-6


def test_an_allowed_dimension_change_pads_with_zero_columns(dbt_project):
    """e = 4, then 6 (wider than its base), then 3 (narrower than its base)."""
    rng = np.random.default_rng(2)
    scores_model = rng.standard_normal((60, 6)), rng.standard_normal((30, 6))
    versions = {}
    for version, dimension in (("v1", 4), ("v2", 6), ("v3", 3)):
        users = scores_model[0][:, :dimension] + 0.01 * rng.standard_normal((60, dimension))
        items = scores_model[1][:, :dimension]
        versions[version] = retrain(users, items)
        run = dbt_project.build(
            version, *dbt_project.write_retrain(version, versions[version]),
            allow_dimension_change=True,
        )
        assert run.success, run.output

    runs = dbt_project.table("stabilization_runs")
    assert runs["dimension"].tolist() == [4, 6, 6]  # v3 is published 6 wide, as its base
    for version, expected_width in (("v1", 4), ("v2", 6), ("v3", 6)):
        w, t = as_float32(versions[version])
        w_new, t_new = published(dbt_project, version)
        assert w_new.shape[1] == t_new.shape[1] == expected_width
        assert max_relative_score_error(w, t, w_new, t_new) < 1e-6
    # v3 (its first 3 dimensions of the same model) lands close to v2
    assert runs.loc[2, "item_cosine_stabilized"] > runs.loc[2, "item_cosine_raw"]
