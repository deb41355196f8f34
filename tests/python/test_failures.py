"""A failing run reports why and never touches what is already published."""

import numpy as np
import pytest
from conftest import PUBLISHED_TABLES

from stabilization_tools.synthetic import Retrain, first_retrain, next_retrain

pytestmark = pytest.mark.integration


def test_python_model_failure_fails_its_node_with_the_traceback(dbt_project):
    retrain = first_retrain(users=50, items=20, dimension=6, seed=0)
    narrow_items = Retrain(retrain.user_ids, retrain.users, retrain.item_ids, retrain.items[:, :4])
    run = dbt_project.build("v1", *dbt_project.write_retrain("v1", narrow_items))
    assert not run.success
    assert "model.embedding_stabilization.int_transforms_solved" in run.output
    assert "Traceback (most recent call last)" in run.output
    assert "user embeddings have dimension 6 but item embeddings have dimension 4" in run.output
    assert "transforms_from_grams" in run.output  # frames inside python_udfs are shown too
    tables = dbt_project.table_names()
    assert not set(PUBLISHED_TABLES) & tables


def test_bad_new_version_is_not_published_and_earlier_versions_survive(dbt_project):
    first = first_retrain(users=60, items=30, dimension=4, seed=0)
    run = dbt_project.build("v1", *dbt_project.write_retrain("v1", first))
    assert run.success, run.output
    before = dbt_project.published_tables()

    second = next_retrain(first, seed=2)
    users = second.users.copy()
    users[3, 1] = np.nan
    poisoned = Retrain(second.user_ids, users, second.item_ids, second.items)
    run = dbt_project.build("v2", *dbt_project.write_retrain("v2", poisoned))
    assert not run.success
    assert "valid_embeddings_stg_retrain__users_embedding" in run.output
    assert dbt_project.published_tables() == before
