"""The new user embeddings in the stabilized space: W·P_W, applied on whole
Arrow batches on the executors. Audited by tests before it is published."""

from python_udfs.spark import stabilize


def model(dbt, session):
    dbt.config(materialized="table")
    return stabilize(
        dbt.ref("stg_retrain__users"),
        dbt.ref("int_transforms_solved"),
        side="users",
    )
