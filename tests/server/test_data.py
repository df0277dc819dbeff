"""Writing and reading rows: insert/upsert/delete/get/query, every type bit-exact."""

from __future__ import annotations

import numpy as np
from pymilvus import (
    Collection,
    CollectionSchema,
    DataType,
    FieldSchema,
    MilvusClient,
    connections,
)

RNG = np.random.default_rng(7)


def all_types_collection(client: MilvusClient, name: str) -> None:
    schema = client.create_schema(enable_dynamic_field=True)
    schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=16)
    schema.add_field("flag", DataType.BOOL, nullable=True)
    schema.add_field("i8", DataType.INT8, default_value=np.int8(-4))
    schema.add_field("i16", DataType.INT16)
    schema.add_field("i32", DataType.INT32, nullable=True)
    schema.add_field("i64", DataType.INT64)
    schema.add_field("f32", DataType.FLOAT)
    schema.add_field("f64", DataType.DOUBLE, nullable=True, default_value=2.5)
    schema.add_field("text", DataType.VARCHAR, max_length=12, nullable=True)
    schema.add_field("doc", DataType.JSON, nullable=True)
    schema.add_field("nums", DataType.ARRAY, element_type=DataType.INT64, max_capacity=4)
    schema.add_field("fv", DataType.FLOAT_VECTOR, dim=4)
    schema.add_field("bv", DataType.BINARY_VECTOR, dim=16)
    schema.add_field("hv", DataType.FLOAT16_VECTOR, dim=4)
    schema.add_field("bfv", DataType.BFLOAT16_VECTOR, dim=4)
    schema.add_field("iv", DataType.INT8_VECTOR, dim=4)
    schema.add_field("sv", DataType.SPARSE_FLOAT_VECTOR)
    index = client.prepare_index_params()
    index.add_index("fv", index_type="FLAT", metric_type="L2")
    index.add_index("bv", index_type="BIN_FLAT", metric_type="HAMMING")
    index.add_index("hv", index_type="FLAT", metric_type="IP")
    index.add_index("bfv", index_type="FLAT", metric_type="IP")
    index.add_index("iv", index_type="HNSW", metric_type="L2", params={"M": 8, "efConstruction": 32})
    index.add_index("sv", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")


def make_rows(n: int) -> list[dict]:
    rows = []
    for i in range(n):
        rows.append({
            "pk": f"k{i}",
            "flag": None if i % 3 == 0 else bool(i % 2),
            "i16": (i * 100) % 32000, "i32": None if i % 4 == 0 else -i, "i64": 2**40 + i,
            "f32": float(np.float32(i / 3)), "text": None if i % 5 == 0 else f"t{i}",
            "doc": None if i % 2 else {"i": i, "tags": ["a", str(i)]}, "nums": list(range(i % 4)),
            "fv": RNG.random(4, dtype=np.float32).tolist(),
            "bv": bytes(RNG.integers(0, 256, 2, dtype=np.uint8)),
            "hv": RNG.random(4).astype(np.float16),
            "bfv": bytes(RNG.integers(0, 256, 8, dtype=np.uint8)),
            "iv": RNG.integers(-128, 128, 4, dtype=np.int8),
            "sv": {int(k): float(np.float32(v)) for k, v in zip(RNG.choice(50, 3, replace=False), RNG.random(3), strict=True)},
            "extra": f"e{i}",
        })
        if i % 2:
            rows[-1]["i8"] = i % 128
    return rows


def test_every_type_round_trips_bit_exact(client: MilvusClient, name: str) -> None:
    all_types_collection(client, name)
    rows = make_rows(12)
    assert client.insert(name, rows)["insert_count"] == 12
    got = {r["pk"]: r for r in client.query(name, filter='pk != ""', output_fields=["*"])}
    assert len(got) == 12
    for src in rows:
        r = got[src["pk"]]
        assert r["flag"] == src["flag"]
        assert r["i8"] == src.get("i8", -4)  # default filled when missing
        assert (r["i16"], r["i32"], r["i64"]) == (src["i16"], src["i32"], src["i64"])
        assert np.float32(r["f32"]) == np.float32(src["f32"])
        assert r["f64"] == 2.5  # nullable with default: missing -> default
        assert r["text"] == src["text"] and r["doc"] == src["doc"] and r["nums"] == src["nums"]
        assert np.array_equal(np.asarray(r["fv"], np.float32), np.asarray(src["fv"], np.float32))
        assert bytes(r["bv"][0] if isinstance(r["bv"], list) else r["bv"]) == src["bv"]
        hv = r["hv"][0] if isinstance(r["hv"], list) else r["hv"]
        assert bytes(hv) == src["hv"].tobytes()
        bfv = r["bfv"][0] if isinstance(r["bfv"], list) else r["bfv"]
        assert bytes(bfv) == src["bfv"]
        iv = r["iv"][0] if isinstance(r["iv"], list) else r["iv"]
        assert bytes(iv) == src["iv"].tobytes()
        assert {int(k): np.float32(v) for k, v in dict(r["sv"]).items()} == {
            k: np.float32(v) for k, v in src["sv"].items()}
        assert r["extra"] == src["extra"]


def test_search_every_vector_type(client: MilvusClient, name: str) -> None:
    all_types_collection(client, name)
    rows = make_rows(10)
    client.insert(name, rows)
    target = rows[3]
    for field, query in [("fv", target["fv"]), ("bv", target["bv"]), ("iv", target["iv"])]:  # L2/HAMMING: itself
        hits = client.search(name, data=[query], anns_field=field, limit=3, output_fields=["pk"])
        assert hits[0][0]["entity"]["pk"] == "k3", field
    # hv is indexed for IP, where the row itself need not score highest: the best is whichever row
    # has the largest inner product with the query (row order in make_rows depends on who drew
    # from its generator first, e.g. test_backup imports it).
    query16 = np.asarray(target["hv"], dtype=np.float32)
    best_ip = max(rows, key=lambda r: float(np.dot(np.asarray(r["hv"], dtype=np.float32), query16)))
    hits = client.search(name, data=[target["hv"]], anns_field="hv", limit=3, output_fields=["pk"])
    assert hits[0][0]["entity"]["pk"] == best_ip["pk"]
    hits = client.search(name, data=[target["sv"]], anns_field="sv", limit=10, output_fields=["pk"])
    scores = {h["entity"]["pk"]: h["distance"] for h in hits[0]}
    best = max(rows, key=lambda r: sum(v * target["sv"].get(k, 0.0) for k, v in r["sv"].items()))
    assert max(scores, key=scores.get) == best["pk"]


def test_insert_upsert_delete_get(client: MilvusClient, name: str) -> None:
    client.create_collection(name, dimension=3, consistency_level="Strong")
    client.insert(name, [{"id": i, "vector": [float(i), 0.0, 1.0], "tag": f"t{i}"} for i in range(10)])
    res = client.upsert(name, [{"id": 3, "vector": [9.0, 9.0, 9.0], "tag": "new"}, {"id": 42, "vector": [0, 0, 1]}])
    assert res["upsert_count"] == 2
    got = client.get(name, ids=[3, 42], output_fields=["tag", "vector"])
    by_id = {r["id"]: r for r in got}
    assert by_id[3]["tag"] == "new" and by_id[3]["vector"] == [9.0, 9.0, 9.0]
    assert "tag" not in by_id[42] or by_id[42]["tag"] is None
    assert client.delete(name, ids=[1, 2])["delete_count"] == 2
    assert client.delete(name, filter='tag in ["t5", "t6"]')["delete_count"] == 2
    ids = sorted(r["id"] for r in client.query(name, filter="id >= 0"))
    assert ids == [0, 3, 4, 7, 8, 9, 42]
    assert client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"] == 7


def test_query_filters_output_fields_limit_offset(client: MilvusClient, name: str) -> None:
    client.create_collection(name, dimension=2, consistency_level="Strong")
    client.insert(name, [{"id": i, "vector": [0.0, 1.0], "color": ["red", "blue"][i % 2], "n": i} for i in range(20)])
    rows = client.query(name, filter='color == "red" and n > 10', output_fields=["color", "n"])
    assert sorted(r["n"] for r in rows) == [12, 14, 16, 18]
    assert set(rows[0]) == {"id", "color", "n"}
    page = client.query(name, filter="id >= 0", output_fields=["id"], limit=5, offset=5)
    assert len(page) == 5
    star = client.query(name, filter="id == 3", output_fields=["*"])[0]
    assert star["color"] == "blue" and star["n"] == 3 and len(star["vector"]) == 2
    only = client.query(name, filter="id == 3", output_fields=["n"])[0]
    assert set(only) == {"id", "n"}
    assert set(client.query(name, filter="id == 3")[0]) == {"id", "vector", "color", "n"}  # MilvusClient asks for *
    templ = client.query(name, filter="n in {vals}", filter_params={"vals": [1, 2]}, output_fields=["n"])
    assert sorted(r["n"] for r in templ) == [1, 2]
    assert client.query(name, filter='color == "red"', output_fields=["count(*)"])[0]["count(*)"] == 10


def test_auto_id_and_column_insert_with_orm(uri: str, name: str) -> None:
    connections.connect(alias="data_orm", uri=uri)
    try:
        schema = CollectionSchema([
            FieldSchema("id", DataType.INT64, is_primary=True, auto_id=True),
            FieldSchema("title", DataType.VARCHAR, max_length=20),
            FieldSchema("v", DataType.FLOAT_VECTOR, dim=2),
        ])
        coll = Collection(name, schema, using="data_orm", consistency_level="Strong")
        res = coll.insert([["a", "b", "c"], [[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]])
        assert res.insert_count == 3 and len(set(res.primary_keys)) == 3
        coll.create_index("v", {"index_type": "FLAT", "metric_type": "L2"})
        coll.load()
        rows = coll.query(expr='title in ["a", "c"]', output_fields=["title"])
        assert sorted(r["title"] for r in rows) == ["a", "c"]
        assert {r["id"] for r in rows} <= set(res.primary_keys)
        assert [set(r) for r in coll.query(expr='title == "b"')] == [{"id"}]  # ORM default: the key only
        coll.flush()
        assert coll.num_entities == 3
        coll.drop()
    finally:
        connections.disconnect("data_orm")


def test_flush_and_consistency_levels(client: MilvusClient, name: str) -> None:
    client.create_collection(name, dimension=2)
    client.insert(name, [{"id": i, "vector": [1.0, float(i)]} for i in range(5)])
    client.flush(name)
    assert client.get_collection_stats(name)["row_count"] == 5
    for level in ("Strong", "Session", "Bounded", "Eventually"):
        rows = client.query(name, filter="id >= 0", consistency_level=level)
        assert len(rows) == 5 or level in ("Bounded", "Eventually")
    client.insert(name, [{"id": 99, "vector": [0.0, 0.0]}])
    assert client.query(name, filter="id == 99", consistency_level="Session")[0]["id"] == 99
    res = client.query(name, filter="id >= 0", consistency_level="Strong")
    assert res.extra["iterator_session_ts"] > 0


def test_query_iterator_pages_through_everything(client: MilvusClient, name: str) -> None:
    client.create_collection(name, dimension=2, consistency_level="Strong")
    client.insert(name, [{"id": i, "vector": [0.0, 1.0], "n": i} for i in range(57)])
    it = client.query_iterator(name, batch_size=10, filter="n >= 0", output_fields=["n"])
    seen: list[int] = []
    while True:
        page = it.next()
        if not page:
            break
        assert len(page) <= 10
        seen.extend(r["id"] for r in page)
    it.close()
    assert seen == list(range(57))


def test_nullable_and_default_values(client: MilvusClient, name: str) -> None:
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    schema.add_field("age", DataType.INT32, nullable=True)
    schema.add_field("city", DataType.VARCHAR, max_length=10, default_value="nowhere")
    index = client.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
    client.insert(name, [
        {"id": 1, "v": [0, 1], "age": 30, "city": "Oslo"},
        {"id": 2, "v": [1, 0], "age": None},
        {"id": 3, "v": [1, 1], "city": None},
    ])
    rows = {r["id"]: r for r in client.query(name, filter="id > 0", output_fields=["age", "city"])}
    assert rows[1] == {"id": 1, "age": 30, "city": "Oslo"}
    assert rows[2]["age"] is None and rows[2]["city"] == "nowhere"
    assert rows[3]["age"] is None and rows[3]["city"] == "nowhere"
    assert [r["id"] for r in client.query(name, filter="age is null")] == [2, 3]
    hits = client.search(name, data=[[1.0, 0.0]], limit=3, output_fields=["age"])
    assert {h["id"]: h["entity"]["age"] for h in hits[0]} == {1: 30, 2: None, 3: None}


def test_nullable_vector_field(client: MilvusClient, name: str) -> None:
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    schema.add_field("nv", DataType.FLOAT_VECTOR, dim=2, nullable=True)
    index = client.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    index.add_index("nv", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
    client.insert(name, [{"id": 1, "v": [0.0, 1.0], "nv": None}, {"id": 2, "v": [1.0, 0.0], "nv": [2.0, 2.0]},
                         {"id": 3, "v": [1.0, 1.0], "nv": None}])
    rows = {r["id"]: r["nv"] for r in client.query(name, filter="id > 0", output_fields=["nv"])}
    assert rows == {1: None, 2: [2.0, 2.0], 3: None}
    hits = client.search(name, data=[[1.0, 1.0]], anns_field="v", limit=3, output_fields=["nv"])[0]
    assert {h["id"]: h["entity"]["nv"] for h in hits} == {1: None, 2: [2.0, 2.0], 3: None}
    only = client.search(name, data=[[1.0, 1.0]], anns_field="nv", limit=3)[0]
    assert [h["id"] for h in only] == [2]  # rows without a vector are not searchable
