"""Search rankers through real pymilvus: boost rankers checked against numpy, and model
rankers answering code 10 that names the provider this node cannot reach. Also query ORDER BY."""

from __future__ import annotations

import numpy as np
import pytest
from pymilvus import DataType, Function, FunctionScore, FunctionType, MilvusClient, MilvusException

N, K = 200, 8


def boost(name: str, expr: str, weight: float) -> Function:
    return Function(
        name=name, input_field_names=[], function_type=FunctionType.RERANK,
        params={"reranker": "boost", "filter": expr, "weight": weight},
    )


@pytest.fixture()
def coll(client: MilvusClient, name: str) -> tuple[str, np.ndarray]:
    rng = np.random.default_rng(9)
    data = rng.random((N, 4), dtype=np.float32)
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("cat", DataType.INT64)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    index = client.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="IP")
    client.create_collection(name, schema=schema, index_params=index)
    client.insert(name, [{"id": i, "cat": i % 5, "v": data[i].tolist()} for i in range(N)])
    yield name, data
    client.drop_collection(name)


def test_boost_rankers_match_numpy(client: MilvusClient, coll: tuple[str, np.ndarray]) -> None:
    name, data = coll
    q = np.array([0.3, 0.9, 0.1, 0.5], np.float32)
    base = data @ q
    cat = np.arange(N) % 5
    for rankers, factor in [
        ([boost("b1", "cat == 1", 3.0)], np.where(cat == 1, 3.0, 1.0)),
        ([boost("b1", "cat == 1", 3.0), boost("b2", "cat in [1, 2]", 0.5)],
         np.where(cat == 1, 1.5, np.where(cat == 2, 0.5, 1.0))),
    ]:
        ranker = rankers[0] if len(rankers) == 1 else FunctionScore(rankers)
        hits = client.search(name, data=[q.tolist()], limit=K, ranker=ranker, output_fields=["cat"])[0]
        want = base * factor
        order = np.argsort(-want, kind="stable")[:K]
        assert [h["id"] for h in hits] == order.tolist()
        assert np.allclose([h["distance"] for h in hits], want[order], rtol=1e-5)


def test_model_ranker_checks_its_input_field_before_its_provider(
    client: MilvusClient, coll: tuple[str, np.ndarray]
) -> None:
    name, _ = coll
    model = Function(
        name="semantic", input_field_names=["cat"], function_type=FunctionType.RERANK,
        params={"reranker": "model", "provider": "tei", "queries": ["x"], "endpoint": "http://localhost:8080"},
    )
    with pytest.raises(MilvusException, match="model input field cat must be VarChar, got Int64") as err:
        client.search(name, data=[[0.1, 0.2, 0.3, 0.4]], limit=3, ranker=model)
    assert err.value.code == 65535  # the unreachable provider (code 10): test_milvus_suite_rerank.py


def test_query_order_by(client: MilvusClient, coll: tuple[str, np.ndarray]) -> None:
    name, _ = coll
    got = client.query(name, filter="id >= 10", output_fields=["cat"], limit=7, offset=3, order_by_fields=[
        {"field": "cat", "order": "desc"}, {"field": "id", "order": "asc"}])
    want = sorted(range(10, N), key=lambda i: (-(i % 5), i))[3:10]
    assert [r["id"] for r in got] == want
    with pytest.raises(MilvusException):
        client.query(name, filter="id >= 0", limit=3, order_by_fields=[{"field": "v", "order": "asc"}])


def test_boost_with_an_explicit_hnsw_depth(client: MilvusClient, name: str) -> None:
    data = np.random.default_rng(3).random((300, 4), dtype=np.float32)
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("cat", DataType.INT64)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    index = client.prepare_index_params()
    index.add_index("v", index_type="HNSW", metric_type="IP", params={"M": 8, "efConstruction": 64})
    client.create_collection(name, schema=schema, index_params=index)
    client.insert(name, [{"id": i, "cat": i % 5, "v": data[i].tolist()} for i in range(300)])
    client.flush(name)
    hits = client.search(name, data=[data[0].tolist()], limit=5, search_params={"params": {"ef": 16}},
                         ranker=boost("b", "cat == 3", 10.0))[0]
    assert len(hits) == 5 and all(h["id"] % 5 == 3 for h in hits)  # x10 puts every cat-3 hit first
    client.drop_collection(name)
