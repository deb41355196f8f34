"""How close this version is to its base, per side, on the ids present in both:
sums of the cosine similarity of the raw and of the stabilized (float32)
embedding to the base embedding, and of the squared Procrustes residual.
Measured with numpy on Arrow batches (Spark SQL interprets the higher-order
functions a per-row cosine needs, element by element: ~10× slower)."""

from python_udfs.spark import alignment_measures


def model(dbt, session):
    dbt.config(materialized="table")
    joined = {
        "users": dbt.ref("int_users_joined_to_base"),
        "items": dbt.ref("int_items_joined_to_base"),
    }
    return alignment_measures(joined, dbt.ref("int_transforms_solved"), session)
