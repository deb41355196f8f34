"""dbt adapter plugin ``sparksession``: dbt-spark plus in-process Python models.

dbt-spark runs Python models only on Databricks. This plugin subclasses its
adapter, keeps every dbt-spark macro (``dependencies=["spark"]``) and adds the
``session`` submission method, which executes a compiled Python model on the
Spark session dbt already uses.
"""

import os

from dbt.adapters.base import AdapterPlugin

from dbt.adapters.sparksession.connections import SparksessionCredentials
from dbt.adapters.sparksession.impl import SparksessionAdapter

Plugin = AdapterPlugin(
    adapter=SparksessionAdapter,  # type: ignore[arg-type]
    credentials=SparksessionCredentials,
    include_path=os.path.join(os.path.dirname(__file__), "include", "sparksession"),
    dependencies=["spark"],
)
