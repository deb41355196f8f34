"""Render the HTML report of the published versions in a target schema.

    make report                       (or: .venv/bin/python scripts/report.py)
    .venv/bin/python scripts/report.py --output report.html --target cluster

Reads `stabilization_runs` and the singular values in `stabilization_transforms`
through dbt (`dbt show`, so the profile and target are the ones `dbt build`
used) and writes one self-contained HTML page with charts.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR))

from python_udfs.report import render_report

RUNS_SQL = "select * from {{ ref('stabilization_runs') }}"
SPECTRA_SQL = (
    "select embedding_version, to_json(singular_values) as singular_values"
    " from {{ ref('stabilization_transforms') }} where side = 'items'"
)


def dbt_show(sql: str, dbt_args: list[str]) -> pd.DataFrame:
    """All rows of an inline query, run by `dbt show` on the project's target."""
    from dbt.cli.main import dbtRunner

    result = dbtRunner().invoke(
        [
            "show",
            "--inline",
            sql,
            "--limit",
            "-1",
            # the rows are returned, not printed
            "--log-level",
            "none",
            "--project-dir",
            str(PROJECT_DIR),
            *dbt_args,
        ]
    )
    if not result.success:
        results = getattr(result.result, "results", None) or []
        detail = result.exception or "; ".join(str(r.message) for r in results if r.message)
        raise SystemExit(f"dbt show failed (is anything published in this target schema?): {detail}")
    table = result.result.results[0].agate_table
    frame = pd.DataFrame([list(row) for row in table.rows], columns=list(table.column_names))
    return frame


def report_frames(dbt_args: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows of stabilization_runs, and each version's singular values."""
    runs = dbt_show(RUNS_SQL, dbt_args)
    for column in runs.columns:  # agate gives Decimals for numbers
        if runs[column].map(lambda value: hasattr(value, "as_integer_ratio")).any():
            runs[column] = pd.to_numeric(runs[column], errors="coerce")
    spectra = dbt_show(SPECTRA_SQL, dbt_args)
    spectra["singular_values"] = spectra["singular_values"].map(json.loads)
    return runs, spectra


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output", type=Path, default=PROJECT_DIR / "target" / "stabilization_report.html"
    )
    parser.add_argument("--title", default="Embedding stabilization")
    parser.add_argument("--target", help="dbt target (default: the profile's)")
    args = parser.parse_args(argv)
    dbt_args = ["--target", args.target] if args.target else []
    runs, spectra = report_frames(dbt_args)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render_report(runs, spectra, args.title), encoding="utf-8")
    print(f"wrote {args.output} ({len(runs)} versions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
