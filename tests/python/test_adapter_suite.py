"""dbt's own reusable adapter tests (``dbt-tests-adapter``) on the ``sparksession`` adapter.

The same base classes dbt-spark's functional tests run, here against this
project's plugin on ``method: session`` with the ``local`` target of
``profiles/profiles.yml``. Every class builds a throwaway project of its own
(dbt's fixtures), but all of them run in this process on one Spark session
and one embedded metastore (the suite's ``DBT_SPARK_HOME``).

``ADAPTER_SUITE_TARGET=connect`` (with ``SPARK_REMOTE``) runs the same classes
through a Spark Connect server instead; ``test_connect.py`` does that.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import os

import pytest
from conftest import profile_target
from dbt.tests.adapter.basic.test_base import BaseSimpleMaterializations
from dbt.tests.adapter.basic.test_empty import BaseEmpty
from dbt.tests.adapter.basic.test_ephemeral import BaseEphemeral
from dbt.tests.adapter.basic.test_generic_tests import BaseGenericTests
from dbt.tests.adapter.basic.test_incremental import BaseIncremental
from dbt.tests.adapter.basic.test_singular_tests import BaseSingularTests
from dbt.tests.adapter.basic.test_singular_tests_ephemeral import BaseSingularTestsEphemeral
from dbt.tests.adapter.python_model.test_python_model import (
    BasePythonIncrementalTests,
    BasePythonModelTests,
)
from dbt.tests.adapter.python_model.test_spark import BasePySparkTests
from dbt.tests.fixtures.project import *  # dbt's fixtures, for this module only
from dbt.tests.util import run_dbt
from hypothesis import given, settings
from hypothesis import strategies as st

from dbt.adapters.sparksession.cursor import sql_literal

pytestmark = [
    pytest.mark.integration,
    # dbt-tests-adapter's own classes: class-scoped fixtures as methods, an exception named Test…
    pytest.mark.filterwarnings("ignore::pytest.PytestRemovedIn10Warning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestCollectionWarning"),
]


@pytest.fixture(scope="module", autouse=True)
def _environment_restored(spark_home):
    """dbt's fixtures unset DBT_PROFILES_DIR after each class; the other test modules
    of this pytest worker (and the scripts they run) still need it."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="class")
def dbt_profile_target(spark_home):
    """The project's ``local`` target, on the suite's Spark home (or ``connect``)."""
    return profile_target(os.environ.get("ADAPTER_SUITE_TARGET", "local"))


class TestSimpleMaterializations(BaseSimpleMaterializations):
    pass


class TestSingularTests(BaseSingularTests):
    pass


class TestSingularTestsEphemeral(BaseSingularTestsEphemeral):
    pass


class TestEmpty(BaseEmpty):
    pass


class TestEphemeral(BaseEphemeral):
    pass


class TestIncremental(BaseIncremental):
    pass


class TestGenericTests(BaseGenericTests):
    pass


class TestPythonModel(BasePythonModelTests):
    pass


class TestPythonIncremental(BasePythonIncrementalTests):
    @pytest.fixture(scope="class")
    def project_config_update(self):
        # merge needs Delta/Iceberg/Hudi (jars from Maven); Parquet tables append
        return {}


class TestPySpark(BasePySparkTests):
    def test_different_dataframes(self, project):
        # pandas, pyspark.pandas and Spark DataFrames; databricks.koalas is the
        # pre-Spark-3.2 name of pyspark.pandas and not installable with Spark 4
        results = run_dbt(["run", "--exclude", "koalas_df"])
        assert len(results) == 3
        for name in ("pandas_df", "pyspark_df", "pandas_on_spark_df"):
            rows = project.run_sql(
                f"select City, Country, Latitude from {project.test_schema}.{name} order by City",
                fetch="all",
            )
            assert [tuple(row) for row in rows][:2] == [
                ("Bogota", "Colombia", 4.60),
                ("Brasilia", "Brazil", -15.78),
            ], name


#: Values dbt-spark's session cursor pasted into the SQL text as '{value}'.
TRICKY_SEED_CSV = """id,name,note
1,it's,"a ""quoted"" word"
2,back\\slash,"\\', \\\\ and \\u0041 stay as written"
3,"'); drop table x; --",100% of %s and %%
4,"two
lines",tab\there
5,héllo 日本 🙂,?
9007199254740993,big id,beyond float64's integers
"""


class TestSeedValuesVerbatim:
    @pytest.fixture(scope="class")
    def seeds(self):
        return {"tricky.csv": TRICKY_SEED_CSV}

    def test_every_value_loads_verbatim(self, project):
        import csv
        import io

        run_dbt(["seed"])
        rows = project.run_sql(
            f"select id, name, note from {project.test_schema}.tricky order by id", fetch="all"
        )
        expected = [
            (int(row["id"]), row["name"], row["note"])
            for row in csv.DictReader(io.StringIO(TRICKY_SEED_CSV))
        ]
        assert [tuple(row) for row in rows] == expected
        # nothing else ran: the schema holds the seed only (temporary views are the session's)
        tables = project.run_sql(f"show tables in {project.test_schema}", fetch="all")
        assert [row[1] for row in tables if not row[2]] == ["tricky"]

    @settings(max_examples=60, deadline=None)
    @given(values=st.lists(st.text(max_size=20), min_size=1, max_size=8))
    def test_text_literals_round_trip(self, project, values):
        expressions = ", ".join(sql_literal(value) for value in values)
        row = project.run_sql(f"select array({expressions})", fetch="one")
        assert list(row[0]) == values

    def test_other_literals_keep_type_and_value(self, project):
        values = [
            None,
            True,
            False,
            0,
            -(2**63),
            2**63 - 1,
            1.5,
            -0.25,
            1e-300,
            float("nan"),
            float("inf"),
            float("-inf"),
            decimal.Decimal("12345678901234567890.123456789"),
            dt.date(2026, 11, 23),
            dt.datetime(2026, 11, 23, 12, 34, 56, 789012),
        ]
        row = project.run_sql(
            "select " + ", ".join(sql_literal(value) for value in values), fetch="one"
        )
        assert list(row[:9]) == values[:9]
        assert math.isnan(row[9]) and list(row[10:12]) == values[10:12]
        assert list(row[12:]) == values[12:]
