"""Run dbt steps in a process of their own (``python child_process.py steps.json``).

The fault tests need what the in-process fixtures cannot give: a process that
can be killed, and runs that compete for one embedded metastore. Steps:
``["build", version, users, items, vars]`` and ``["dump", path]`` (every
published table as JSON). Environment: DBT_SPARK_HOME, DBT_SCHEMA, ...
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from conftest import DbtProject

PUBLISHED = [
    "stabilized_user_embeddings",
    "stabilized_item_embeddings",
    "stabilization_transforms",
    "stabilization_runs",
]


def main(steps_file: str) -> int:
    spec = json.loads(Path(steps_file).read_text())
    project = DbtProject(os.environ["DBT_SCHEMA"], Path(spec["target_path"]), Path(spec["data_dir"]))
    for step in spec["steps"]:
        if step[0] == "build":
            _, version, users, items, extra_vars = step
            run = project.build(version, users, items, **extra_vars)
            print(run.output, flush=True)
            if not run.success:
                return 1
        elif step[0] == "dump":
            Path(step[1]).write_text(json.dumps(published_tables(project)))
    return 0


def published_tables(project: DbtProject) -> dict[str, list[dict]]:
    """Every published table as JSON records, without the publication time (a clock reading)."""
    tables = {
        name: json.loads(
            project.table(name, order_by="embedding_version, 1").to_json(
                orient="records", double_precision=15
            )
        )
        for name in PUBLISHED
    }
    for row in tables["stabilization_runs"]:
        row.pop("published_at")
    return tables


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
