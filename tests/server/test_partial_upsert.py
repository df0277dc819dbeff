"""Partial upsert (`upsert(..., partial_update=True)`) and `truncate_collection`, through pymilvus."""

from __future__ import annotations

import uuid

import pytest
from pymilvus import DataType, MilvusClient, MilvusException


@pytest.fixture(scope="module")
def client(target_server) -> MilvusClient:
    return MilvusClient(uri=target_server.uri)


def _collection(client: MilvusClient, dynamic: bool = True) -> str:
    name = f"pu_{uuid.uuid4().hex[:8]}"
    schema = client.create_schema(enable_dynamic_field=dynamic)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=4)
    schema.add_field("title", DataType.VARCHAR, max_length=64)
    schema.add_field("score", DataType.DOUBLE, nullable=True)
    schema.add_field("tag", DataType.VARCHAR, max_length=16, default_value="none")
    index = client.prepare_index_params()
    index.add_index("vec", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index)
    client.insert(name, [
        {"id": i, "vec": [float(i)] * 4, "title": f"t{i}", "score": i / 2, "tag": "orig", **({"color": "red"} if dynamic else {})}
        for i in range(5)
    ])
    return name


def _rows(client: MilvusClient, name: str) -> dict[int, dict]:
    got = client.query(name, filter="id >= 0", output_fields=["*"])
    return {r["id"]: r for r in got}


def test_partial_upsert_changes_only_the_given_fields(client: MilvusClient) -> None:
    name = _collection(client)
    res = client.upsert(name, [{"id": 1, "title": "new1"}, {"id": 4, "title": "new4"}], partial_update=True)
    assert res["upsert_count"] == 2
    client.upsert(name, [{"id": 3, "score": None, "size": 9}], partial_update=True)
    rows = _rows(client, name)
    assert len(rows) == 5
    assert rows[4]["title"] == "new4" and rows[4]["vec"] == [4.0] * 4
    assert rows[1]["title"] == "new1" and rows[1]["score"] == 0.5 and rows[1]["tag"] == "orig"
    assert rows[1]["vec"] == [1.0] * 4 and rows[1]["color"] == "red"
    assert rows[3]["title"] == "t3" and rows[3]["score"] is None and rows[3]["vec"] == [3.0] * 4
    assert rows[3]["color"] == "red" and rows[3]["size"] == 9  # dynamic keys merge
    assert rows[0] == {"id": 0, "vec": [0.0] * 4, "title": "t0", "score": 0.0, "tag": "orig", "color": "red"}
    hits = client.search(name, [[1.0] * 4], limit=1, output_fields=["title"])
    assert hits[0][0]["id"] == 1 and hits[0][0]["entity"]["title"] == "new1"


def test_partial_upsert_of_a_new_key_fills_defaults_or_fails_on_required_fields(client: MilvusClient) -> None:
    name = _collection(client)
    client.upsert(name, [{"id": 10, "vec": [0.5] * 4, "title": "fresh"}], partial_update=True)
    row = _rows(client, name)[10]
    assert row["title"] == "fresh" and row["score"] is None and row["tag"] == "none"
    with pytest.raises(MilvusException, match="title"):
        client.upsert(name, [{"id": 11, "vec": [0.5] * 4}], partial_update=True)
    assert 11 not in _rows(client, name)


def test_full_upsert_still_replaces_the_whole_row(client: MilvusClient) -> None:
    name = _collection(client)
    client.upsert(name, [{"id": 2, "vec": [9.0] * 4, "title": "whole"}])
    row = _rows(client, name)[2]
    assert row["title"] == "whole" and row["score"] is None and row["tag"] == "none" and "color" not in row


def test_truncate_collection_removes_every_row_and_keeps_the_collection(client: MilvusClient) -> None:
    name = _collection(client)
    client.flush(name)
    client.insert(name, [{"id": 100, "vec": [1.0] * 4, "title": "growing"}])
    client.truncate_collection(name)
    assert client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"] == 0
    assert client.describe_collection(name)["collection_name"] == name
    client.insert(name, [{"id": 1, "vec": [1.0] * 4, "title": "again"}])
    assert [r["title"] for r in client.query(name, filter="id >= 0", output_fields=["title"])] == ["again"]
    with pytest.raises(MilvusException):
        client.truncate_collection("no_such_collection_here")


def test_a_null_after_only_set_values_stays_null(client: MilvusClient) -> None:
    name = _collection(client, dynamic=False)  # the first insert set every score
    client.insert(name, [{"id": 50, "vec": [1.0] * 4, "title": "n", "score": None}])
    assert _rows(client, name)[50]["score"] is None
