"""Synthetic retrains for tests and benchmarks: same scores up to noise, new coordinates."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from python_udfs.arrow import matrix_to_list_column

__all__ = [
    "Retrain",
    "first_retrain",
    "history",
    "next_retrain",
    "write_history",
    "write_parquet",
]


@dataclass(frozen=True)
class Retrain:
    """One retrain: integer ids and float32 embeddings per side."""

    user_ids: np.ndarray
    users: np.ndarray
    item_ids: np.ndarray
    items: np.ndarray


def first_retrain(users: int, items: int, dimension: int, seed: int = 0) -> Retrain:
    """Return random embeddings with a decaying spectrum (like a trained model)."""
    rng = np.random.default_rng(seed)
    scale = np.linspace(1.0, 0.2, dimension)
    return Retrain(
        user_ids=np.arange(users, dtype=np.int64),
        users=(rng.standard_normal((users, dimension)) * scale).astype(np.float32),
        item_ids=np.arange(items, dtype=np.int64),
        items=(rng.standard_normal((items, dimension)) * scale).astype(np.float32),
    )


def next_retrain(
    previous: Retrain, noise: float = 0.05, churn: float = 0.05, seed: int = 1
) -> Retrain:
    """Return the next retrain: the same model in new coordinates, perturbed, ids churned.

    Users become ``(W + noise) A`` and items ``(T + noise) A⁻ᵀ`` for a random
    invertible ``A``, so scores stay close while raw coordinates change
    completely. A ``churn`` fraction of each side's ids is replaced by new ids.
    """
    rng = np.random.default_rng(seed)
    dimension = previous.users.shape[1]
    mixing = rng.standard_normal((dimension, dimension)) + 2 * np.eye(dimension)
    inverse_t = np.linalg.inv(mixing).T

    def side(ids, matrix, transform):
        kept = rng.random(ids.size) >= churn
        fresh = ids.max() + 1 + np.arange(int((~kept).sum()), dtype=np.int64)
        new_ids = np.concatenate([ids[kept], fresh])
        base = np.concatenate([matrix[kept], rng.standard_normal((fresh.size, dimension))])
        perturbed = base + noise * rng.standard_normal(base.shape) * np.abs(base).mean()
        return new_ids, (perturbed @ transform).astype(np.float32)

    user_ids, users = side(previous.user_ids, previous.users, mixing)
    item_ids, items = side(previous.item_ids, previous.items, inverse_t)
    return Retrain(user_ids=user_ids, users=users, item_ids=item_ids, items=items)


def write_parquet(path: str | Path, ids: np.ndarray, matrix: np.ndarray, rows_per_file=None):
    """Write (id, embedding array<float>) rows to a Parquet file or folder."""
    table = pa.table({"id": pa.array(ids), "embedding": matrix_to_list_column(matrix)})
    path = Path(path)
    if rows_per_file is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
        return
    path.mkdir(parents=True, exist_ok=True)
    for number, start in enumerate(range(0, table.num_rows, rows_per_file)):
        pq.write_table(table.slice(start, rows_per_file), path / f"part-{number:05d}.parquet")


def history(
    versions: list[str], users: int, items: int, dimension: int, unrelated: tuple[str, ...] = ()
) -> dict[str, Retrain]:
    """One retrain per version, in order.

    Each retrain is the first one in new coordinates (``next_retrain`` of the first,
    not a chain: a chain of random maps grows ill-conditioned in float32); the
    versions in ``unrelated`` are another model on the same ids (as after a
    retrain that learned something else: a drift alert).
    """
    first = first_retrain(users=users, items=items, dimension=dimension, seed=0)
    retrains = {}
    for number, version in enumerate(versions):
        retrains[version] = next_retrain(first, seed=number) if number else first
        if version in unrelated:
            retrains[version] = first_retrain(
                users=users, items=items, dimension=dimension, seed=100 + number
            )
    return retrains


def write_history(root: str | Path, retrains: dict[str, Retrain]) -> dict[str, str]:
    """Write retrains (:func:`history`) as Parquet tables partitioned by ``ds`` (``ds=…``
    folders, one per version). Returns the relations of the two tables,
    ``parquet.`…/user_emb``` and ``…/item_emb``.
    """
    root = Path(root)
    for ds, retrain in retrains.items():
        write_parquet(
            root / "user_emb" / f"ds={ds}" / "part-0.parquet", retrain.user_ids, retrain.users
        )
        write_parquet(
            root / "item_emb" / f"ds={ds}" / "part-0.parquet", retrain.item_ids, retrain.items
        )
    return {"users": f"parquet.`{root / 'user_emb'}`", "items": f"parquet.`{root / 'item_emb'}`"}
