"""The new item embeddings in the stabilized space: T·P_T, applied on whole
Arrow batches on the executors. Written once, into a folder of the published
table, and published from there after its audits passed (publish_to)."""

from python_udfs.spark import stabilize


def model(dbt, session):
    dbt.config(materialized="table", publish_to="stabilized_item_embeddings")
    return stabilize(
        dbt.ref("stg_retrain__items"),
        dbt.ref("int_transforms_solved"),
        side="items",
    )
