"""Every Milvus index type through real pymilvus: built, searched with good recall, validated.

Each index is built on one sealed segment of a clustered synthetic set (above the
engine's `min_index_rows`, so the index really is built and used), then searched at
default search parameters; recall@10 is measured against numpy brute force.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from conftest import ShoalProcess
from pymilvus import DataType, MilvusClient, MilvusException

N, DIM, CLUSTERS, NQ, K = 2000, 32, 20, 20, 10
EXACT = {"FLAT", "BIN_FLAT", "GPU_BRUTE_FORCE", "SPARSE_INVERTED_INDEX", "SPARSE_WAND"}


def clustered(seed: int = 7, n: int = N, dim: int = DIM) -> tuple[np.ndarray, np.ndarray]:
    """Rows around CLUSTERS centres, each cluster spread along its own few directions (as real
    embeddings have a low intrinsic dimension), and NQ queries near random rows."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(CLUSTERS, dim)) * 4
    spread = rng.normal(size=(CLUSTERS, 6, dim)) * 0.5
    label = rng.integers(0, CLUSTERS, n)
    data = centres[label] + np.einsum("nr,nrd->nd", rng.normal(size=(n, 6)), spread[label])
    data += 0.1 * rng.normal(size=(n, dim))
    queries = data[rng.choice(n, NQ, replace=False)] + 0.1 * rng.normal(size=(NQ, dim))
    return data.astype(np.float32), queries.astype(np.float32)


def brute_topk(data: np.ndarray, queries: np.ndarray, metric: str, k: int = K) -> np.ndarray:
    if metric == "L2":
        d = ((queries[:, None, :] - data[None, :, :]) ** 2).sum(-1)
        return np.argsort(d, axis=1, kind="stable")[:, :k]
    if metric == "COSINE":
        data = data / np.linalg.norm(data, axis=1, keepdims=True)
        queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    return np.argsort(-(queries @ data.T), axis=1, kind="stable")[:, :k]


def recall(hits: list, truth: np.ndarray) -> float:
    got = sum(len({h["id"] for h in row} & set(t.tolist())) for row, t in zip(hits, truth, strict=True))
    return got / truth.size


def wait_indexed(client: MilvusClient, name: str, index_name: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        desc = client.describe_index(name, index_name)
        if desc["state"] == "Finished" and desc["indexed_rows"] == desc["total_rows"] > 0:
            return desc
        assert desc["state"] != "Failed", desc
        assert time.monotonic() < deadline, desc
        time.sleep(0.1)


def build_and_load(
    client: MilvusClient, name: str, dtype: DataType, rows: list[dict], index_type: str, metric: str,
    params: dict | None = None, dim: int = DIM,
) -> dict:
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    if dtype == DataType.SPARSE_FLOAT_VECTOR:
        schema.add_field("v", dtype)
    else:
        schema.add_field("v", dtype, dim=dim)
    client.create_collection(name, schema=schema, consistency_level="Strong")
    for start in range(0, len(rows), 1000):
        client.insert(name, rows[start : start + 1000])
    client.flush(name)
    index = client.prepare_index_params()
    index.add_index("v", index_name="vidx", index_type=index_type, metric_type=metric, params=params or {})
    client.create_index(name, index)
    desc = wait_indexed(client, name, "vidx")
    client.load_collection(name)
    return desc


DENSE = [
    ("FLAT", "L2"), ("IVF_FLAT", "L2"), ("IVF_SQ8", "IP"), ("IVF_PQ", "L2"), ("HNSW", "COSINE"),
    ("HNSW_SQ", "IP"), ("HNSW_PQ", "L2"), ("HNSW_PRQ", "COSINE"), ("SCANN", "L2"), ("DISKANN", "COSINE"), ("AUTOINDEX", "COSINE"),
    ("GPU_IVF_FLAT", "L2"), ("GPU_IVF_PQ", "L2"), ("GPU_CAGRA", "L2"), ("GPU_BRUTE_FORCE", "IP"),
]


@pytest.mark.parametrize(("index_type", "metric"), DENSE)
def test_dense_index_recall(client: MilvusClient, name: str, index_type: str, metric: str) -> None:
    data, queries = clustered()
    rows = [{"id": i, "v": data[i]} for i in range(N)]
    desc = build_and_load(client, name, DataType.FLOAT_VECTOR, rows, index_type, metric)
    assert desc["index_type"] == index_type and desc["metric_type"] == metric
    assert desc["pending_index_rows"] == 0
    hits = client.search(name, data=queries.tolist(), limit=K, anns_field="v")
    r = recall(hits, brute_topk(data, queries, metric))
    assert r == 1.0 if index_type in EXACT else r >= 0.9, f"{index_type} recall {r}"
    # Milvus score order: L2 ascending distance, IP/COSINE descending similarity
    scores = [h["distance"] for h in hits[0]]
    assert scores == sorted(scores, reverse=metric != "L2")
    # filters pushed into the index: 0.1 % and 5 % of the rows
    for flt, keep in (("id % 1000 == 7", np.arange(N) % 1000 == 7), ("id % 20 == 3", np.arange(N) % 20 == 3)):
        allowed = np.flatnonzero(keep)
        hits = client.search(name, data=queries.tolist(), limit=K, anns_field="v", filter=flt)
        assert all(keep[h["id"]] for row in hits for h in row)
        truth = allowed[brute_topk(data[allowed], queries, metric, min(K, len(allowed)))]
        r = recall(hits, truth)
        assert r == 1.0 if index_type in EXACT or len(allowed) <= K else r >= 0.9, f"{index_type} {flt}: {r}"


def test_gpu_indexes_report_their_cpu_fallback(shoal: ShoalProcess, client: MilvusClient, name: str) -> None:
    data, _ = clustered()
    build_and_load(client, name, DataType.FLOAT_VECTOR, [{"id": i, "v": data[i]} for i in range(N)], "GPU_IVF_PQ", "L2")
    deadline = time.monotonic() + 120
    while "GPU_IVF_PQ" not in shoal.tail(2000) and time.monotonic() < deadline:
        time.sleep(0.1)
    lines = [ln for ln in shoal.tail(2000).splitlines() if "GPU_IVF_PQ" in ln]
    assert lines and "cpu fallback" in lines[-1].lower(), lines


@pytest.mark.parametrize(
    ("index_type", "params", "search_params"),
    [
        ("IVF_PQ", {"nlist": 32, "m": 8, "nbits": 8}, {"nprobe": 32}),
        ("HNSW", {"M": 16, "efConstruction": 100}, {"ef": 64}),
        ("SCANN", {"nlist": 32}, {"nprobe": 16, "reorder_k": 100}),
        ("IVF_RABITQ", {"nlist": 32, "refine": True, "refine_type": "FP32"}, {"nprobe": 16, "refine_k": 4}),
    ],
)
def test_index_build_and_search_params(
    client: MilvusClient, name: str, index_type: str, params: dict, search_params: dict
) -> None:
    data, queries = clustered(seed=3)
    desc = build_and_load(client, name, DataType.FLOAT_VECTOR, [{"id": i, "v": data[i]} for i in range(N)], index_type, "L2", params)
    for key, value in params.items():
        assert str(desc[key]) == str(value)
    hits = client.search(name, data=queries.tolist(), limit=K, search_params={"params": search_params})
    assert recall(hits, brute_topk(data, queries, "L2")) >= 0.9


def test_flat_build_params_reach_the_built_faiss_index(shoal: ShoalProcess, client: MilvusClient, name: str) -> None:
    """`params={"nlist": 7}` arrives as its own key: the faiss index on disk has 7 lists, not 128."""
    import faiss

    data, _ = clustered(seed=5)
    desc = build_and_load(client, name, DataType.FLOAT_VECTOR, [{"id": i, "v": data[i]} for i in range(N)], "IVF_FLAT", "L2", {"nlist": 7})
    assert desc["nlist"] == "7"
    where = shoal.data_dir / "segments" / str(client.describe_collection(name)["collection_id"])
    (path,) = where.glob("*.index/v/index.faiss")
    assert faiss.extract_index_ivf(faiss.read_index(str(path))).nlist == 7


@pytest.mark.parametrize(
    ("dtype", "index_type"),
    [
        (DataType.FLOAT16_VECTOR, "HNSW"), (DataType.FLOAT16_VECTOR, "IVF_FLAT"),
        (DataType.BFLOAT16_VECTOR, "HNSW"), (DataType.BFLOAT16_VECTOR, "IVF_SQ8"),
        (DataType.INT8_VECTOR, "HNSW"),  # FLAT on INT8: refused, as Milvus (test_milvus_suite_open_questions)
    ],
)
def test_half_precision_and_int8_vectors(client: MilvusClient, name: str, dtype: DataType, index_type: str) -> None:
    data, queries = clustered(seed=11)
    if dtype == DataType.INT8_VECTOR:
        data = np.clip(np.round(data * 8), -128, 127)
        queries = np.clip(np.round(queries * 8), -128, 127)
        as_dtype = np.int8
    else:
        as_dtype = np.float16 if dtype == DataType.FLOAT16_VECTOR else None
    if as_dtype is None:  # bfloat16: pymilvus takes float lists (it truncates to bf16 itself)
        data = (data.view(np.uint32) & 0xFFFF0000).view(np.float32)
        rows = [{"id": i, "v": data[i].tolist()} for i in range(N)]
        qs = [q.tolist() for q in queries]
    else:
        rows = [{"id": i, "v": data[i].astype(as_dtype)} for i in range(N)]
        qs = [q.astype(as_dtype) for q in queries]
    build_and_load(client, name, dtype, rows, index_type, "L2")
    hits = client.search(name, data=qs, limit=K, anns_field="v")
    truth = brute_topk(data.astype(np.float32), queries.astype(np.float32), "L2")
    r = recall(hits, truth)
    assert r >= (0.99 if index_type == "FLAT" else 0.9), r


def binary_set(seed: int = 5, dim: int = 128) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.integers(0, 2, (CLUSTERS, dim), dtype=np.uint8)
    flips = rng.random((N, dim)) < 0.08
    bits = centres[rng.integers(0, CLUSTERS, N)] ^ flips
    qflips = rng.random((NQ, dim)) < 0.05
    qbits = bits[rng.choice(N, NQ, replace=False)] ^ qflips
    return bits.astype(np.uint8), qbits.astype(np.uint8)


@pytest.mark.parametrize(
    ("index_type", "metric"), [("BIN_FLAT", "HAMMING"), ("BIN_FLAT", "JACCARD"), ("BIN_IVF_FLAT", "HAMMING"), ("BIN_IVF_FLAT", "JACCARD")]
)
def test_binary_indexes(client: MilvusClient, name: str, index_type: str, metric: str) -> None:
    bits, qbits = binary_set()
    rows = [{"id": i, "v": np.packbits(bits[i]).tobytes()} for i in range(N)]
    build_and_load(client, name, DataType.BINARY_VECTOR, rows, index_type, metric, dim=128)
    hits = client.search(name, data=[np.packbits(q).tobytes() for q in qbits], limit=K, anns_field="v")
    if metric == "HAMMING":
        dist = (qbits[:, None, :] != bits[None, :, :]).sum(-1).astype(np.float64)
    else:
        inter = (qbits[:, None, :] & bits[None, :, :]).sum(-1)
        union = (qbits[:, None, :] | bits[None, :, :]).sum(-1)
        dist = 1.0 - inter / np.maximum(union, 1)
    # ties at the k-th distance make any of the tied rows a correct answer
    for q, row in enumerate(hits):
        kth = np.sort(dist[q])[K - 1]
        got = np.array([h["id"] for h in row])
        assert np.allclose([h["distance"] for h in row], dist[q, got], atol=1e-5)
        good = (dist[q, got] <= kth + 1e-6).mean()
        assert good == 1.0 if index_type == "BIN_FLAT" else good >= 0.9
    r = recall(hits, np.argsort(dist, axis=1, kind="stable")[:, :K])
    assert r >= 0.9 if index_type == "BIN_IVF_FLAT" else r >= 0.8  # exact up to ties


@pytest.mark.parametrize("metric", ["SUBSTRUCTURE", "SUPERSTRUCTURE"])
def test_structure_metrics_on_bin_flat_match_bit_containment(client: MilvusClient, name: str, metric: str) -> None:
    """Milvus's chemical-structure metrics (BIN_FLAT only): a row matches when the query's bits all
    lie in it (SUBSTRUCTURE) or its bits all lie in the query (SUPERSTRUCTURE), at distance 0;
    rows that do not match are not returned."""
    rng = np.random.default_rng(3)
    bits = (rng.random((N, 32)) < 0.3).astype(np.uint8)
    rows = [{"id": i, "v": np.packbits(bits[i]).tobytes()} for i in range(N)]
    build_and_load(client, name, DataType.BINARY_VECTOR, rows, "BIN_FLAT", metric, dim=32)
    queries = [bits[5] & (rng.random(32) < 0.5), bits[9] | (rng.random(32) < 0.5)]
    hits = client.search(name, data=[np.packbits(q).tobytes() for q in queries], limit=N, anns_field="v",
                         search_params={"metric_type": metric})
    for q, row in zip(queries, hits, strict=True):
        inside = (bits & q) == q if metric == "SUBSTRUCTURE" else (bits & q) == bits
        assert sorted(h["id"] for h in row) == np.flatnonzero(inside.all(axis=1)).tolist()
        assert {h["distance"] for h in row} <= {0.0}
    client.release_collection(name)
    client.drop_index(name, "v")
    index = client.prepare_index_params()
    index.add_index("v", index_type="BIN_IVF_FLAT", metric_type=metric, params={"nlist": 8})
    with pytest.raises(MilvusException) as err:
        client.create_index(name, index)
    assert f"metric type {metric} not found or not supported, supported: [HAMMING JACCARD]" in err.value.message


@pytest.mark.parametrize("index_type", ["SPARSE_INVERTED_INDEX", "SPARSE_WAND"])
def test_sparse_indexes(client: MilvusClient, name: str, index_type: str) -> None:
    rng = np.random.default_rng(13)
    vocab = 500
    dense = np.zeros((N, vocab), np.float32)
    for i in range(N):
        cols = rng.choice(vocab, 12, replace=False)
        dense[i, cols] = rng.random(12).astype(np.float32) + 0.01
    rows = [{"id": i, "v": {int(c): float(dense[i, c]) for c in np.flatnonzero(dense[i])}} for i in range(N)]
    build_and_load(client, name, DataType.SPARSE_FLOAT_VECTOR, rows, index_type, "IP")
    queries = [rows[i]["v"] for i in rng.choice(N, NQ, replace=False)]
    qdense = np.zeros((NQ, vocab), np.float32)
    for q, d in enumerate(queries):
        for c, v in d.items():
            qdense[q, c] = v
    hits = client.search(name, data=queries, limit=K, anns_field="v", search_params={"metric_type": "IP"})
    scores = qdense @ dense.T
    for q, row in enumerate(hits):
        got = np.array([h["id"] for h in row])
        assert np.allclose([h["distance"] for h in row], scores[q, got], rtol=1e-4, atol=1e-5)
        assert np.all(scores[q, got] >= np.sort(scores[q])[-K] - 1e-5)


# ---------------------------------------------------------------- parameter validation

BAD_PARAMS = [
    ("IVF_FLAT", "L2", {"nlist": 0}),
    ("IVF_FLAT", "L2", {"nlist": 70000}),
    ("IVF_FLAT", "L2", {"nlist": "many"}),
    ("IVF_PQ", "L2", {"nlist": 16, "m": 5}),  # 32 is not a multiple of 5
    ("IVF_PQ", "L2", {"nlist": 16, "m": 8, "nbits": 0}),
    ("IVF_PQ", "L2", {"nlist": 16, "m": 8, "nbits": 64}),
    ("HNSW", "L2", {"M": 1}),
    ("HNSW", "L2", {"M": 4096}),
    ("HNSW", "L2", {"M": 16, "efConstruction": 0}),
    ("HNSW_SQ", "L2", {"sq_type": "SQ3"}),
    ("HNSW_PQ", "L2", {"m": 7}),
    ("GPU_CAGRA", "L2", {"intermediate_graph_degree": 32, "graph_degree": 64}),
    ("SPARSE_INVERTED_INDEX", "IP", {}),  # not for a dense field
    ("BIN_FLAT", "HAMMING", {}),
    ("FLAT", "HAMMING", {}),  # binary metric on a float field
    ("NO_SUCH_INDEX", "L2", {}),
    ("HNSW", "MANHATTAN", {}),
]


@pytest.mark.parametrize(("index_type", "metric", "params"), BAD_PARAMS)
def test_bad_index_params_are_1100(client: MilvusClient, name: str, index_type: str, metric: str, params: dict) -> None:
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    client.create_collection(name, schema=schema)
    index = client.prepare_index_params()
    index.add_index("v", index_type=index_type, metric_type=metric, params=params)
    with pytest.raises(MilvusException) as err:
        client.create_index(name, index)
    assert err.value.code == 1100, err.value
    assert client.list_indexes(name) == []


@pytest.mark.parametrize(
    ("index_type", "params", "search_params"),
    [
        ("HNSW", {"M": 8, "efConstruction": 64}, {"ef": 5}),  # ef below limit
        ("HNSW", {"M": 8, "efConstruction": 64}, {"ef": "deep"}),
        ("IVF_FLAT", {"nlist": 16}, {"nprobe": 0}),
        ("SCANN", {"nlist": 16}, {"reorder_k": 3}),
    ],
)
def test_bad_search_params_are_1100(
    client: MilvusClient, name: str, index_type: str, params: dict, search_params: dict
) -> None:
    data, queries = clustered(seed=2, n=1200)
    rows = [{"id": i, "v": data[i]} for i in range(len(data))]
    build_and_load(client, name, DataType.FLOAT_VECTOR, rows, index_type, "L2", params)
    with pytest.raises(MilvusException) as err:
        client.search(name, data=queries[:1].tolist(), limit=K, search_params={"params": search_params})
    assert err.value.code == 1100, err.value


@pytest.mark.parametrize("index_type", ["HNSW", "IVF_FLAT"])
def test_filter_that_excludes_the_query_neighbourhood_still_answers(
    client: MilvusClient, name: str, index_type: str
) -> None:
    """Queries sit in cluster 0 and the filter keeps only other clusters: the index's nearest
    rows are all filtered out. Whether the filter keeps 95 % (applied after a deeper unfiltered
    search) or 15 % (inside faiss), every query still gets its ten nearest allowed rows; faiss's
    HNSW alone returns none for such a query."""
    rng = np.random.default_rng(5)
    n = 30_000  # 15 % of it is more than the 4,096 rows the reader scores exactly
    centres = rng.normal(size=(CLUSTERS, DIM)) * 4
    grp = rng.integers(0, CLUSTERS, n)
    data = (centres[grp] + rng.normal(size=(n, DIM))).astype(np.float32)
    queries = (centres[0] + rng.normal(size=(NQ, DIM))).astype(np.float32)
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("grp", DataType.INT64)
    client.create_collection(name, schema=schema, consistency_level="Strong")
    for start in range(0, n, 5000):
        client.insert(name, [{"id": i, "v": data[i], "grp": int(grp[i])} for i in range(start, min(n, start + 5000))])
    client.flush(name)
    index = client.prepare_index_params()
    index.add_index("v", index_name="vidx", index_type=index_type, metric_type="L2", params={})
    client.create_index(name, index)
    wait_indexed(client, name, "vidx")
    client.load_collection(name)
    for flt, keep in (("grp != 0", grp != 0), ("grp in [1, 2, 3]", np.isin(grp, [1, 2, 3]))):
        hits = client.search(name, data=queries.tolist(), limit=K, anns_field="v", filter=flt)
        assert all(len(row) == K for row in hits), [len(row) for row in hits]
        assert all(keep[h["id"]] for row in hits for h in row)
        allowed = np.flatnonzero(keep)
        r = recall(hits, allowed[brute_topk(data[allowed], queries, "L2")])
        assert r >= 0.9, f"{index_type} {flt}: recall {r}"
