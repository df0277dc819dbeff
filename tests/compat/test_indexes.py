"""Every index type the guide lists, distance metrics, scalar indexes, and index rebuilds."""

from __future__ import annotations

import pytest
from pymilvus import MilvusClient

from tests.compat.helpers import DIM, create_products, exact_top, index_params, product_rows, product_schema

feature = pytest.mark.feature

# (index_type, build params, search params) as in the guide's examples, scaled to 200 rows
INDEXES = [
    ("FLAT", {}, {}),
    ("IVF_FLAT", {"nlist": 16}, {"nprobe": 16}),
    ("IVF_SQ8", {"nlist": 16}, {"nprobe": 16}),
    ("IVF_PQ", {"nlist": 16, "m": 4, "nbits": 8}, {"nprobe": 16}),
    ("HNSW", {"M": 16, "efConstruction": 200}, {"ef": 100}),
    ("HNSW_PRQ", {"M": 16, "efConstruction": 200, "m": 4, "nbits": 8, "nrq": 2}, {"ef": 100}),
    ("SCANN", {"nlist": 16, "with_raw_data": True}, {"nprobe": 16}),
    ("AUTOINDEX", {}, {}),
    ("GPU_IVF_FLAT", {"nlist": 16}, {"nprobe": 16}),
    ("GPU_IVF_PQ", {"nlist": 16, "m": 4, "nbits": 8}, {"nprobe": 16}),
    ("GPU_CAGRA", {}, {}),
]


@pytest.mark.parametrize(("index_type", "build", "search"), [
    pytest.param(*spec, marks=pytest.mark.feature(f"index.{spec[0]}"), id=spec[0]) for spec in INDEXES])
def test_vector_index_builds_and_searches(client: MilvusClient, name: str, index_type: str, build: dict,
                                          search: dict) -> None:
    rows = product_rows()
    client.create_collection(name, schema=product_schema(), consistency_level="Strong")
    client.insert(name, rows)
    client.flush(name)
    client.create_index(name, index_params(index_type, "L2", **build))
    (idx,) = client.list_indexes(name)
    info = client.describe_index(name, idx)
    assert info["index_type"] == index_type
    assert info["field_name"] == "embedding"
    client.load_collection(name)
    query = rows[17]["embedding"]
    res = client.search(name, data=[query], limit=10, anns_field="embedding",
                        search_params={"metric_type": "L2", "params": search})
    ids = [h["id"] for h in res[0]]
    assert len(ids) == 10
    assert ids[0] == 17  # the query itself is in the collection
    exact = exact_top(rows, query, 10)
    if index_type == "FLAT":
        assert ids == exact
    elif index_type in ("IVF_FLAT", "HNSW", "AUTOINDEX"):  # approximate, but not by much here
        assert len(set(ids) & set(exact)) >= 8
    dists = [h["distance"] for h in res[0]]
    assert dists == sorted(dists)


@feature("index.manage")
def test_index_names_describe_and_drop(client: MilvusClient, name: str) -> None:
    client.create_collection(name, schema=product_schema(), consistency_level="Strong")
    client.create_index(name, index_params("IVF_FLAT", "L2", index_name="embedding_index", nlist=16))
    assert client.list_indexes(name) == ["embedding_index"]
    info = client.describe_index(name, "embedding_index")
    assert info["index_name"] == "embedding_index" and str(info["nlist"]) == "16"
    client.drop_index(name, "embedding_index")
    assert client.list_indexes(name) == []


@feature("index.rebuild")
def test_drop_and_rebuild_index(client: MilvusClient, name: str) -> None:
    create_products(client, name)
    client.release_collection(name)
    (idx,) = client.list_indexes(name)
    client.drop_index(name, idx)
    assert client.list_indexes(name) == []
    client.create_index(name, index_params("HNSW", "L2", M=32, efConstruction=200))
    client.load_collection(name)
    (idx,) = client.list_indexes(name)
    assert client.describe_index(name, idx)["index_type"] == "HNSW"
    assert len(client.search(name, data=[[0.5] * DIM], limit=3)[0]) == 3


@feature("index.scalar")
def test_scalar_indexes_keep_filters_right(client: MilvusClient, name: str) -> None:
    create_products(client, name)
    client.release_collection(name)
    ip = MilvusClient.prepare_index_params()
    ip.add_index(field_name="category", index_name="category_index")
    ip.add_index(field_name="price", index_name="price_index")
    client.create_index(name, ip)
    assert {"category_index", "price_index"} <= set(client.list_indexes(name))
    client.load_collection(name)
    got = client.query(name, filter='category == "tools" and price < 30', output_fields=["id"])
    assert sorted(r["id"] for r in got) == [2, 50, 102, 150]  # id % 4 == 2 and id % 50 < 3


@feature("metric")
@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
def test_distance_metrics_order(client: MilvusClient, name: str, metric: str) -> None:
    rows = create_products(client, name, metric=metric)
    query = rows[40]["embedding"]
    res = client.search(name, data=[query], limit=5, search_params={"metric_type": metric})
    scores = [h["distance"] for h in res[0]]
    if metric == "L2":
        assert scores == sorted(scores) and scores[0] == pytest.approx(0.0, abs=1e-4)
        assert res[0][0]["id"] == 40
    else:
        assert scores == sorted(scores, reverse=True)
    if metric == "COSINE":
        assert res[0][0]["id"] == 40 and scores[0] == pytest.approx(1.0, abs=1e-4)


@feature("index.errors")
def test_unknown_index_type_is_rejected(client: MilvusClient, name: str) -> None:
    from pymilvus import MilvusException

    client.create_collection(name, schema=product_schema())
    with pytest.raises(MilvusException):
        client.create_index(name, index_params("NO_SUCH_INDEX", "L2"))
