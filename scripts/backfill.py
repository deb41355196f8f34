"""Stabilize a history of retrains in order, each aligned to the one before.

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

from dbt_show import dbt_show

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


@dataclass
class Plan:
    """What to build: versions in order, and how each one's inputs are read."""

    versions: list[str]
    users: str
    items: str
    partition_column: str | None = None
    extra_vars: dict = field(default_factory=dict)

    def build_vars(self, version: str, base_version: str | None) -> dict:
        variables = {
            **self.extra_vars,
            "embedding_version": version,
            "user_embeddings": self.users.replace("{version}", version),
            "item_embeddings": self.items.replace("{version}", version),
        }
        if self.partition_column:
            variables["embeddings_filter"] = f"`{self.partition_column}` = '{version}'"
        if base_version is not None:
            variables["base_version"] = base_version
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


def build_version(variables: dict, dbt_args: list[str], bar) -> tuple[bool, str]:
    """One `dbt build`; (success, dbt's error messages)."""
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
        return True, ""
    messages = [str(result.exception)] if result.exception is not None else []
    for node_result in getattr(result.result, "results", None) or []:
        if str(node_result.status) in ("error", "fail") and node_result.message:
            messages.append(f"{node_result.node.name}: {node_result.message}")
    return False, "\n".join(messages)


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


def format_summary(runs, statuses: dict[str, str]) -> str:
    runs = runs.assign(run=runs["version"].map(statuses), base=runs["base"].fillna("-"))
    formats = {"stabilized cosine": "{:.4f}", "max dot err": "{:.2e}"}
    text = runs.to_string(
        index=False,
        na_rep="-",
        formatters={name: fmt.format for name, fmt in formats.items()},
    )
    return text


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
    args = parser.parse_args(argv)
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
        extra_vars=yaml.safe_load(args.vars) or {},
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
            base = plan.versions[position - 1] if position > 0 else None
            ok, errors = build_version(plan.build_vars(version, base), dbt_args, bar)
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
    built = [version for version, status in statuses.items() if status == "built"]
    print(
        f"built {len(built)} of {len(plan.versions)} versions in {time.monotonic() - started:.0f} s"
    )
    done = [version for version in plan.versions if statuses.get(version, "failed") != "failed"]
    if done:
        print(format_summary(summary(done, dbt_args), statuses))
    return 1 if "failed" in statuses.values() else 0


if __name__ == "__main__":
    sys.exit(main())
