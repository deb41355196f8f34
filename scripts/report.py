"""Render the HTML report of the published versions in a target schema.

    make report                       (or: .venv/bin/python scripts/report.py)
    .venv/bin/python scripts/report.py --output report.html --target cluster

Reads `stabilization_runs`, the singular values in `stabilization_transforms`
and the drift alerts (macro `drift_alerts`, with the project's thresholds)
through dbt (`dbt show`, so the profile, target and vars are the ones
`dbt build` used) and writes one self-contained HTML page with charts.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR))
sys.path.insert(0, str(PROJECT_DIR / "scripts"))

from dbt_show import dbt_show, use_project_profiles

from stabilization_tools.report import render_report

RUNS_SQL = (
    "select *, {{ var('dot_product_tolerance') }} as dot_product_tolerance"
    " from {{ ref('stabilization_runs') }}"
)
SPECTRA_SQL = (
    "select embedding_version, to_json(singular_values) as singular_values"
    " from {{ ref('stabilization_transforms') }} where side = 'items'"
)
ALERTS_SQL = "{{ drift_alerts(ref('stabilization_runs')) }}"


def report_frames(dbt_args: list[str]) -> dict:
    """render_report's arguments: the rows of stabilization_runs, each version's
    singular values, the drift alerts raised, and the dot-product tolerance."""
    hint = " (is anything published in this target schema?)"
    runs = dbt_show(RUNS_SQL, dbt_args, hint)
    tolerance = float(runs.pop("dot_product_tolerance").iloc[0]) if len(runs) else None
    spectra = dbt_show(SPECTRA_SQL, dbt_args, hint)
    spectra["singular_values"] = spectra["singular_values"].map(json.loads)
    alerts = dbt_show(ALERTS_SQL, dbt_args, hint)
    return {"runs": runs, "spectra": spectra, "alerts": alerts, "tolerance": tolerance}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output", type=Path, default=PROJECT_DIR / "target" / "stabilization_report.html"
    )
    parser.add_argument("--title", default="Embedding stabilization")
    parser.add_argument("--target", help="dbt target (default: the profile's)")
    args = parser.parse_args(argv)
    use_project_profiles()
    dbt_args = ["--target", args.target] if args.target else []
    frames = report_frames(dbt_args)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render_report(**frames, title=args.title), encoding="utf-8")
    print(f"wrote {args.output} ({len(frames['runs'])} versions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
