"""The ``sparksession`` adapter: dbt-spark's adapter with in-process Python models."""

from __future__ import annotations

from dbt.adapters.base import BaseRelation, PythonJobHelper
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

    def list_relations_without_caching(self, schema_relation: BaseRelation) -> list[BaseRelation]:
        """The schema's relations, without the session's temporary views.

        ``show table extended in <schema>`` also lists the session's temporary
        views (dbt-spark's incremental materialization leaves ``<model>__dbt_tmp``
        ones), with no schema. In a session that has built models, dbt's catalog
        (``dbt docs generate``) failed on them: ``'NoneType' object has no
        attribute 'lower'``. They belong to no schema, so they are left out.
        """
        relations = super().list_relations_without_caching(schema_relation)
        return [relation for relation in relations if relation.schema]
