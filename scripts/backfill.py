"""Stabilize a history of retrains in order, each aligned to the one before (or to a
version another run, such as the daily build, published in between).

    make backfill ARGS="--users warehouse.user_emb --items warehouse.item_emb --partition-column ds"
    .venv/bin/python scripts/backfill.py --users warehouse.user_emb --items warehouse.item_emb \\
        --partition-column ds --from 2026-09-01 --to 2026-11-22
    .venv/bin/python scripts/backfill.py --versions run41 run42 run43 \\
        --users 'parquet.`/data/{version}/users`' --items 'parquet.`/data/{version}/items`'

Which versions: the distinct values of a partition column present in both inputs
(sorted, optionally between --from and --to), each read with the filter
`<column> = '<value>'`; or a list (--versions), each read from the relations
with `{version}` replaced, or through a partition column when one is given.

Every version is one `dbt build` through dbt's programmatic API in this one
process, so Spark starts once. Versions already published are skipped unless
--rebuild; the first failure stops the backfill with dbt's error, and every
version published before it stays published: run the same command again to
resume.

The summary lists each version's drift alerts (the tests on stabilization_runs,
which warn by default) and prints their messages after the table;
--fail-on-alert makes an alert stop the backfill at the version that raised
it (that version is published: the alerts read its published row).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR / "scripts"))

from dbt_show import dbt_show, use_project_profiles

PUBLISHED_SQL = """
{%- set runs = adapter.get_relation(database=none, schema=target.schema,
                                    identifier='stabilization_runs') -%}
{%- if runs is none -%}
select cast(null as string) as embedding_version where false
{%- else -%}
select embedding_version from {{ runs }}
{%- endif -%}
"""

SUMMARY_COLUMNS = {
    "embedding_version": "version",
    "base_version": "base",
    "rows": "rows",
    "aligned_ids": "aligned ids",
    "mean_cosine_stabilized": "stabilized cosine",
    "max_dot_product_error": "max dot err",
}

#: the var that makes a drift alert fail its build (README: Drift alerts)
FAIL_ON_ALERT_VARS = {"drift_alert_severity": "error"}


@dataclass
class Plan:
    """What to build: versions in order, and how each one's inputs are read."""

    versions: list[str]
    users: str
    items: str
    partition_column: str | None = None
    extra_vars: dict = field(default_factory=dict)

    def build_vars(self, version: str) -> dict:
        """dbt's vars for one version. No base version is given: each build aligns to
        the latest version published when it runs (its recorded base for a version
        published before), which is the one before it in the plan unless another run
        published a version in between (the daily build beside a backfill): the chain
        then goes through that version, one line, never a fork."""
        variables = {
            **self.extra_vars,
            "embedding_version": version,
            "user_embeddings": self.users.replace("{version}", version),
            "item_embeddings": self.items.replace("{version}", version),
        }
        if self.partition_column:
            variables["embeddings_filter"] = f"`{self.partition_column}` = '{version}'"
        return variables


def partition_values(
    relation: str, column: str, dbt_args: list[str], start: str | None, end: str | None
) -> list[str]:
    """Distinct values of a partition column, in the column's own order."""
    bounds = [f"`{column}` >= '{start}'" if start else "", f"`{column}` <= '{end}'" if end else ""]
    where = " and ".join(bound for bound in bounds if bound) or "true"
    sql = (
        f"select cast(`{column}` as string) as version from {relation}"
        f" where {where} group by `{column}` order by `{column}`"
    )
    frame = dbt_show(sql, dbt_args, f" (reading the partitions of {relation})")
    return [str(value) for value in frame["version"]]


def planned_versions(args, dbt_args: list[str]) -> list[str]:
    if args.versions:
        return list(args.versions)
    users = partition_values(args.users, args.partition_column, dbt_args, args.start, args.end)
    items = set(partition_values(args.items, args.partition_column, dbt_args, args.start, args.end))
    one_sided = [version for version in users if version not in items]
    one_sided += sorted(items.difference(users))
    if one_sided:
        print(f"skipped, in one input only: {', '.join(one_sided)}", file=sys.stderr)
    return [version for version in users if version in items]


def published_versions(dbt_args: list[str]) -> set[str]:
    return set(dbt_show(PUBLISHED_SQL, dbt_args)["embedding_version"].astype(str))


class StageReporter:
    """A dbt callback: shows the node dbt is running as the progress bar's stage."""

    def __init__(self, bar):
        self.bar = bar

    def __call__(self, event) -> None:
        if event.info.name == "NodeStart":
            self.bar.set_postfix_str(event.data.node_info.node_name, refresh=True)


def build_version(variables: dict, dbt_args: list[str], bar) -> tuple[bool, str, list[str]]:
    """One `dbt build`; (success, dbt's error messages, the nodes that failed)."""
    from dbt.cli.main import dbtRunner

    result = dbtRunner(callbacks=[StageReporter(bar)]).invoke(
        [
            "build",
            "--exclude-resource-type",
            "unit_test",
            "--vars",
            json.dumps(variables),
            # dbt's own lines would break the progress bar; they are in logs/dbt.log
            "--log-level",
            "none",
            "--log-level-file",
            "debug",
            "--project-dir",
            str(PROJECT_DIR),
            *dbt_args,
        ]
    )
    if result.success:
        return True, "", []
    messages = [str(result.exception)] if result.exception is not None else []
    failed = []
    for node_result in getattr(result.result, "results", None) or []:
        if str(node_result.status) in ("error", "fail"):
            failed.append(node_result.node.name)
            if node_result.message:
                messages.append(f"{node_result.node.name}: {node_result.message}")
    if result.exception is not None:
        failed.append("")  # not a node's failure
    return False, "\n".join(messages), failed


def summary(versions: list[str], dbt_args: list[str]):
    """The published runs of the backfilled versions, one row each."""
    listed = ", ".join(f"'{version}'" for version in versions)
    runs = dbt_show(
        "select embedding_version, base_version, users + items as rows, aligned_ids,"
        " mean_cosine_stabilized, max_dot_product_error"
        " from {{ ref('stabilization_runs') }}"
        f" where embedding_version in ({listed})",
        dbt_args,
    )
    order = {version: position for position, version in enumerate(versions)}
    runs = runs.sort_values("embedding_version", key=lambda column: column.map(order))
    return runs.rename(columns=SUMMARY_COLUMNS)


def drift_alerts(versions: list[str], dbt_args: list[str]):
    """The drift alerts the backfilled versions raised: version, alert, message."""
    listed = ", ".join(f"'{version}'" for version in versions)
    alerts = dbt_show(
        "select embedding_version, alert, message"
        " from ({{ drift_alerts(ref('stabilization_runs')) }}) as alerts"
        f" where embedding_version in ({listed})",
        dbt_args,
    )
    order = {version: position for position, version in enumerate(versions)}
    alerts = alerts.assign(position=alerts["embedding_version"].map(order))
    return alerts.sort_values(["position", "alert"]).drop(columns="position")


def format_summary(runs, statuses: dict[str, str], alerts) -> str:
    """The summary table, and the message of each drift alert raised after it."""
    raised: dict[str, list[str]] = {}
    for row in alerts.itertuples():
        raised.setdefault(row.embedding_version, []).append(row.alert)
    runs = runs.assign(
        alerts=runs["version"].map(lambda version: ", ".join(raised.get(version, [])) or "-"),
        run=runs["version"].map(statuses),
        base=runs["base"].fillna("-"),
    )
    formats = {"stabilized cosine": "{:.4f}", "max dot err": "{:.2e}"}
    text = runs.to_string(
        index=False,
        na_rep="-",
        formatters={name: fmt.format for name, fmt in formats.items()},
    )
    if raised:
        count = sum(len(names) for names in raised.values())
        text += f"\n\n{count} drift alert{'s' if count > 1 else ''} in {len(raised)} of {len(runs)} versions:"
        text += "".join(f"\n  {message}" for message in alerts["message"])
    return text


def alert_stopped(failed_nodes: list[str]) -> bool:
    """Whether a build failed only on drift alerts (its version is then published)."""
    return bool(failed_nodes) and all(name.startswith("drift_alert_") for name in failed_nodes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--users", required=True, help="user_embeddings relation ({version} allowed)"
    )
    parser.add_argument(
        "--items", required=True, help="item_embeddings relation ({version} allowed)"
    )
    parser.add_argument("--versions", nargs="+", help="versions to build, in this order")
    parser.add_argument("--partition-column", help="column whose values are the versions (e.g. ds)")
    parser.add_argument("--from", dest="start", help="first partition value to build")
    parser.add_argument("--to", dest="end", help="last partition value to build")
    parser.add_argument("--rebuild", action="store_true", help="rebuild published versions too")
    parser.add_argument("--vars", default="{}", help="more dbt vars (YAML/JSON), for every version")
    parser.add_argument("--target", help="dbt target (default: the profile's)")
    parser.add_argument(
        "--fail-on-alert",
        action="store_true",
        help="stop at the first version that raises a drift alert (exit 1)",
    )
    args = parser.parse_args(argv)
    use_project_profiles()
    if not args.versions and not args.partition_column:
        parser.error("give --versions, or --partition-column to read them from the inputs")
    if args.versions and (args.start or args.end):
        parser.error("--from and --to select partition values: not with --versions")

    import yaml
    from tqdm import tqdm

    dbt_args = ["--target", args.target] if args.target else []
    plan = Plan(
        versions=planned_versions(args, dbt_args),
        users=args.users,
        items=args.items,
        partition_column=args.partition_column,
        extra_vars={
            **(yaml.safe_load(args.vars) or {}),
            **(FAIL_ON_ALERT_VARS if args.fail_on_alert else {}),
        },
    )
    if not plan.versions:
        print("no version to build", file=sys.stderr)
        return 1
    published = set() if args.rebuild else published_versions(dbt_args)

    statuses = {version: "published before" for version in plan.versions if version in published}
    to_build = [version for version in plan.versions if version not in published]
    if statuses:
        print(f"{len(statuses)} of {len(plan.versions)} versions published before: skipped")
    started = time.monotonic()
    # the bar counts the versions to build, so that its rate and ETA are those of builds
    with tqdm(total=len(to_build), unit="version", dynamic_ncols=True) as bar:
        for version in to_build:
            position = plan.versions.index(version)
            bar.set_description(f"{position + 1}/{len(plan.versions)} {version}")
            ok, errors, failed_nodes = build_version(plan.build_vars(version), dbt_args, bar)
            if not ok and args.fail_on_alert and alert_stopped(failed_nodes):
                statuses[version] = "alert"
                break
            if not ok:
                statuses[version] = "failed"
                break
            statuses[version] = "built"
            bar.update(1)
    if "failed" in statuses.values():
        print(
            f"version {version} failed; the versions before it stay published.\n"
            f"{errors}\n(dbt's full log: {Path(os.environ.get('DBT_LOG_PATH', 'logs')) / 'dbt.log'})",
            file=sys.stderr,
        )
    if "alert" in statuses.values():
        print(
            f"version {version} raised a drift alert (--fail-on-alert): it is published; "
            "the backfill stops here.",
            file=sys.stderr,
        )
    built = [version for version, status in statuses.items() if status in ("built", "alert")]
    print(
        f"built {len(built)} of {len(plan.versions)} versions in {time.monotonic() - started:.0f} s"
    )
    done = [version for version in plan.versions if statuses.get(version, "failed") != "failed"]
    if done:
        print(format_summary(summary(done, dbt_args), statuses, drift_alerts(done, dbt_args)))
    return 1 if {"failed", "alert"} & set(statuses.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
