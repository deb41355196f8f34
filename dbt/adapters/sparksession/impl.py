"""The ``sparksession`` adapter: dbt-spark's adapter with in-process Python models."""

from __future__ import annotations

from dbt.adapters.base import PythonJobHelper
from dbt.adapters.spark.impl import SparkAdapter

from dbt.adapters.sparksession.connections import SparksessionConnectionManager
from dbt.adapters.sparksession.python_submissions import SessionPythonJobHelper


class SparksessionAdapter(SparkAdapter):
    ConnectionManager = SparksessionConnectionManager

    @property
    def default_python_submission_method(self) -> str:
        return "session"

    @property
    def python_submission_helpers(self) -> dict[str, type[PythonJobHelper]]:
        return {**super().python_submission_helpers, "session": SessionPythonJobHelper}
