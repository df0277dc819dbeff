"""Vector search as the guide shows it: filters, ranges, grouping, batches, hybrid, iterators."""

from __future__ import annotations

import pytest
from pymilvus import AnnSearchRequest, DataType, MilvusClient, MilvusException, RRFRanker, WeightedRanker

from tests.compat.helpers import (
    DIM,
    create_products,
    exact_top,
    index_params,
    l2,
    product_rows,
    product_schema,
    vectors,
)

feature = pytest.mark.feature


@feature("search.basic")
def test_search_returns_exact_top_k_with_output_fields(client: MilvusClient, name: str) -> None:
    rows = create_products(client, name)
    q = vectors(1, seed=99)[0]
    res = client.search(name, data=[q], limit=10, output_fields=["title", "category"],
                        search_params={"metric_type": "L2", "params": {}})
    assert [h["id"] for h in res[0]] == exact_top(rows, q, 10)
    top = res[0][0]
    assert top["entity"]["title"] == f"item {top['id']}"
    assert set(top["entity"]) >= {"title", "category"}


@feature("search.batch")
def test_batch_search_answers_each_query(client: MilvusClient, name: str) -> None:
    rows = create_products(client, name)
    qs = [rows[i]["embedding"] for i in (3, 30, 130)]
    res = client.search(name, data=qs, limit=4)
    assert len(res) == 3
    assert [hits[0]["id"] for hits in res] == [3, 30, 130]
    assert all(len(hits) == 4 for hits in res)


@feature("search.filter")
@pytest.mark.parametrize("expr", [
    'price >= 100 and price <= 300 and category == "games"',
    'category in ["books", "tools"]',
    'title like "item 1%"',
    "id > 50 and not (category == 'food')",
])
def test_filtered_search_matches_exact_filtered_top_k(client: MilvusClient, name: str, expr: str) -> None:
    rows = create_products(client, name)
    preds = {
        'price >= 100 and price <= 300 and category == "games"':
            lambda r: 100 <= r["price"] <= 300 and r["category"] == "games",
        'category in ["books", "tools"]': lambda r: r["category"] in ("books", "tools"),
        'title like "item 1%"': lambda r: r["title"].startswith("item 1"),
        "id > 50 and not (category == 'food')": lambda r: r["id"] > 50 and r["category"] != "food",
    }
    q = vectors(1, seed=7)[0]
    res = client.search(name, data=[q], limit=10, filter=expr)
    assert [h["id"] for h in res[0]] == exact_top(rows, q, 10, preds[expr])


@feature("search.offset")
def test_search_offset_pages(client: MilvusClient, name: str) -> None:
    rows = create_products(client, name)
    q = vectors(1, seed=3)[0]
    page2 = client.search(name, data=[q], limit=5, offset=5)
    assert [h["id"] for h in page2[0]] == exact_top(rows, q, 10)[5:]


@feature("search.range")
def test_range_search(client: MilvusClient, name: str) -> None:
    rows = create_products(client, name)
    q = rows[0]["embedding"]
    dists = sorted(l2(r["embedding"], q) for r in rows)
    radius, range_filter = dists[20], dists[5]
    res = client.search(name, data=[q], limit=100,
                        search_params={"metric_type": "L2", "params": {"radius": radius, "range_filter": range_filter}})
    got = [h["distance"] for h in res[0]]
    assert got and all(range_filter - 1e-4 <= d < radius + 1e-4 for d in got)
    assert 13 <= len(got) <= 16


@feature("search.group_by")
def test_group_by_returns_one_hit_per_group(client: MilvusClient, name: str) -> None:
    create_products(client, name)
    res = client.search(name, data=[vectors(1, seed=5)[0]], limit=4, group_by_field="category",
                        output_fields=["category"])
    cats = [h["entity"]["category"] for h in res[0]]
    assert sorted(cats) == ["books", "food", "games", "tools"]


@feature("search.multi_vector")
def test_multiple_vector_fields(client: MilvusClient, name: str) -> None:
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("image_embedding", DataType.FLOAT_VECTOR, dim=8)
    schema.add_field("text_embedding", DataType.FLOAT_VECTOR, dim=12)
    ip = MilvusClient.prepare_index_params()
    ip.add_index("image_embedding", index_type="FLAT", metric_type="L2")
    ip.add_index("text_embedding", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=ip, consistency_level="Strong")
    img, txt = vectors(50, 8, seed=1), vectors(50, 12, seed=2)
    client.insert(name, [{"id": i, "image_embedding": img[i], "text_embedding": txt[i]} for i in range(50)])
    a = client.search(name, data=[img[9]], anns_field="image_embedding", limit=1)
    b = client.search(name, data=[txt[21]], anns_field="text_embedding", limit=1)
    assert a[0][0]["id"] == 9 and b[0][0]["id"] == 21


@feature("search.hybrid")
@pytest.mark.parametrize("ranker", ["rrf", "weighted"])
def test_hybrid_search(client: MilvusClient, name: str, ranker: str) -> None:
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("dense_a", DataType.FLOAT_VECTOR, dim=8)
    schema.add_field("dense_b", DataType.FLOAT_VECTOR, dim=8)
    ip = MilvusClient.prepare_index_params()
    ip.add_index("dense_a", index_type="FLAT", metric_type="L2")
    ip.add_index("dense_b", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=ip, consistency_level="Strong")
    a, b = vectors(60, 8, seed=11), vectors(60, 8, seed=12)
    client.insert(name, [{"id": i, "dense_a": a[i], "dense_b": b[i]} for i in range(60)])
    reqs = [AnnSearchRequest(data=[a[8]], anns_field="dense_a", param={"metric_type": "L2"}, limit=10),
            AnnSearchRequest(data=[b[8]], anns_field="dense_b", param={"metric_type": "L2"}, limit=10,
                             expr="id < 30")]
    rank = RRFRanker(60) if ranker == "rrf" else WeightedRanker(0.5, 0.5)
    res = client.hybrid_search(name, reqs, rank, limit=5)
    ids = [h["id"] for h in res[0]]
    assert len(ids) == 5 and ids[0] == 8 and len(set(ids)) == 5


@feature("load_release")
def test_release_makes_search_fail_until_loaded(client: MilvusClient, name: str) -> None:
    create_products(client, name)
    assert str(client.get_load_state(name)["state"]).endswith("Loaded")
    client.release_collection(name)
    assert str(client.get_load_state(name)["state"]).endswith("NotLoad")
    with pytest.raises(MilvusException) as err:
        client.search(name, data=[[0.1] * DIM], limit=1)
    assert err.value.code == 101
    client.load_collection(name)
    assert len(client.search(name, data=[[0.1] * DIM], limit=1)[0]) == 1


@feature("iterator.search")
def test_search_iterator_pages_through_everything(client: MilvusClient, name: str) -> None:
    create_products(client, name)
    it = client.search_iterator(name, data=[vectors(1, seed=4)[0]], batch_size=30, limit=120,
                                search_params={"metric_type": "L2", "params": {}}, output_fields=["id"])
    seen: list[int] = []
    last = -1.0
    while True:
        page = it.next()
        if not page:
            break
        for hit in page:
            assert hit["distance"] >= last - 1e-5
            last = hit["distance"]
            seen.append(hit["id"])
    it.close()
    assert len(seen) == 120 and len(set(seen)) == 120


@feature("iterator.query")
def test_query_iterator_returns_each_row_once(client: MilvusClient, name: str) -> None:
    create_products(client, name)
    it = client.query_iterator(name, batch_size=37, filter='category != "food"', output_fields=["id", "category"])
    seen: list[int] = []
    while True:
        page = it.next()
        if not page:
            break
        assert len(page) <= 37
        seen.extend(r["id"] for r in page)
    it.close()
    assert sorted(seen) == [i for i in range(200) if i % 4 != 3]


@feature("search.growing_and_sealed")
def test_search_sees_flushed_and_fresh_rows(client: MilvusClient, name: str) -> None:
    rows = create_products(client, name)
    client.flush(name)
    fresh = product_rows(10, start=500, seed=42)
    client.insert(name, fresh)
    q = fresh[3]["embedding"]
    res = client.search(name, data=[q], limit=1, consistency_level="Strong")
    assert res[0][0]["id"] == 503
    assert [h["id"] for h in client.search(name, data=[rows[9]["embedding"]], limit=1)[0]] == [9]


@feature("search.default_params")
def test_search_params_are_optional(client: MilvusClient, name: str) -> None:
    client.create_collection(name, schema=product_schema(),
                             index_params=index_params("HNSW", "L2", M=16, efConstruction=64))
    client.insert(name, product_rows(50))
    client.load_collection(name)
    assert len(client.search(name, data=[[0.3] * DIM], limit=5)[0]) == 5
