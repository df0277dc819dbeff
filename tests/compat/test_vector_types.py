"""Vector types beyond FLOAT_VECTOR: binary, float16, bfloat16, sparse."""

from __future__ import annotations

import numpy as np
import pytest
from pymilvus import DataType, MilvusClient

feature = pytest.mark.feature


def _collection(client: MilvusClient, name: str, dtype: DataType, index: str, metric: str, dim: int | None,
                **params) -> None:
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    if dim is None:
        schema.add_field("v", dtype)
    else:
        schema.add_field("v", dtype, dim=dim)
    ip = MilvusClient.prepare_index_params()
    ip.add_index("v", index_type=index, metric_type=metric, params=params)
    client.create_collection(name, schema=schema, index_params=ip, consistency_level="Strong")


@feature("vector.binary")
@pytest.mark.parametrize("metric", ["HAMMING", "JACCARD"])
def test_binary_vectors(client: MilvusClient, name: str, metric: str) -> None:
    _collection(client, name, DataType.BINARY_VECTOR, "BIN_FLAT", metric, 64)
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 2, size=(40, 64), dtype=np.uint8)
    client.insert(name, [{"id": i, "v": np.packbits(bits[i]).tobytes()} for i in range(40)])
    client.load_collection(name)
    res = client.search(name, data=[np.packbits(bits[12]).tobytes()], limit=3, anns_field="v",
                        search_params={"metric_type": metric})
    assert res[0][0]["id"] == 12 and res[0][0]["distance"] == pytest.approx(0.0)


@feature("vector.float16")
@pytest.mark.parametrize("dtype", ["FLOAT16_VECTOR", "BFLOAT16_VECTOR"])
def test_half_precision_vectors(client: MilvusClient, name: str, dtype: str) -> None:
    rng = np.random.default_rng(2)
    data = rng.random((30, 8), dtype=np.float32)
    if dtype == "FLOAT16_VECTOR":
        vecs = [v.astype(np.float16) for v in data]
    else:
        ml_dtypes = pytest.importorskip("ml_dtypes")  # pymilvus takes bfloat16 as ml_dtypes arrays
        vecs = [v.astype(ml_dtypes.bfloat16) for v in data]
    _collection(client, name, getattr(DataType, dtype), "FLAT", "L2", 8)
    client.insert(name, [{"id": i, "v": vecs[i]} for i in range(30)])
    client.load_collection(name)
    res = client.search(name, data=[vecs[5]], limit=2, anns_field="v")
    assert res[0][0]["id"] == 5


@feature("vector.sparse")
def test_sparse_vectors(client: MilvusClient, name: str) -> None:
    _collection(client, name, DataType.SPARSE_FLOAT_VECTOR, "SPARSE_INVERTED_INDEX", "IP", None)
    rows = [{"id": i, "v": {i: 1.0, (i * 7) % 50 + 100: 0.5}} for i in range(50)]
    client.insert(name, rows)
    client.load_collection(name)
    res = client.search(name, data=[{3: 1.0}], limit=3, anns_field="v", search_params={"metric_type": "IP"})
    assert res[0][0]["id"] == 3 and res[0][0]["distance"] == pytest.approx(1.0)
