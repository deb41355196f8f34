"""The Gram matrices of int_gram_matrices, computed with numpy on whole Arrow
batches (gram_method arrow, or auto on embeddings wider than gram_arrow_above):
per-partition partial Grams on the executors, added in partition order. Same
long form, same result to rounding. No rows when the build takes the SQL path."""

from functools import reduce

from python_udfs.spark import embedding_width, gram_matrix, gram_method_for


def model(dbt, session):
    dbt.config(materialized="table")
    align_on = dbt.config.get("align_on")
    sides = {"items": ["items"], "users": ["users"], "both": ["users", "items"]}[align_on]
    users = dbt.ref("stg_retrain__users")

    method = dbt.config.get("gram_method")
    if method == "auto":
        fixed = dbt.config.get("embedding_dimension")
        width = int(fixed) if fixed not in (None, "", "None") else embedding_width(users)
        method = gram_method_for(method, width, int(dbt.config.get("gram_arrow_above")))
    if method != "arrow":
        # int_gram_matrices sums the Grams in SQL; this table stays empty
        return session.createDataFrame([], "gram_name string, i int, j int, value double")

    grams = [
        gram_matrix(users, "embedding", "embedding", "users"),
        gram_matrix(dbt.ref("stg_retrain__items"), "embedding", "embedding", "items"),
    ]
    joined = {
        "users": dbt.ref("int_users_joined_to_base"),
        "items": dbt.ref("int_items_joined_to_base"),
    }
    for side in sides:
        grams.append(gram_matrix(joined[side], "embedding", "base_embedding", f"{side}_cross"))
    return reduce(lambda left, right: left.unionByName(right), grams)
