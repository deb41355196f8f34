"""Faults: what a killed table write leaves behind.

A run killed while publishing, and a second run on a metastore in use, are
tested on the backfill (test_backfill.py), in processes of their own.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from stabilization_tools.synthetic import first_retrain

pytestmark = pytest.mark.integration


def test_files_a_killed_table_write_left_behind_do_not_block_the_rerun(dbt_project):
    """A kill between Spark writing a table's files and registering the table leaves
    files no table owns; the rerun removes them instead of failing with
    LOCATION_ALREADY_EXISTS (found by the backfill's kill test)."""
    from urllib.parse import urlparse

    from conftest import spark_session

    relations = dbt_project.write_retrain("v1", first_retrain(users=40, items=20, dimension=4))
    run = dbt_project.build("v1", *relations)
    assert run.success, run.output
    before = dbt_project.published_tables()
    spark = spark_session()
    orphaned = []
    for table in ("int_dot_products_sampled", "int_transforms_solved"):  # a SQL and a Python model
        rows = spark.sql(f"describe table extended {dbt_project.schema}.{table}").collect()
        location = Path(urlparse(next(r.data_type for r in rows if r.col_name == "Location")).path)
        kept = location.with_name(f"{table}_files")
        shutil.copytree(location, kept)
        spark.sql(f"drop table {dbt_project.schema}.{table}")
        kept.rename(location)  # the files are back, the table is not
        orphaned.append(location)

    run = dbt_project.build("v1", *relations)
    assert run.success, run.output
    for location in orphaned:
        assert f"removed files at file:{location} that no table owns" in run.output
    assert dbt_project.published_tables() == before
