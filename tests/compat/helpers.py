"""Shared data and schema for the conformance tests: the guide's product catalogue.

Plain pymilvus code, as a user writes it; nothing here knows which server is tested.
"""

from __future__ import annotations

import numpy as np
from pymilvus import DataType, MilvusClient

DIM = 16
N = 200
CATEGORIES = ("books", "games", "tools", "food")


def vectors(n: int, dim: int = DIM, seed: int = 0) -> list[list[float]]:
    return np.random.default_rng(seed).random((n, dim), dtype=np.float32).tolist()


def product_rows(n: int = N, start: int = 0, seed: int = 0) -> list[dict]:
    vecs = vectors(n, seed=seed)
    return [
        {
            "id": start + i,
            "embedding": vecs[i],
            "title": f"item {start + i}",
            "price": float((start + i) % 50) * 10.0,
            "category": CATEGORIES[(start + i) % len(CATEGORIES)],
            "tags": [f"t{(start + i) % 3}", f"t{(start + i) % 5 + 3}"],
            "metadata": {"brand": f"b{(start + i) % 7}", "stock": (start + i) % 11, "sizes": [1, 2, (start + i) % 4]},
            "created_at": 1_700_000_000 + start + i,
        }
        for i in range(n)
    ]


def product_schema(dynamic: bool = False, partition_key: bool = False):
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=dynamic, description="products")
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("title", DataType.VARCHAR, max_length=500)
    schema.add_field("price", DataType.FLOAT)
    if partition_key:
        schema.add_field("category", DataType.VARCHAR, max_length=100, is_partition_key=True)
    else:
        schema.add_field("category", DataType.VARCHAR, max_length=100)
    schema.add_field("tags", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=10, max_length=50)
    schema.add_field("metadata", DataType.JSON)
    schema.add_field("created_at", DataType.INT64)
    return schema


def index_params(index_type: str = "FLAT", metric: str = "L2", field: str = "embedding", index_name: str = "",
                 **params):
    ip = MilvusClient.prepare_index_params()
    ip.add_index(field_name=field, index_type=index_type, metric_type=metric, index_name=index_name, params=params)
    return ip


def create_products(client: MilvusClient, name: str, rows: list[dict] | None = None, *, index_type: str = "FLAT",
                    metric: str = "L2", dynamic: bool = False, partition_key: bool = False,
                    consistency: str = "Strong", **kwargs) -> list[dict]:
    """Create, fill, index and load the product collection; returns the rows inserted."""
    rows = product_rows() if rows is None else rows
    client.create_collection(name, schema=product_schema(dynamic, partition_key),
                             index_params=index_params(index_type, metric), consistency_level=consistency, **kwargs)
    client.insert(name, rows)
    client.load_collection(name)
    return rows


def l2(a: list[float], b: list[float]) -> float:
    return float(np.sum((np.asarray(a) - np.asarray(b)) ** 2))


def exact_top(rows: list[dict], query: list[float], k: int, where=lambda r: True) -> list[int]:
    """Primary keys of the exact L2 top-k among rows that satisfy ``where``."""
    cands = [r for r in rows if where(r)]
    cands.sort(key=lambda r: l2(r["embedding"], query))
    return [r["id"] for r in cands[:k]]
