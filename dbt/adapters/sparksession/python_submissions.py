"""The ``session`` submission method: run a compiled Python model in-process."""

from __future__ import annotations

import linecache
import traceback
from typing import Any

from dbt.adapters.base import PythonJobHelper
from dbt_common.exceptions import DbtRuntimeError

from dbt.adapters.sparksession.connections import CONNECT, SparksessionCredentials, session_for


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
        spark = session_for(self.credentials)
        label = _JobLabel(spark, f"dbt {unique_id}", remote=self.credentials.method == CONNECT)
        namespace: dict[str, Any] = {"spark": spark, "__name__": "__dbt_python_model__"}
        try:
            with label:
                # running the compiled model is what this helper is for
                exec(compile(compiled_code, filename, "exec"), namespace)  # noqa: S102
        except Exception as exc:
            raise DbtRuntimeError(
                f"Python model {unique_id} failed:\n{traceback.format_exc()}"
            ) from exc
        return None


class _JobLabel:
    """Name the Spark jobs a model starts, in the Spark UI: a job description on a
    classic session; on Spark Connect, which has no client-side SparkContext, an
    operation tag (``addTag``), its equivalent there."""

    def __init__(self, spark, label: str, remote: bool) -> None:
        self.spark, self.remote = spark, remote
        self.label = label.replace(",", " ")  # a tag may not hold a comma

    def __enter__(self) -> None:
        if self.remote:
            self.spark.addTag(self.label)
        else:
            self.spark.sparkContext.setJobDescription(self.label)

    def __exit__(self, *exc_info) -> None:
        if self.remote:
            self.spark.removeTag(self.label)
        else:
            self.spark.sparkContext.setJobDescription(None)
