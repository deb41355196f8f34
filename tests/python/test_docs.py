"""Every resource of the project is documented (read from dbt's manifest after `dbt parse`)."""

import json

import pytest

PACKAGE = "embedding_stabilization"


@pytest.fixture(scope="module")
def manifest(spark_home, tmp_path_factory):
    from conftest import DbtProject

    project = DbtProject(
        "docs", tmp_path_factory.mktemp("docs") / "target", tmp_path_factory.mktemp("data")
    )
    run = project.invoke("parse")
    assert run.success, run.output
    return json.loads((project.target_path / "manifest.json").read_text())


def own(resources: dict) -> dict:
    return {key: node for key, node in resources.items() if node.get("package_name") == PACKAGE}


def undocumented(resources: dict) -> list[str]:
    """Resources, and their columns, without a description."""
    missing = []
    for key, node in own(resources).items():
        if node.get("resource_type") == "operation":
            continue  # a hook (on-run-end): dbt gives hooks no description
        if not (node.get("description") or "").strip():
            missing.append(key)
        for name, column in (node.get("columns") or {}).items():
            if not (column.get("description") or "").strip():
                missing.append(f"{key}.{name}")
    return missing


@pytest.mark.parametrize("kind", ["nodes", "sources", "exposures", "unit_tests"])
def test_every_resource_and_column_is_described(manifest, kind):
    assert own(manifest[kind]), f"no {kind} found in the manifest"
    assert undocumented(manifest[kind]) == []


def test_every_data_test_is_described(manifest):
    tests = {
        key: node for key, node in own(manifest["nodes"]).items() if node["resource_type"] == "test"
    }
    assert len(tests) >= 12
    assert [key for key, node in tests.items() if not node["description"].strip()] == []


def test_every_macro_and_its_arguments_are_described(manifest):
    macros = own(manifest["macros"])
    assert len(macros) >= 20
    missing = [key for key, macro in macros.items() if not macro["description"].strip()]
    missing += [
        f"{key}({argument['name']})"
        for key, macro in macros.items()
        for argument in macro["arguments"]
        if not (argument.get("description") or "").strip()
    ]
    assert missing == []


def test_exposures_read_through_the_reader_views(manifest):
    """Consumers read the reader views, which never show a version being rebuilt."""
    consumed = {
        ref
        for exposure in own(manifest["exposures"]).values()
        for ref in exposure["depends_on"]["nodes"]
    }
    views = {
        f"model.{PACKAGE}.{name}"
        for name in (
            "published_user_embeddings",
            "published_item_embeddings",
            "published_transforms",
            "published_versions",
        )
    }
    assert consumed == views
