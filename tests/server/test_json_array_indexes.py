"""Indexes Milvus 2.6 accepts on JSON paths, dynamic-field keys, ARRAY fields, VARCHAR
(STL_SORT, NGRAM) through real pymilvus: created, described as Milvus describes them, and
filters on the indexed fields answer exactly what a Python scan of the rows answers.
"""

from __future__ import annotations

import time

import pytest
from pymilvus import DataType, MilvusClient, MilvusException

N = 300


def rows() -> list[dict]:
    out = []
    for i in range(N):
        meta = {"price": i % 50, "color": ["red", "green", "blue"][i % 3], "tags": [f"t{i % 4}", f"t{i % 5}"]}
        if i % 11 == 0:
            meta = {"other": True}
        out.append({
            "id": i, "meta": meta, "arr": [i % 7, i % 3], "name": f"item-{i:04d}-{'xyz' if i % 6 == 0 else 'abc'}",
            "v": [float(i % 10), 1.0], "size": i % 9,
        })
    return out


@pytest.fixture()
def coll(client: MilvusClient, name: str) -> str:
    schema = client.create_schema(enable_dynamic_field=True)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("meta", DataType.JSON)
    schema.add_field("arr", DataType.ARRAY, element_type=DataType.INT64, max_capacity=4)
    schema.add_field("name", DataType.VARCHAR, max_length=64)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    client.create_collection(name, schema=schema)
    client.insert(name, rows())
    client.flush(name)
    client.release_collection(name)
    yield name
    client.drop_collection(name)


def scan(pred) -> list[int]:  # noqa: ANN001
    return [r["id"] for r in rows() if pred(r)]


def test_json_path_array_ngram_and_varchar_indexes(client: MilvusClient, coll: str) -> None:
    idx = client.prepare_index_params()
    idx.add_index("meta", index_type="INVERTED", params={"json_path": 'meta["price"]', "json_cast_type": "double"})
    idx.add_index("meta", index_type="INVERTED", params={"json_path": 'meta["color"]', "json_cast_type": "varchar"})
    idx.add_index("meta", index_name="tags_idx", index_type="INVERTED",
                  params={"json_path": 'meta["tags"]', "json_cast_type": "array_varchar"})
    idx.add_index("arr", index_type="BITMAP")
    idx.add_index("name", index_name="name_sort", index_type="STL_SORT")
    idx.add_index("size", index_type="INVERTED", params={"json_cast_type": "double"})  # a dynamic-field key
    client.create_index(coll, idx)
    names = set(client.list_indexes(coll))
    assert {"meta/price", "meta/color", "tags_idx", "arr", "name_sort", "size"} <= names
    price = client.describe_index(coll, "meta/price")
    assert price["json_path"] == 'meta["price"]' and price["json_cast_type"] == "DOUBLE"
    assert price["index_type"] == "INVERTED"
    client.load_collection(coll)

    def ids(expr: str) -> list[int]:
        return sorted(r["id"] for r in client.query(coll, filter=expr, output_fields=["id"]))

    def meta(r: dict, key: str):  # noqa: ANN202
        return r["meta"].get(key)

    assert ids('meta["price"] > 40') == scan(lambda r: (meta(r, "price") or -1) > 40)
    assert ids('meta["color"] == "red"') == scan(lambda r: meta(r, "color") == "red")
    assert ids('json_contains(meta["tags"], "t3")') == scan(lambda r: "t3" in (meta(r, "tags") or []))
    assert ids("array_contains(arr, 6)") == scan(lambda r: 6 in r["arr"])
    assert ids('name > "item-0290"') == scan(lambda r: r["name"] > "item-0290")
    assert ids("size == 4") == scan(lambda r: r["size"] == 4)


def test_ngram_index_and_bad_requests(client: MilvusClient, coll: str) -> None:
    idx = client.prepare_index_params()
    idx.add_index("name", index_type="NGRAM", params={"min_gram": 2, "max_gram": 3})
    client.create_index(coll, idx)
    deadline = time.monotonic() + 120  # the flushed segment's n-gram index is built in the background
    while (desc := client.describe_index(coll, "name"))["indexed_rows"] < N:
        assert time.monotonic() < deadline, desc
        time.sleep(0.2)
    assert (desc["index_type"], desc["min_gram"], desc["max_gram"]) == ("NGRAM", "2", "3")
    client.load_collection(coll)
    for pattern, pred in [
        ("%xyz%", lambda r: "xyz" in r["name"]),
        ("%012%", lambda r: "012" in r["name"]),
        ("%-abc", lambda r: r["name"].endswith("-abc")),
        ("item-00_0-%z", lambda r: r["name"][:7] == "item-00" and r["name"][8:10] == "0-" and r["name"].endswith("z")),
        ("%2%", lambda r: "2" in r["name"]),  # shorter than min_gram: scanned, same answer
    ]:
        got = sorted(r["id"] for r in client.query(coll, filter=f'name like "{pattern}"', output_fields=["id"]))
        assert got == scan(pred), pattern
    client.release_collection(coll)
    for field, index_type, params in [
        ("meta", "INVERTED", {"json_path": 'meta["a"]', "json_cast_type": "float128"}),
        ("meta", "INVERTED", {"json_path": 'other["a"]', "json_cast_type": "double"}),
        ("arr", "STL_SORT", {}),
        ("id", "NGRAM", {"min_gram": 2, "max_gram": 3}),
        ("name", "NGRAM", {"min_gram": 3, "max_gram": 2}),
    ]:
        bad = client.prepare_index_params()
        bad.add_index(field, index_type=index_type, params=params)
        with pytest.raises(MilvusException) as err:
            client.create_index(coll, bad)
        assert err.value.code == 1100, (field, index_type, err.value)
