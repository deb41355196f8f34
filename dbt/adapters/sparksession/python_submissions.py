"""The ``session`` submission method: run a compiled Python model in-process."""

from __future__ import annotations

import linecache
import traceback
from typing import Any

from dbt.adapters.base import PythonJobHelper
from dbt_common.exceptions import DbtRuntimeError

from dbt.adapters.sparksession.connections import SparksessionCredentials, spark_session


class SessionPythonJobHelper(PythonJobHelper):
    """Execute the compiled model (which expects a global ``spark``) on dbt's session."""

    def __init__(self, parsed_model: dict, credentials: SparksessionCredentials) -> None:
        self.parsed_model = parsed_model
        self.credentials = credentials

    def submit(self, compiled_code: str) -> Any:
        unique_id = self.parsed_model.get("unique_id", self.parsed_model.get("alias"))
        filename = f"<dbt python model {unique_id}>"
        # Register the source so tracebacks show the model's own lines.
        linecache.cache[filename] = (
            len(compiled_code),
            None,
            compiled_code.splitlines(keepends=True),
            filename,
        )
        spark = spark_session(self.credentials.server_side_parameters)
        spark.sparkContext.setJobDescription(f"dbt {unique_id}")
        namespace: dict[str, Any] = {"spark": spark, "__name__": "__dbt_python_model__"}
        try:
            exec(compile(compiled_code, filename, "exec"), namespace)
        except Exception as exc:
            raise DbtRuntimeError(
                f"Python model {unique_id} failed:\n{traceback.format_exc()}"
            ) from exc
        finally:
            spark.sparkContext.setJobDescription(None)
        return None
