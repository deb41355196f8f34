"""The README and docs/ pages as a newcomer follows them: every ``make`` target they
name exists, every script or file they point to is there, every option they give
the backfill is one it takes, every var they pass is one the project declares, and
every relative link (and its #anchor) resolves. What the commands then do is tested
where the suite runs the same thing (the pipeline, backfill, cluster, Connect and
package modules)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import yaml
from conftest import PROJECT_DIR

PAGES = [
    PROJECT_DIR / "README.md",
    PROJECT_DIR / "CHANGELOG.md",
    *sorted((PROJECT_DIR / "docs").glob("*.md")),
]


def code_blocks(page) -> list[str]:
    """The text of a page's fenced code blocks, line continuations joined."""
    blocks = re.findall(r"```[a-z]*\n(.*?)```", page.read_text(), flags=re.DOTALL)
    return [block.replace("\\\n", " ") for block in blocks]


def anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.lstrip("#").strip().lower())
    return text.replace(" ", "-")


def headings(page) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    return {anchor(line) for line in text.splitlines() if line.startswith("#")}


def test_every_make_target_named_exists():
    targets = set(
        re.findall(r"^([a-z][\w-]*):", (PROJECT_DIR / "Makefile").read_text(), re.MULTILINE)
    )
    for page in PAGES:
        for block in code_blocks(page):
            for target in re.findall(r"(?:^|\s)make ([a-z][\w-]*)", block):
                assert target in targets, f"{page.name}: make {target}"


def test_every_script_and_file_named_exists():
    for page in PAGES:
        for block in code_blocks(page):
            # files (with a suffix): folders such as evaluation/out/ are made by the commands
            for path in re.findall(
                r"\b((?:scripts|benchmarks|evaluation|profiles)/[\w/-]+\.[a-z]+)", block
            ):
                assert (PROJECT_DIR / path).exists(), f"{page.name}: {path}"


def test_every_backfill_option_given_is_one_it_takes():
    help_text = subprocess.run(
        [sys.executable, str(PROJECT_DIR / "scripts" / "backfill.py"), "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    taken = set(re.findall(r"(--[a-z][\w-]*)", help_text))
    given = set()
    for page in PAGES:
        for block in code_blocks(page):
            for line in block.splitlines():
                if "backfill" in line:
                    given.update(re.findall(r"\s(--[a-z][\w-]*)", line))
    assert given, "no backfill command found in the docs"
    assert given <= taken, sorted(given - taken)


def test_every_var_passed_is_declared():
    declared = set(yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())["vars"])
    passed = set()
    for page in PAGES:
        for block in code_blocks(page):
            for variables in re.findall(r"--vars '(\{.*?\})'", block, flags=re.DOTALL):
                passed.update(yaml.safe_load(variables))
    assert passed, "no --vars found in the docs"
    assert passed <= declared, sorted(passed - declared)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_relative_link_resolves(page):
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, fragment = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        # a clone anywhere has what the repository holds, nothing beside it
        assert linked.is_relative_to(PROJECT_DIR), f"{page.name}: {target} leaves the repository"
        assert linked.exists(), f"{page.name}: {target}"
        if fragment and linked.suffix == ".md":
            assert fragment in headings(linked), f"{page.name}: {target}"


def test_one_release_version_everywhere_it_is_named():
    """The Python package, the dbt package, the CHANGELOG's latest release, the README's
    compatibility table and the package example's tag name one version."""
    pyproject = (PROJECT_DIR / "pyproject.toml").read_text()  # tomllib: Python 3.11 and later
    version = re.search(r'^version = "(.+)"$', pyproject, re.MULTILINE).group(1)
    dbt_package = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())
    changelog = (PROJECT_DIR / "CHANGELOG.md").read_text()
    released = re.findall(r"^## (\d+\.\d+\.\d+) - \d{4}-\d{2}-\d{2}$", changelog, re.MULTILINE)
    readme = (PROJECT_DIR / "README.md").read_text()
    assert dbt_package["version"] == version
    assert released and released[0] == version, released
    assert f"Release {version} (" in readme
    assert re.findall(r"revision: (v[\d.]+)", readme) == [f"v{version}"]
    assert 'license-files = ["LICENSE"]' in pyproject and (PROJECT_DIR / "LICENSE").exists()
