"""Collections, partitions, aliases, load state and schema changes, as a Milvus user does them."""

from __future__ import annotations

import time

import numpy as np
import pytest
from pymilvus import (
    Collection,
    CollectionSchema,
    DataType,
    FieldSchema,
    MilvusClient,
    MilvusException,
    Partition,
    connections,
    utility,
)


@pytest.fixture()
def orm(uri: str):
    connections.connect(alias="default", uri=uri)
    yield "default"
    connections.disconnect("default")


def test_quick_create_describe_list_drop(client: MilvusClient, name: str) -> None:
    client.create_collection(name, dimension=8, metric_type="L2")
    assert client.has_collection(name)
    assert name in client.list_collections()
    d = client.describe_collection(name)
    assert d["collection_name"] == name and d["enable_dynamic_field"] is True
    fields = {f["name"]: f for f in d["fields"]}
    assert fields["id"]["is_primary"] and fields["vector"]["params"]["dim"] == 8
    assert client.get_load_state(name)["state"].name == "Loaded"
    idx = client.describe_index(name, index_name=client.list_indexes(name)[0])
    assert idx["metric_type"] == "L2"
    client.drop_collection(name)
    assert not client.has_collection(name)


def full_schema() -> CollectionSchema:
    return CollectionSchema(
        [
            FieldSchema("pk", DataType.VARCHAR, is_primary=True, max_length=32),
            FieldSchema("flag", DataType.BOOL, nullable=True),
            FieldSchema("i8", DataType.INT8, default_value=np.int8(3)),
            FieldSchema("i16", DataType.INT16),
            FieldSchema("i32", DataType.INT32),
            FieldSchema("i64", DataType.INT64),
            FieldSchema("f32", DataType.FLOAT, nullable=True, default_value=0.5),
            FieldSchema("f64", DataType.DOUBLE),
            FieldSchema("text", DataType.VARCHAR, max_length=20, nullable=True),
            FieldSchema("doc", DataType.JSON, nullable=True),
            FieldSchema("tags", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=4, max_length=10),
            FieldSchema("fv", DataType.FLOAT_VECTOR, dim=4),
            FieldSchema("bv", DataType.BINARY_VECTOR, dim=16),
            FieldSchema("hv", DataType.FLOAT16_VECTOR, dim=4),
            FieldSchema("bfv", DataType.BFLOAT16_VECTOR, dim=4),
            FieldSchema("iv", DataType.INT8_VECTOR, dim=4),
            FieldSchema("sv", DataType.SPARSE_FLOAT_VECTOR),
        ],
        description="all types",
        enable_dynamic_field=True,
    )


def test_orm_full_schema_round_trips(orm: str, name: str) -> None:
    coll = Collection(name, full_schema())
    again = Collection(name)
    got = {f.name: f for f in again.schema.fields}
    assert list(got) == [f.name for f in full_schema().fields]
    assert got["pk"].is_primary and got["pk"].params["max_length"] == 32
    assert got["flag"].nullable and got["i8"].default_value.int_data == 3
    assert got["f32"].default_value.float_data == pytest.approx(0.5)
    assert got["tags"].element_type == DataType.VARCHAR
    assert got["tags"].params["max_capacity"] == 4
    assert got["bv"].params["dim"] == 16 and got["sv"].dtype == DataType.SPARSE_FLOAT_VECTOR
    assert again.schema.enable_dynamic_field and again.schema.description == "all types"
    assert utility.has_collection(name)
    coll.drop()
    assert not utility.has_collection(name)


def test_rename_and_alter_properties_and_ttl(client: MilvusClient, name: str) -> None:
    client.create_collection(name, dimension=2)
    client.rename_collection(name, name + "_new")
    assert not client.has_collection(name) and client.has_collection(name + "_new")
    client.alter_collection_properties(name + "_new", properties={"collection.ttl.seconds": 3600})
    props = client.describe_collection(name + "_new")["properties"]
    assert props["collection.ttl.seconds"] == "3600"
    client.drop_collection_properties(name + "_new", property_keys=["collection.ttl.seconds"])
    assert "collection.ttl.seconds" not in client.describe_collection(name + "_new")["properties"]
    with pytest.raises(MilvusException) as e:
        client.alter_collection_properties(name + "_new", properties={"collection.ttl.seconds": "soon"})
    assert e.value.code == 1100
    client.drop_collection(name + "_new")


def test_partitions(client: MilvusClient, name: str) -> None:
    client.create_collection(name, dimension=2)
    client.create_partition(name, "p1")
    assert client.has_partition(name, "p1")
    assert set(client.list_partitions(name)) == {"_default", "p1"}
    client.insert(name, [{"id": 1, "vector": [1.0, 0.0]}], partition_name="p1")
    client.insert(name, [{"id": 2, "vector": [0.0, 1.0]}])
    assert client.get_partition_stats(name, "p1")["row_count"] == 1
    hits = client.search(name, data=[[1.0, 0.0]], limit=5, partition_names=["p1"])
    assert [h["id"] for h in hits[0]] == [1]
    rows = client.query(name, filter="id > 0", partition_names=["_default"])
    assert [r["id"] for r in rows] == [2]
    client.release_partitions(name, ["p1"])
    client.drop_partition(name, "p1")
    assert not client.has_partition(name, "p1")
    with pytest.raises(MilvusException):
        client.create_partition(name, "(bad)")  # a digit may lead, as in Milvus; "(" may not


def test_orm_partitions(orm: str, name: str) -> None:
    schema = CollectionSchema([FieldSchema("id", DataType.INT64, is_primary=True), FieldSchema("v", DataType.FLOAT_VECTOR, dim=2)])
    coll = Collection(name, schema)
    part = Partition(coll, "news")
    assert coll.has_partition("news") and {p.name for p in coll.partitions} == {"_default", "news"}
    part.insert([[1, 2], [[0.0, 1.0], [1.0, 0.0]]])
    coll.flush()
    assert part.num_entities == 2 and coll.num_entities == 2
    coll.drop()


def test_partition_key(client: MilvusClient, name: str) -> None:
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("tenant", DataType.VARCHAR, max_length=16, is_partition_key=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    index = client.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index, num_partitions=4)
    assert client.describe_collection(name)["num_partitions"] == 4
    client.insert(name, [{"id": i, "tenant": f"t{i % 3}", "v": [float(i), 0.0]} for i in range(9)])
    rows = client.query(name, filter='tenant == "t1"', output_fields=["id"])
    assert sorted(r["id"] for r in rows) == [1, 4, 7]
    hits = client.search(name, data=[[4.0, 0.0]], limit=2, filter='tenant == "t1"')
    assert [h["id"] for h in hits[0]] == [4, 1] or [h["id"] for h in hits[0]] == [4, 7]


def test_aliases(client: MilvusClient, name: str) -> None:
    client.create_collection(name, dimension=2)
    client.create_collection(name + "_b", dimension=2)
    client.create_alias(name, "al_" + name)
    assert client.describe_alias("al_" + name)["collection_name"] == name
    assert "al_" + name in client.list_aliases(name)["aliases"]
    client.insert("al_" + name, [{"id": 7, "vector": [0.5, 0.5]}])
    assert client.get(name, ids=[7])[0]["id"] == 7
    client.alter_alias(name + "_b", "al_" + name)
    assert client.describe_alias("al_" + name)["collection_name"] == name + "_b"
    assert client.get("al_" + name, ids=[7]) == []
    client.drop_alias("al_" + name)
    with pytest.raises(MilvusException) as e:
        client.describe_alias("al_" + name)
    assert e.value.code in (1600, 100)


def test_load_release_and_state(client: MilvusClient, name: str) -> None:
    client.create_collection(name, dimension=2)
    client.release_collection(name)
    assert client.get_load_state(name)["state"].name == "NotLoad"
    with pytest.raises(MilvusException) as e:
        client.search(name, data=[[0.0, 1.0]], limit=1)
    assert e.value.code == 101
    client.load_collection(name)
    assert client.get_load_state(name)["state"].name == "Loaded"


def test_orm_load_and_index(orm: str, name: str) -> None:
    schema = CollectionSchema([FieldSchema("id", DataType.INT64, is_primary=True), FieldSchema("v", DataType.FLOAT_VECTOR, dim=2)])
    coll = Collection(name, schema)
    coll.create_index("v", {"index_type": "IVF_FLAT", "metric_type": "IP", "params": {"nlist": 4}})
    assert coll.has_index() and coll.index().params["index_type"] == "IVF_FLAT"
    coll.load()
    assert utility.load_state(name).name == "Loaded"
    assert utility.loading_progress(name)["loading_progress"] == "100%"
    coll.release()
    coll.drop_index()
    assert not coll.has_index()
    coll.drop()


def test_add_collection_field(client: MilvusClient, name: str) -> None:
    client.create_collection(name, dimension=2)
    client.insert(name, [{"id": 1, "vector": [0.0, 1.0]}])
    client.add_collection_field(name, field_name="score", data_type=DataType.INT32, nullable=True, default_value=np.int32(5))
    fields = {f["name"] for f in client.describe_collection(name)["fields"]}
    assert "score" in fields
    client.insert(name, [{"id": 2, "vector": [1.0, 0.0], "score": 9}])
    rows = {r["id"]: r["score"] for r in client.query(name, filter="id > 0", output_fields=["score"])}
    assert rows[2] == 9 and rows[1] in (5, None)
    with pytest.raises(MilvusException) as e:
        client.add_collection_field(name, field_name="strict", data_type=DataType.INT32)
    assert e.value.code == 1100


def test_ttl_hides_expired_rows(client: MilvusClient, name: str) -> None:
    client.create_collection(name, dimension=2, consistency_level="Strong", properties={"collection.ttl.seconds": 2})
    client.insert(name, [{"id": 1, "vector": [0.0, 1.0]}])
    assert len(client.query(name, filter="id > 0")) == 1
    time.sleep(2.5)
    assert client.query(name, filter="id > 0") == []
    assert client.search(name, data=[[0.0, 1.0]], limit=1)[0] == []
