"""The e×e math of one version: balanced low-rank SVD transforms, then the
orthogonal Procrustes rotation onto the base version. Reads only Grams."""

from pyspark.sql.types import (
    ArrayType,
    DoubleType,
    IntegerType,
    StringType,
    StructField,
    StructType,
)

from python_udfs.grams import grams_from_long, transforms_from_grams

SCHEMA = StructType(
    [
        StructField("side", StringType(), False),
        StructField("base_version", StringType(), True),
        StructField("dimension", IntegerType(), False),
        StructField("rank", IntegerType(), False),
        StructField("condition_number", DoubleType(), False),
        StructField("singular_values", ArrayType(DoubleType(), False), False),
        StructField("rotation", ArrayType(ArrayType(DoubleType(), False), False), False),
        StructField("transform", ArrayType(ArrayType(DoubleType(), False), False), False),
        StructField("embedding_version", StringType(), False),
    ]
)


def model(dbt, session):
    dbt.config(materialized="table")
    rtol = float(dbt.config.get("rank_rtol"))
    allow_dimension_change = str(dbt.config.get("allow_dimension_change")).lower() == "true"

    versions = dbt.ref("int_versions_resolved").first()
    # 2 to 4 matrices of e×e entries: the only data this model brings to the driver.
    grams = grams_from_long(dbt.ref("int_gram_matrices").toPandas())
    solved = transforms_from_grams(grams, rtol=rtol, allow_dimension_change=allow_dimension_change)

    rows = [
        (
            side,
            versions["base_version"],
            solved.dimension,
            solved.rank,
            solved.condition_number,
            solved.singular_values.tolist(),
            solved.rotation.tolist(),
            transform.tolist(),
            versions["embedding_version"],
        )
        for side, transform in (
            ("users", solved.user_transform),
            ("items", solved.item_transform),
        )
    ]
    return session.createDataFrame(rows, SCHEMA)
