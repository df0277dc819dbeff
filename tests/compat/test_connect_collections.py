"""Connecting, databases and collection management, as the guide's first chapters do it."""

from __future__ import annotations

import numpy as np
import pytest
from pymilvus import DataType, MilvusClient, MilvusException, connections, utility

from tests.compat.helpers import DIM, create_products, product_rows, product_schema

feature = pytest.mark.feature


@feature("connect")
def test_orm_connect_and_list_connections(uri: str) -> None:
    connections.connect(alias="compat_conn", uri=uri)
    try:
        assert connections.has_connection("compat_conn")
        assert "compat_conn" in [alias for alias, _ in connections.list_connections()]
        assert isinstance(utility.get_server_version(using="compat_conn"), str)
    finally:
        connections.disconnect("compat_conn")


@feature("connect")
def test_client_server_version(client: MilvusClient) -> None:
    assert client.get_server_version()


@feature("database")
def test_database_lifecycle(uri: str, client: MilvusClient) -> None:
    db = "compat_db"
    if db in client.list_databases():
        client.drop_database(db)
    client.create_database(db)
    try:
        assert "default" in client.list_databases()
        assert db in client.list_databases()
        other = MilvusClient(uri=uri, db_name=db)
        other.create_collection("in_db", dimension=DIM)
        assert other.list_collections() == ["in_db"]
        assert "in_db" not in client.list_collections()
        client.use_database(db)
        assert "in_db" in client.list_collections()
        client.use_database("default")
        other.drop_collection("in_db")
        other.close()
    finally:
        client.use_database("default")
        client.drop_database(db)
    assert db not in client.list_databases()


@feature("database")
def test_unknown_database_is_an_error(uri: str) -> None:
    with pytest.raises(MilvusException):
        c = MilvusClient(uri=uri, db_name="no_such_db_compat")
        c.list_collections()


@feature("collection.quick_setup")
def test_quick_setup_collection(client: MilvusClient, name: str) -> None:
    client.create_collection(name, dimension=DIM)
    assert client.has_collection(name)
    client.insert(name, [{"id": i, "vector": [0.1 * i] * DIM, "color": "red"} for i in range(10)])
    res = client.search(name, data=[[0.5] * DIM], limit=3, output_fields=["color"])
    assert len(res[0]) == 3
    assert res[0][0]["entity"]["color"] == "red"


@feature("collection.schema_all_types")
def test_schema_with_every_scalar_type(client: MilvusClient, name: str) -> None:
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    schema.add_field("b", DataType.BOOL)
    schema.add_field("i8", DataType.INT8)
    schema.add_field("i16", DataType.INT16)
    schema.add_field("i32", DataType.INT32)
    schema.add_field("i64", DataType.INT64)
    schema.add_field("f", DataType.FLOAT)
    schema.add_field("d", DataType.DOUBLE)
    schema.add_field("s", DataType.VARCHAR, max_length=100)
    schema.add_field("j", DataType.JSON)
    schema.add_field("a", DataType.ARRAY, element_type=DataType.INT64, max_capacity=8)
    ip = MilvusClient.prepare_index_params()
    ip.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=ip)
    row = {"pk": "a1", "v": [1.0, 2.0, 3.0, 4.0], "b": True, "i8": -128, "i16": 32767, "i32": -(2**31),
           "i64": 2**63 - 1, "f": 1.5, "d": 2.25, "s": "héllo", "j": {"x": [1, {"y": None}]}, "a": [1, 2, 3]}
    client.insert(name, [row])
    got = client.query(name, filter='pk == "a1"', output_fields=["*"])
    assert len(got) == 1
    out = got[0]
    for key in ("pk", "b", "i8", "i16", "i32", "i64", "s", "j", "a", "d", "f"):
        assert out[key] == row[key], key
    assert out["v"] == pytest.approx(row["v"])
    desc = client.describe_collection(name)
    types = {f["name"]: f["type"] for f in desc["fields"]}
    assert types["i8"] == DataType.INT8 and types["j"] == DataType.JSON and types["a"] == DataType.ARRAY


@feature("collection.manage")
def test_describe_list_rename_stats_drop(client: MilvusClient, name: str) -> None:
    create_products(client, name)
    assert name in client.list_collections()
    desc = client.describe_collection(name)
    assert desc["collection_name"] == name
    assert [f["name"] for f in desc["fields"]][:2] == ["id", "embedding"]
    client.flush(name)
    assert client.get_collection_stats(name)["row_count"] == 200
    new = name + "_renamed"
    client.rename_collection(name, new)
    assert client.has_collection(new) and not client.has_collection(name)
    client.drop_collection(new)
    assert not client.has_collection(new)


@feature("collection.manage")
def test_create_existing_collection_with_other_schema_fails(client: MilvusClient, name: str) -> None:
    client.create_collection(name, schema=product_schema())
    with pytest.raises(MilvusException):
        client.create_collection(name, dimension=DIM + 1)


@feature("errors")
def test_missing_collection_errors(client: MilvusClient) -> None:
    assert not client.has_collection("compat_missing")
    with pytest.raises(MilvusException) as err:
        client.describe_collection("compat_missing")
    assert err.value.code == 100
    with pytest.raises(MilvusException):
        client.search("compat_missing", data=[[0.0] * DIM], limit=1)


@feature("errors")
def test_wrong_dimension_and_bad_filter_are_rejected(client: MilvusClient, name: str) -> None:
    create_products(client, name)
    with pytest.raises(MilvusException):
        client.insert(name, [{**product_rows(1)[0], "embedding": [0.0] * (DIM + 1)}])
    with pytest.raises(MilvusException):
        client.search(name, data=[[0.0] * (DIM + 3)], limit=1)
    with pytest.raises(MilvusException):
        client.query(name, filter="price >>> 3", limit=1)


@feature("collection.dynamic_field")
def test_dynamic_fields(client: MilvusClient, name: str) -> None:
    rows = product_rows(20)
    for i, r in enumerate(rows):
        r["custom_field_1"] = f"v{i % 2}"
        r["custom_field_2"] = i
    create_products(client, name, rows, dynamic=True)
    got = client.query(name, filter='custom_field_1 == "v1" and custom_field_2 > 10',
                       output_fields=["custom_field_1", "custom_field_2"])
    assert sorted(r["id"] for r in got) == [11, 13, 15, 17, 19]
    assert all(r["custom_field_1"] == "v1" for r in got)
    hits = client.search(name, data=[rows[3]["embedding"]], limit=1, output_fields=["custom_field_2"])
    assert hits[0][0]["entity"]["custom_field_2"] == 3


@feature("collection.nullable_default")
def test_nullable_and_default_values(client: MilvusClient, name: str) -> None:
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    schema.add_field("note", DataType.VARCHAR, max_length=50, nullable=True)
    schema.add_field("qty", DataType.INT32, default_value=np.int32(7))
    ip = MilvusClient.prepare_index_params()
    ip.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=ip, consistency_level="Strong")
    client.insert(name, [{"id": 1, "v": [0.0] * 4, "note": "x", "qty": 1},
                         {"id": 2, "v": [1.0] * 4, "note": None},
                         {"id": 3, "v": [2.0] * 4}])
    got = {r["id"]: r for r in client.query(name, filter="id > 0", output_fields=["note", "qty"])}
    assert got[1]["note"] == "x" and got[1]["qty"] == 1
    assert got[2]["note"] is None and got[2]["qty"] == 7
    assert got[3]["note"] is None and got[3]["qty"] == 7
    assert [r["id"] for r in client.query(name, filter="note is null", output_fields=["id"])] in ([2, 3], [3, 2])


@feature("consistency")
@pytest.mark.parametrize("level", ["Strong", "Bounded", "Session", "Eventually"])
def test_consistency_levels(client: MilvusClient, name: str, level: str) -> None:
    create_products(client, name, consistency=level)
    desc = client.describe_collection(name)
    assert desc["consistency_level"] in (level, {"Strong": 0, "Session": 1, "Bounded": 2, "Eventually": 3}[level])
    client.insert(name, product_rows(5, start=1000))
    # an explicit Strong read sees the write just made, whatever the collection default
    got = client.query(name, filter="id >= 1000", output_fields=["id"], consistency_level="Strong")
    assert sorted(r["id"] for r in got) == [1000, 1001, 1002, 1003, 1004]
    res = client.search(name, data=[product_rows(1)[0]["embedding"]], limit=1, consistency_level=level)
    assert len(res[0]) == 1
