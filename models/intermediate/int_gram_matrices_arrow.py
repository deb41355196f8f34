"""The Gram matrices of int_gram_matrices, computed with numpy on whole Arrow
batches (gram_method: arrow): per-partition partial Grams on the executors,
added in partition order. Same long form, same result to rounding."""

from functools import reduce

from python_udfs.spark import gram_matrix


def model(dbt, session):
    dbt.config(materialized="table")
    align_on = dbt.config.get("align_on")
    sides = {"items": ["items"], "users": ["users"], "both": ["users", "items"]}[align_on]

    grams = [
        gram_matrix(dbt.ref("stg_retrain__users"), "embedding", "embedding", "users"),
        gram_matrix(dbt.ref("stg_retrain__items"), "embedding", "embedding", "items"),
    ]
    joined = {
        "users": dbt.ref("int_users_joined_to_base"),
        "items": dbt.ref("int_items_joined_to_base"),
    }
    for side in sides:
        grams.append(gram_matrix(joined[side], "embedding", "base_embedding", f"{side}_cross"))
    return reduce(lambda left, right: left.unionByName(right), grams)
