"""Scalar indexes through pymilvus: every Milvus scalar index type is accepted where Milvus
accepts it, refused where it refuses it, and filtered queries/searches give the same rows
with the index as without."""

from __future__ import annotations

import numpy as np
import pytest
from pymilvus import DataType, MilvusClient
from pymilvus.exceptions import MilvusException

FILTERS = [
    "cat == 7",
    "cat in [1, 2, 3] and price > 50",
    "tag == 'tag-3'",
    "tag like 'tag-1%'",
    "tag in ['tag-2', 'tag-9'] or cat < 2",
    "not (tag >= 'tag-5')",
    "price <= 10.5",
]


def _collection(client: MilvusClient, name: str) -> np.ndarray:
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("cat", DataType.INT64)
    schema.add_field("price", DataType.DOUBLE)
    schema.add_field("tag", DataType.VARCHAR, max_length=32, nullable=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=8)
    client.create_collection(name, schema=schema)
    rng = np.random.default_rng(5)
    vectors = rng.random((3000, 8), dtype=np.float32)
    rows = [
        {"id": i, "cat": i % 20, "price": float(i % 100), "tag": None if i % 13 == 0 else f"tag-{i % 37}", "v": vectors[i].tolist()}
        for i in range(3000)
    ]
    client.insert(name, rows)
    client.flush(name)
    return vectors


def _answers(client: MilvusClient, name: str, query: list[float]) -> list[tuple[list[int], list[int]]]:
    out = []
    for flt in FILTERS:
        rows = sorted(r["id"] for r in client.query(name, filter=flt, output_fields=["id"], limit=16384))
        hits = client.search(name, data=[query], filter=flt, limit=10, anns_field="v", search_params={"metric_type": "L2"})
        out.append((rows, [h["id"] for h in hits[0]]))
    return out


def test_scalar_indexes_keep_every_answer(client: MilvusClient, name: str) -> None:
    vectors = _collection(client, name)
    index = client.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_index(name, index)
    client.load_collection(name)
    before = _answers(client, name, vectors[0].tolist())
    assert all(rows for rows, _ in before)

    client.release_collection(name)
    scalar = client.prepare_index_params()
    scalar.add_index("cat", index_name="cat_idx", index_type="STL_SORT")
    scalar.add_index("price", index_name="price_idx", index_type="INVERTED")
    scalar.add_index("tag", index_name="tag_idx", index_type="TRIE")
    client.create_index(name, scalar)
    assert {"cat_idx", "price_idx", "tag_idx"} <= set(client.list_indexes(name))
    assert client.describe_index(name, "tag_idx")["index_type"] == "TRIE"
    client.load_collection(name)  # create_index waited for DescribeIndex to report the indexes built
    assert _answers(client, name, vectors[0].tolist()) == before


@pytest.mark.parametrize(
    ("field", "index_type"),
    [("cat", "NGRAM"), ("cat", "Trie"), ("price", "BITMAP")],
)
def test_scalar_index_on_the_wrong_type_is_refused(client: MilvusClient, name: str, field: str, index_type: str) -> None:
    _collection(client, name)
    index = client.prepare_index_params()
    index.add_index(field, index_type=index_type)
    with pytest.raises(MilvusException) as err:
        client.create_index(name, index)
    assert err.value.code == 1100
