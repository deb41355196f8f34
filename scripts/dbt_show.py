"""Rows of a query on the project's dbt target, for the scripts (report, backfill).

`dbt show --inline` through dbt's programmatic API: the profile, target, vars
and schema are the ones `dbt build` uses, and in one process the Spark session
is started once for all of a script's queries and builds.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

PROJECT_DIR = Path(__file__).resolve().parents[1]


def use_project_profiles() -> None:
    """Read the profile from the project's profiles/ unless DBT_PROFILES_DIR names
    another folder, as `make demo` does: dbt's own default, ~/.dbt, is empty in a
    plain shell, and the project's targets read only the variables
    docs/configuration.md names."""
    os.environ.setdefault("DBT_PROFILES_DIR", str(PROJECT_DIR / "profiles"))


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
