"""The new user embeddings in the stabilized space: W·P_W, applied on whole
Arrow batches on the executors. Written once, into a folder of the published
table, and published from there after its audits passed (publish_to)."""

from python_udfs.spark import stabilize


def model(dbt, session):
    dbt.config(materialized="table", publish_to="stabilized_user_embeddings")
    return stabilize(
        dbt.ref("stg_retrain__users"),
        dbt.ref("int_transforms_solved"),
        side="users",
    )
