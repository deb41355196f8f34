"""The new item embeddings in the stabilized space: T·P_T, applied on whole
Arrow batches on the executors. Audited by tests before it is published."""

from python_udfs.spark import stabilize


def model(dbt, session):
    dbt.config(materialized="table")
    return stabilize(
        dbt.ref("stg_retrain__items"),
        dbt.ref("int_transforms_solved"),
        side="items",
    )
