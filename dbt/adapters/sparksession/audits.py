"""Publication enforces its audits, however dbt is run.

A published table's rows become visible only if every error-severity data test
upstream of it (the input checks, the orthogonality and losslessness audits, the
ids of the staged rows) passed on exactly the relations the publication reads.
dbt's own ordering ensures that inside one ``dbt build``; it does not across
invocations (``dbt run`` runs no test; orchestrators run ``dbt run --select
<model>`` and ``dbt test --select <model>`` in separate processes, or ``dbt
build --select`` on part of the DAG).

So each invocation records, at its end, which of the project's models it built
and which tests passed or failed, for which version: the **audit ledger**
(``stabilization_audits``, an append-only table beside the published ones, see
the ``record_audits`` macro). Before a publishing model writes anything it asks
:func:`unaudited` whether every audit it depends on holds for what it is about
to publish:

- every model upstream of it was last built for this version, successfully
  (in this invocation, or as the ledger says);
- every error-severity test of those models passed **after** the last build of
  each model it reads: in this invocation (``dbt build`` runs a model's tests
  before its children, and skips the children when one fails), or, as the
  ledger records, in a later invocation than those builds;
- every published table upstream of it (``stabilization_runs`` reads the
  three others) holds what its parents hold now: a rebuild interrupted between
  two published tables is not summed up as published until each is republished.

A test that ran before one of its models was rebuilt says nothing about the
rebuilt rows; a model last built for another version holds that version's rows.
Either way the publication refuses, naming each audit and the command that runs
it. This module holds that decision as a pure function of the DAG, this
invocation's selection and the ledger's latest entries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import NamedTuple

#: Statuses of a dbt test that let publication go on (``warn``: an error-severity
#: test under its error threshold, as ``dbt build`` lets its children run).
PASSED = frozenset({"pass", "warn"})


class Node(NamedTuple):
    """What publication needs to know of one dbt node of the project."""

    resource_type: str  # model or test
    parents: tuple[str, ...]  # unique ids of the nodes it depends on
    severity: str = "error"  # a test's severity
    publishes: bool = False  # a published table (a mart): its rows are what readers read


class LedgerEntry(NamedTuple):
    """The latest entry of the audit ledger for one node (any version)."""

    embedding_version: str
    status: str  # a model: success or error; a test: pass, warn, fail or error
    recorded_at: datetime
    failures: int | None = None
    invocation_id: str | None = None


class StagedLabels(NamedTuple):
    """What an audit relation of write-audit-publish says it holds (its table
    properties, set when its rows were staged; None: not labelled)."""

    embedding_version: str | None
    run: str | None  # the dbt invocation that staged the rows


def upstream_models(publisher: str, nodes: Mapping[str, Node]) -> list[str]:
    """The project's models ``publisher`` reads, directly or not (itself excluded)."""
    found: dict[str, None] = {}
    pending = list(nodes[publisher].parents)
    while pending:
        node_id = pending.pop()
        node = nodes.get(node_id)
        if node is None or node.resource_type != "model" or node_id in found:
            continue  # a source, a macro, a node of another package
        found[node_id] = None
        pending.extend(node.parents)
    return sorted(found)


def required_audits(models: Iterable[str], nodes: Mapping[str, Node]) -> dict[str, tuple[str, ...]]:
    """{test: the models it reads} for the error-severity tests of ``models`` (tests of
    any other node, a published table's drift alerts among them, are left out)."""
    upstream = set(models)
    audits = {}
    for node_id, node in nodes.items():
        if node.resource_type != "test" or node.severity.lower() != "error":
            continue
        read = tuple(
            parent for parent in node.parents if nodes.get(parent, node).resource_type == "model"
        )
        if read and set(read) <= upstream:
            audits[node_id] = read
    return dict(sorted(audits.items()))


def unaudited(
    publisher: str,
    nodes: Mapping[str, Node],
    version: str,
    command: str,
    selected: Iterable[str],
    ledger: Mapping[str, LedgerEntry],
    staged: Mapping[str, StagedLabels] | None = None,
) -> list[str]:
    """Why ``publisher`` may not publish ``version`` now: one line per model or audit
    that does not hold (empty: it may).

    ``command`` is dbt's (``build``, ``run``, …) and ``selected`` this invocation's
    selected nodes: a selected model was built in it, before ``publisher`` (dbt runs
    a node after its parents, and not at all when one failed); a selected test ran
    before ``publisher`` only in ``dbt build``. ``ledger`` holds the latest entry of
    each node recorded by earlier invocations. ``staged`` labels the audit relations
    whose rows ``publisher`` publishes: they must hold ``version``, staged by the
    build the ledger (or this invocation) records — not by a run killed before it
    recorded anything.
    """
    selected = set(selected)
    models = upstream_models(publisher, nodes)
    built_now = built_in_this_invocation(models, command, selected)
    problems = []
    for model, labels in (staged or {}).items():
        if labels.embedding_version not in (None, version):
            problems.append(f"{short(model)}: holds version {labels.embedding_version}'s rows")
        elif (
            model not in built_now
            and labels.run is not None
            and model in ledger
            and ledger[model].invocation_id != labels.run
        ):
            problems.append(
                f"{short(model)}: staged by run {labels.run}, which recorded no build "
                "(killed before it finished?)"
            )
    for model in models:
        if model in built_now:
            continue
        entry = ledger.get(model)
        if entry is None:
            problems.append(f"{short(model)}: no build recorded")
        elif entry.status != "success":
            problems.append(f"{short(model)}: its last build failed ({entry.status})")
        elif entry.embedding_version != version:
            problems.append(
                f"{short(model)}: holds version {entry.embedding_version}'s rows (its last build)"
            )
    for mart in models:
        if nodes[mart].publishes and not up_to_date(mart, nodes, version, built_now, ledger):
            problems.append(
                f"{short(mart)}: has not published this version's rows since they were built"
                " (run it first)"
            )
    for test, read in required_audits(models, nodes).items():
        if command == "build" and test in selected:
            continue  # ran before this node, and passed: dbt build skips it otherwise
        rebuilt = sorted(short(model) for model in read if model in built_now)
        entry = ledger.get(test)
        if rebuilt:
            problems.append(f"{short(test)}: not run since {listed(rebuilt)} built")
        elif entry is None:
            problems.append(f"{short(test)}: never run")
        elif entry.embedding_version != version:
            problems.append(f"{short(test)}: last run on version {entry.embedding_version}")
        elif entry.status not in PASSED:
            failures = f", {entry.failures} failures" if entry.failures else ""
            problems.append(f"{short(test)}: FAILED ({entry.status}{failures})")
        else:
            stale = sorted(
                short(model)
                for model in read
                if model in ledger and ledger[model].recorded_at > entry.recorded_at
            )
            if stale:
                problems.append(f"{short(test)}: not run since {listed(stale)} built")
    return problems


def built_in_this_invocation(
    models: Iterable[str], command: str, selected: Iterable[str]
) -> set[str]:
    """The ``models`` this invocation built, successfully, before the node asking."""
    selected = set(selected)
    return {model for model in models if command in ("build", "run") and model in selected}


def up_to_date(
    model: str,
    nodes: Mapping[str, Node],
    version: str,
    built_now: set[str],
    ledger: Mapping[str, LedgerEntry],
) -> bool:
    """Whether ``model`` holds what its parents hold now, for ``version``: built in this
    invocation (after its parents), or last built successfully for ``version`` no earlier
    than the last build of each model it reads (an invocation records all its builds at
    once, at its end: a parent built in the same invocation is not later)."""
    if model in built_now:
        return True
    entry = ledger.get(model)
    if entry is None or entry.status != "success" or entry.embedding_version != version:
        return False
    for parent in nodes[model].parents:
        if nodes.get(parent, Node("source", ())).resource_type != "model":
            continue
        if parent in built_now:
            return False
        if parent in ledger and ledger[parent].recorded_at > entry.recorded_at:
            return False
    return True


def changes_published_rows(
    publisher: str,
    nodes: Mapping[str, Node],
    version: str,
    command: str,
    selected: Iterable[str],
    ledger: Mapping[str, LedgerEntry],
) -> bool:
    """Whether publishing ``publisher`` now may change the rows readers see: not when its
    last publication of ``version`` already holds what its parents hold (a mart rerun
    alone, an orchestrator's retry of a task that had succeeded)."""
    built_now = built_in_this_invocation(nodes[publisher].parents, command, selected)
    return not up_to_date(publisher, nodes, version, built_now, ledger)


def listed(names: list[str]) -> str:
    """``a was`` / ``a and b were``."""
    if len(names) == 1:
        return f"{names[0]} was"
    return f"{', '.join(names[:-1])} and {names[-1]} were"


def short(unique_id: str) -> str:
    """A node's name as dbt prints it: ``model.pkg.name`` → ``name`` (a test's
    name carries its arguments, ``valid_ids_stg_retrain__users_id``)."""
    parts = unique_id.split(".")
    return parts[2] if len(parts) > 2 else unique_id
