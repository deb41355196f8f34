"""The rule publication follows (dbt/adapters/sparksession/audits.py), on a small DAG:
publish only if every upstream model holds this version and every error-severity
audit of those models passed after their last build."""

from datetime import datetime, timedelta

import pytest

from dbt.adapters.sparksession.audits import (
    LedgerEntry,
    Node,
    StagedLabels,
    required_audits,
    unaudited,
)

#: source → stg → staged → mart; a check of stg, an audit comparing staged with stg,
#: a warning on staged, a test of the mart (after publication: never required)
NODES = {
    "source.p.input": Node("source", ()),
    "model.p.stg": Node("model", ("source.p.input",)),
    "model.p.staged": Node("model", ("model.p.stg",)),
    "model.p.mart": Node("model", ("model.p.staged",)),
    "test.p.valid_stg": Node("test", ("model.p.stg",)),
    "test.p.same_ids": Node("test", ("model.p.staged", "model.p.stg")),
    "test.p.drift_warning": Node("test", ("model.p.staged",), severity="warn"),
    "test.p.mart_check": Node("test", ("model.p.mart",)),
}
START = datetime(2026, 12, 3, 12)


def at(minutes: int) -> datetime:
    return START + timedelta(minutes=minutes)


def ledger(**entries) -> dict[str, LedgerEntry]:
    """{node: entry}: keyword name → node (``stg`` → model.p.stg, ``valid_stg`` → test.p.…)."""
    kinds = {name.split(".")[-1]: name for name in NODES}
    return {kinds[name]: entry for name, entry in entries.items()}


def check(command="build", selected=(), entries=None, version="v2", staged=None):
    return unaudited("model.p.mart", NODES, version, command, selected, entries or {}, staged)


GOOD = ledger(
    stg=LedgerEntry("v2", "success", at(0)),
    valid_stg=LedgerEntry("v2", "pass", at(0)),
    staged=LedgerEntry("v2", "success", at(1), invocation_id="run-1"),
    same_ids=LedgerEntry("v2", "pass", at(2)),
)


def test_only_error_audits_of_upstream_models_are_required():
    assert required_audits(["model.p.stg", "model.p.staged"], NODES) == {
        "test.p.same_ids": ("model.p.staged", "model.p.stg"),
        "test.p.valid_stg": ("model.p.stg",),
    }


def test_a_whole_build_needs_no_ledger():
    everything = [name for name in NODES if not name.startswith("source")]
    assert check("build", everything) == []


def test_dbt_run_publishes_nothing_its_audits_did_not_check():
    assert check("run", ["model.p.stg", "model.p.staged", "model.p.mart"], GOOD) == [
        "same_ids: not run since staged and stg were built",
        "valid_stg: not run since stg was built",
    ]


def test_audits_passed_in_earlier_invocations_after_the_builds_publish():
    assert check("run", ["model.p.mart"], GOOD) == []
    assert check("build", ["model.p.mart", "test.p.mart_check"], GOOD) == []


@pytest.mark.parametrize(
    ("changed", "problem"),
    [
        ({"same_ids": LedgerEntry("v2", "fail", at(2), 3)}, "same_ids: FAILED (fail, 3 failures)"),
        (
            {"same_ids": LedgerEntry("v2", "pass", at(0))},
            "same_ids: not run since staged was built",
        ),
        ({"same_ids": LedgerEntry("v1", "pass", at(2))}, "same_ids: last run on version v1"),
        ({"staged": LedgerEntry("v3", "success", at(1))}, "staged: holds version v3's rows"),
        ({"staged": LedgerEntry("v2", "error", at(1))}, "staged: its last build failed (error)"),
    ],
)
def test_what_the_ledger_says_against_publishing(changed, problem):
    problems = check("run", ["model.p.mart"], {**GOOD, **ledger(**changed)})
    assert [p.split(" (its last build)")[0] for p in problems] == [problem]


def test_nothing_recorded_is_nothing_audited():
    assert check("run", ["model.p.mart"], {}) == [
        "staged: no build recorded",
        "stg: no build recorded",
        "same_ids: never run",
        "valid_stg: never run",
    ]


def test_a_test_selected_in_dbt_run_did_not_run():
    selected = ["model.p.staged", "test.p.same_ids", "model.p.mart"]
    assert check("run", selected, GOOD) == ["same_ids: not run since staged was built"]
    assert check("build", selected, GOOD) == []


@pytest.mark.parametrize(
    ("labels", "problems"),
    [
        (StagedLabels("v2", "run-1"), []),
        (StagedLabels(None, None), []),  # staged by an earlier release: the ledger decides
        (StagedLabels("v3", "run-9"), ["staged: holds version v3's rows"]),
        (
            StagedLabels("v2", "run-9"),
            ["staged: staged by run run-9, which recorded no build (killed before it finished?)"],
        ),
    ],
)
def test_the_rows_published_are_those_the_recorded_build_staged(labels, problems):
    """A run killed after staging rows, before recording its build, left an audit
    relation the ledger's entries say nothing about."""
    assert check("run", ["model.p.mart"], GOOD, staged={"model.p.staged": labels}) == problems
