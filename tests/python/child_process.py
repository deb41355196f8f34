"""Run dbt steps in a process of their own (``python child_process.py steps.json``).

The fault tests need what the in-process fixtures cannot give: a process that
can be killed, and runs that compete for one embedded metastore. Steps:
``["build", version, users, items, vars]``, ``["sql", statement]``,
``["backfill", arguments]`` or ``["backfill", arguments, exit_code]`` (scripts/backfill.py,
expected to end with that code, 0 if not given) and ``["dump", path]`` (every
published table as JSON, also in a process that built nothing). Environment: DBT_SPARK_HOME, DBT_SCHEMA, ...
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from conftest import PROJECT_DIR, DbtProject, spark_session


def main(steps_file: str) -> int:
    spec = json.loads(Path(steps_file).read_text())
    project = DbtProject(
        os.environ["DBT_SCHEMA"], Path(spec["target_path"]), Path(spec["data_dir"])
    )
    for step in spec["steps"]:
        if step[0] == "build":
            _, version, users, items, extra_vars = step
            run = project.build(version, users, items, **extra_vars)
            print(run.output, flush=True)
            if not run.success:
                return 1
        elif step[0] == "sql":  # a statement on this process's Spark session
            project.start_spark()
            spark_session().sql(step[1])
        elif step[0] == "backfill":  # scripts/backfill.py, in this process
            sys.path.insert(0, str(PROJECT_DIR / "scripts"))
            import backfill

            expected = step[2] if len(step) > 2 else 0
            if backfill.main(step[1]) != expected:
                return 1
        elif step[0] == "dump":
            project.start_spark()
            tables = project.published_tables(drop_columns=("published_at",))
            Path(step[1]).write_text(json.dumps(tables))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
