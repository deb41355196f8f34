"""Rows of a query on the project's dbt target, for the scripts (report, backfill).

`dbt show --inline` through dbt's programmatic API: the profile, target, vars
and schema are the ones `dbt build` uses, and in one process the Spark session
is started once for all of a script's queries and builds.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

PROJECT_DIR = Path(__file__).resolve().parents[1]


def dbt_show(sql: str, dbt_args: list[str], failure_hint: str = "") -> pd.DataFrame:
    """All rows of an inline query (Jinja allowed: ref, var, adapter), as pandas."""
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
        raise SystemExit(f"dbt show failed{failure_hint}: {detail}")
    table = result.result.results[0].agate_table
    frame = pd.DataFrame([list(row) for row in table.rows], columns=list(table.column_names))
    for column in frame.columns:  # agate gives Decimals for numbers
        if frame[column].map(lambda value: hasattr(value, "as_integer_ratio")).any():
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame
