"""Vector search answers checked against numpy brute force."""

from __future__ import annotations

import numpy as np
import pytest
from pymilvus import AnnSearchRequest, DataType, MilvusClient, RRFRanker, WeightedRanker

N, DIM = 300, 8


def vectors(seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((N, DIM), dtype=np.float32)


def flat_collection(client: MilvusClient, name: str, metric: str, data: np.ndarray) -> None:
    schema = client.create_schema(enable_dynamic_field=True)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("grp", DataType.INT64)
    index = client.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type=metric)
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
    client.insert(name, [{"id": i, "v": data[i].tolist(), "grp": i % 5, "half": i < N // 2} for i in range(N)])


def brute(data: np.ndarray, q: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray]:
    if metric == "L2":
        scores = ((data - q) ** 2).sum(1)
        order = np.argsort(scores, kind="stable")
    else:
        d = data / np.linalg.norm(data, axis=1, keepdims=True) if metric == "COSINE" else data
        qq = q / np.linalg.norm(q) if metric == "COSINE" else q
        scores = d @ qq
        order = np.argsort(-scores, kind="stable")
    return order, scores


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
def test_exact_search_matches_numpy(client: MilvusClient, name: str, metric: str) -> None:
    data = vectors()
    flat_collection(client, name, metric, data)
    queries = np.random.default_rng(9).random((3, DIM), dtype=np.float32)
    res = client.search(name, data=queries.tolist(), limit=10, search_params={"metric_type": metric})
    assert len(res) == 3
    for q, hits in zip(queries, res, strict=True):
        order, scores = brute(data, q, metric)
        assert [h["id"] for h in hits] == order[:10].tolist()
        assert np.allclose([h["distance"] for h in hits], scores[order[:10]], rtol=1e-4, atol=1e-5)


def test_filter_offset_round_decimal_output(client: MilvusClient, name: str) -> None:
    data = vectors(2)
    flat_collection(client, name, "L2", data)
    q = data[0]
    order, scores = brute(data, q, "L2")
    allowed = [i for i in order if i % 5 == 2]
    hits = client.search(name, data=[q.tolist()], limit=4, filter="grp == 2", output_fields=["grp", "half"])[0]
    assert [h["id"] for h in hits] == allowed[:4]
    assert all(h["entity"]["grp"] == 2 and h["entity"]["half"] == (h["id"] < N // 2) for h in hits)
    paged = client.search(name, data=[q.tolist()], limit=3, offset=2, filter="grp == 2")[0]
    assert [h["id"] for h in paged] == allowed[2:5]
    rounded = client.search(name, data=[q.tolist()], limit=3, round_decimal=2)[0]
    for h, i in zip(rounded, order[:3], strict=True):
        assert h["distance"] == pytest.approx(round(float(scores[i]), 2), abs=1e-6)
    dyn = client.search(name, data=[q.tolist()], limit=2, filter="half == true", output_fields=["*"])[0]
    assert all(h["entity"]["half"] is True and "v" in h["entity"] for h in dyn)


def test_range_search(client: MilvusClient, name: str) -> None:
    data = vectors(3)
    flat_collection(client, name, "L2", data)
    q = data[5]
    order, scores = brute(data, q, "L2")
    radius = float(np.sort(scores)[20])
    hits = client.search(name, data=[q.tolist()], limit=50,
                         search_params={"metric_type": "L2", "params": {"radius": radius, "range_filter": 0.0}})[0]
    assert {h["id"] for h in hits} == {int(i) for i in np.flatnonzero((scores < radius) & (scores >= 0.0))}


def test_group_by(client: MilvusClient, name: str) -> None:
    data = vectors(3)
    flat_collection(client, name, "L2", data)
    q = data[5]
    grouped = client.search(name, data=[q.tolist()], limit=3, group_by_field="grp", output_fields=["grp"])[0]
    assert len({h["entity"]["grp"] for h in grouped}) == 3


def test_hybrid_search(client: MilvusClient, name: str) -> None:
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("a", DataType.FLOAT_VECTOR, dim=4)
    schema.add_field("b", DataType.FLOAT_VECTOR, dim=4)
    index = client.prepare_index_params()
    index.add_index("a", index_type="FLAT", metric_type="L2")
    index.add_index("b", index_type="FLAT", metric_type="IP")
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
    rng = np.random.default_rng(4)
    rows = [{"id": i, "a": rng.random(4).tolist(), "b": rng.random(4).tolist()} for i in range(50)]
    client.insert(name, rows)
    reqs = [
        AnnSearchRequest([rows[7]["a"]], "a", {"metric_type": "L2"}, limit=10),
        AnnSearchRequest([rows[7]["b"]], "b", {"metric_type": "IP"}, limit=10),
    ]
    for ranker in (RRFRanker(60), WeightedRanker(0.9, 0.1)):
        hits = client.hybrid_search(name, reqs, ranker, limit=5)[0]
        assert len(hits) == 5 and hits[0]["id"] == 7


def test_search_iterator(client: MilvusClient, name: str) -> None:
    data = vectors(5)
    flat_collection(client, name, "L2", data)
    it = client.search_iterator(name, data=[data[0].tolist()], batch_size=40, limit=120, anns_field="v",
                                search_params={"metric_type": "L2"})
    seen: list[int] = []
    while True:
        page = it.next()
        if not page:
            break
        seen.extend(h["id"] for h in page)
    it.close()
    order, _ = brute(data, data[0], "L2")
    assert len(seen) == 120 and len(set(seen)) == 120
    assert set(seen) == set(order[:120].tolist())


def test_search_in_partition_and_session_ts(client: MilvusClient, name: str) -> None:
    client.create_collection(name, dimension=2)
    client.create_partition(name, "p")
    client.insert(name, [{"id": 1, "vector": [1.0, 0.0]}], partition_name="p")
    client.insert(name, [{"id": 2, "vector": [1.0, 0.0]}])
    res = client.search(name, data=[[1.0, 0.0]], limit=5, partition_names=["p"], consistency_level="Session")
    assert [h["id"] for h in res[0]] == [1]
