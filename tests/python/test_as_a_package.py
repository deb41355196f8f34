"""The project as a dbt package of another dbt project (the usual way to adopt it).

A fresh dbt project in a temporary folder lists this one in its packages.yml
(``local:``), has its own profile (this suite's local session) and its own
models, one of them reading a published table of the package. ``dbt deps``,
then two versions built through the package's models with the vars, then the
user's own models. The package's dbt unit tests stay out of the user's builds
unless the user turns them on.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from conftest import PROJECT_DIR, profile_target

from stabilization_tools.synthetic import first_retrain, next_retrain, write_parquet

pytestmark = pytest.mark.integration

PACKAGE = "embedding_stabilization"
SCHEMA = "my_analytics"


class UserProject:
    """dbt commands in the user's project folder, with its own profile."""

    def __init__(self, folder):
        self.folder = folder

    def invoke(self, *arguments: str):
        from dbt.cli.main import dbtRunner

        folder = str(self.folder)
        with pytest.MonkeyPatch.context() as environment:
            for name, value in {
                "DBT_SCHEMA": SCHEMA,
                "DBT_PROFILES_DIR": folder,
                "DBT_TARGET_PATH": f"{folder}/target",
                "DBT_LOG_PATH": f"{folder}/logs",
            }.items():
                environment.setenv(name, value)
            return dbtRunner().invoke([*arguments, "--project-dir", folder])

    def nodes(self, *arguments: str) -> list[str]:
        """Unique ids that ``dbt ls`` selects."""
        listed = self.invoke("ls", "--output", "json", "--output-keys", "unique_id", *arguments)
        assert listed.success, listed.exception
        return [json.loads(line)["unique_id"] for line in listed.result]


@pytest.fixture(scope="module")
def user_project(spark_home, tmp_path_factory):
    folder = tmp_path_factory.mktemp("my_analytics")
    (folder / "dbt_project.yml").write_text(
        yaml.safe_dump(
            {
                "name": "my_analytics",
                "version": "1.0.0",
                "config-version": 2,
                "profile": "my_analytics",
                "model-paths": ["models"],
                "flags": {"send_anonymous_usage_stats": False},
            }
        )
    )
    (folder / "packages.yml").write_text(
        yaml.safe_dump({"packages": [{"local": str(PROJECT_DIR)}]})
    )
    target = {**profile_target("local"), "schema": SCHEMA}
    (folder / "profiles.yml").write_text(
        yaml.safe_dump({"my_analytics": {"target": "dev", "outputs": {"dev": target}}})
    )
    models = folder / "models"
    models.mkdir()
    (models / "my_orders.sql").write_text("select 1 as order_id, 7 as item_id\n")
    (models / "my_item_vectors.sql").write_text(
        "select orders.order_id, items.embedding\n"
        "from {{ ref('my_orders') }} as orders\n"
        f"inner join {{{{ ref('{PACKAGE}', 'stabilized_item_embeddings') }}}} as items\n"
        "    on orders.item_id = items.id\n"
        "where items.embedding_version = 'v2'\n"
    )
    project = UserProject(folder)
    deps = project.invoke("deps")
    assert deps.success, deps.exception
    return project


@pytest.fixture(scope="module")
def built(user_project):
    """Two versions built through the package, selected by package."""
    first = first_retrain(users=60, items=30, dimension=4, seed=0)
    retrains = {"v1": first, "v2": next_retrain(first, seed=1)}
    for version, retrain in retrains.items():
        data = user_project.folder / "data" / version
        write_parquet(data / "users", retrain.user_ids, retrain.users)
        write_parquet(data / "items", retrain.item_ids, retrain.items)
        variables = {
            "embedding_version": version,
            "user_embeddings": f"parquet.`{data / 'users'}`",
            "item_embeddings": f"parquet.`{data / 'items'}`",
        }
        run = user_project.invoke(
            "build", "--select", f"package:{PACKAGE}", "--vars", json.dumps(variables)
        )
        assert run.success, run.exception or [r.message for r in run.result if r.message]
    return retrains


def test_two_versions_built_through_the_package_are_aligned_and_lossless(built):
    from conftest import spark_session

    runs = (
        spark_session()
        .sql(f"select * from {SCHEMA}.stabilization_runs order by embedding_version")
        .toPandas()
    )
    assert runs["embedding_version"].tolist() == ["v1", "v2"]
    assert runs["base_version"].tolist() == [None, "v1"]
    assert runs["max_dot_product_error"].max() < 1e-5
    assert runs.loc[1, "item_cosine_stabilized"] > 0.99 > runs.loc[1, "item_cosine_raw"]


def test_the_users_own_models_build_beside_the_package(user_project, built):
    from conftest import spark_session

    run = user_project.invoke("build", "--exclude", f"package:{PACKAGE}")
    assert run.success, run.exception or [r.message for r in run.result if r.message]
    built = {r.node.name for r in run.result if r.node.resource_type != "operation"}
    assert built == {"my_orders", "my_item_vectors"}
    rows = spark_session().sql(f"select * from {SCHEMA}.my_item_vectors").collect()
    published = (
        spark_session()
        .sql(
            f"select embedding from {SCHEMA}.stabilized_item_embeddings "
            "where embedding_version = 'v2' and id = 7"
        )
        .collect()
    )
    assert len(rows) == 1
    np.testing.assert_array_equal(rows[0]["embedding"], published[0]["embedding"])


def test_the_packages_unit_tests_stay_out_of_the_users_builds_unless_turned_on(user_project):
    assert [n for n in user_project.nodes() if n.startswith("unit_test.")] == []
    # turned on as dbt configures a package: in the user's dbt_project.yml
    settings = user_project.folder / "dbt_project.yml"
    before = settings.read_text()
    turned_on = {**yaml.safe_load(before), "unit_tests": {PACKAGE: {"+enabled": True}}}
    settings.write_text(yaml.safe_dump(turned_on))
    try:
        listed = user_project.nodes("--resource-type", "unit_test")
    finally:
        settings.write_text(before)
    declared = [
        f"unit_test.{PACKAGE}.{test['model']}.{test['name']}"
        for models in (PROJECT_DIR / "models").rglob("*.yml")
        for test in (yaml.safe_load(models.read_text()) or {}).get("unit_tests", [])
    ]
    assert declared and sorted(listed) == sorted(declared), listed
