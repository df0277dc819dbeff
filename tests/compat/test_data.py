"""Writing and reading rows: insert, upsert, delete, flush, get, query, count."""

from __future__ import annotations

import pytest
from pymilvus import MilvusClient

from tests.compat.helpers import create_products, product_rows

feature = pytest.mark.feature


@feature("insert")
def test_insert_reports_ids_and_count(client: MilvusClient, name: str) -> None:
    create_products(client, name, rows=[])
    res = client.insert(name, product_rows(50))
    assert res["insert_count"] == 50
    assert list(res["ids"]) == list(range(50))
    assert client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"] == 50


@feature("insert")
def test_auto_id_primary_keys(client: MilvusClient, name: str) -> None:
    client.create_collection(name, dimension=4, auto_id=True, consistency_level="Strong")
    res = client.insert(name, [{"vector": [float(i)] * 4} for i in range(5)])
    ids = list(res["ids"])
    assert len(set(ids)) == 5
    got = client.get(name, ids=ids[:2])
    assert sorted(r["id"] for r in got) == sorted(ids[:2])


@feature("upsert")
def test_upsert_replaces_and_inserts(client: MilvusClient, name: str) -> None:
    create_products(client, name, product_rows(10))
    changed = product_rows(1, start=3)[0] | {"title": "changed", "price": 999.0}
    new = product_rows(1, start=100)[0]
    res = client.upsert(name, [changed, new])
    assert res["upsert_count"] == 2
    got = client.get(name, ids=[3, 100], output_fields=["title", "price"])
    assert {r["id"]: r["title"] for r in got} == {3: "changed", 100: "item 100"}
    assert client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"] == 11


@feature("delete")
def test_delete_by_ids_and_by_filter(client: MilvusClient, name: str) -> None:
    create_products(client, name)
    res = client.delete(name, ids=[1, 2, 3])
    # servers before Milvus 2.3.2 answered with the deleted keys; pymilvus passes either on
    assert (res["delete_count"] if isinstance(res, dict) else len(res)) == 3
    client.delete(name, filter='category == "books"')
    left = client.query(name, filter="id < 10", output_fields=["category"])
    assert sorted(r["id"] for r in left) == [5, 6, 7, 9]
    assert client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"] == 200 - 3 - 50
    hits = client.search(name, data=[product_rows(5)[2]["embedding"]], limit=5)
    assert 2 not in [h["id"] for h in hits[0]]


@feature("delete")
def test_delete_then_reinsert_is_an_update(client: MilvusClient, name: str) -> None:
    create_products(client, name, product_rows(5))
    client.delete(name, filter="id == 1")
    client.insert(name, [product_rows(1, start=1)[0] | {"title": "updated"}])
    assert client.get(name, ids=[1], output_fields=["title"])[0]["title"] == "updated"


@feature("flush")
def test_flush_and_row_count(client: MilvusClient, name: str, orm: str) -> None:
    from pymilvus import Collection

    create_products(client, name)
    client.flush(name)
    assert client.get_collection_stats(name)["row_count"] == 200
    assert Collection(name, using=orm).num_entities == 200


@feature("query.get")
def test_get_by_primary_keys(client: MilvusClient, name: str) -> None:
    rows = create_products(client, name)
    got = client.get(name, ids=[5, 7, 12345], output_fields=["title", "tags", "metadata", "embedding"])
    assert sorted(r["id"] for r in got) == [5, 7]
    by = {r["id"]: r for r in got}
    assert by[5]["title"] == "item 5"
    assert by[5]["tags"] == rows[5]["tags"]
    assert by[5]["metadata"] == rows[5]["metadata"]
    assert by[7]["embedding"] == pytest.approx(rows[7]["embedding"])


@feature("query.filter")
@pytest.mark.parametrize(("expr", "want"), [
    ('category == "books" and id > 180', [184, 188, 192, 196]),
    ("id in [1, 2, 3] or id == 150", [1, 2, 3, 150]),
    ("price >= 100 and price <= 120 and id < 100", [10, 11, 12, 60, 61, 62]),
    ("not (id >= 3)", [0, 1, 2]),
    ('title like "item 19%" and id < 195', [19, 190, 191, 192, 193, 194]),
    ("id not in [0, 1] and id < 4", [2, 3]),
    ("10 < id < 14", [11, 12, 13]),
    ("id % 50 == 0", [0, 50, 100, 150]),
    ("created_at >= 1700000198", [198, 199]),
])
def test_query_filters(client: MilvusClient, name: str, expr: str, want: list[int]) -> None:
    create_products(client, name)
    got = client.query(name, filter=expr, output_fields=["id"])
    assert sorted(r["id"] for r in got) == want


@feature("query.limit_offset")
def test_query_limit_and_offset(client: MilvusClient, name: str) -> None:
    create_products(client, name)
    page = client.query(name, filter="id >= 0", output_fields=["id"], limit=10, offset=20)
    assert len(page) == 10
    everything = client.query(name, filter="id >= 0", output_fields=["id"], limit=200)
    assert len(everything) == 200


@feature("query.count")
def test_count_star(client: MilvusClient, name: str) -> None:
    create_products(client, name)
    assert client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"] == 200
    assert client.query(name, filter='category == "food"', output_fields=["count(*)"])[0]["count(*)"] == 50


@feature("filter.json")
def test_json_filters(client: MilvusClient, name: str) -> None:
    create_products(client, name)
    got = client.query(name, filter='metadata["brand"] == "b3" and metadata["stock"] > 5', output_fields=["metadata"])
    want = [i for i in range(200) if i % 7 == 3 and i % 11 > 5]
    assert sorted(r["id"] for r in got) == want
    got = client.query(name, filter='json_contains(metadata["sizes"], 3) and id < 20', output_fields=["id"])
    assert sorted(r["id"] for r in got) == [3, 7, 11, 15, 19]


@feature("filter.array")
def test_array_filters(client: MilvusClient, name: str) -> None:
    create_products(client, name)
    got = client.query(name, filter='array_contains(tags, "t7") and id < 30', output_fields=["tags"])
    assert sorted(r["id"] for r in got) == [4, 9, 14, 19, 24, 29]
    got = client.query(name, filter='array_contains_any(tags, ["t0", "t3"]) and id < 7', output_fields=["id"])
    assert sorted(r["id"] for r in got) == [0, 3, 5, 6]
    got = client.query(name, filter="array_length(tags) == 2 and tags[0] == \"t1\" and id < 8", output_fields=["id"])
    assert sorted(r["id"] for r in got) == [1, 4, 7]


@feature("filter.template")
def test_filter_templates(client: MilvusClient, name: str) -> None:
    create_products(client, name)
    got = client.query(name, filter="id in {ids} and category == {cat}",
                       filter_params={"ids": [1, 2, 3, 4, 5], "cat": "games"}, output_fields=["id"])
    assert sorted(r["id"] for r in got) == [1, 5]
