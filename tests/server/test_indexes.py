"""Indexes, compaction and the remaining management calls of a Milvus user's script."""

from __future__ import annotations

import time
import urllib.request

import numpy as np
from conftest import Target
from pymilvus import (
    Collection,
    CollectionSchema,
    DataType,
    FieldSchema,
    MilvusClient,
    connections,
    utility,
)


def test_index_lifecycle_with_client(client: MilvusClient, name: str) -> None:
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=8)
    schema.add_field("n", DataType.INT64)
    client.create_collection(name, schema=schema)
    data = np.random.default_rng(0).random((500, 8), dtype=np.float32)
    client.insert(name, [{"id": i, "v": data[i].tolist(), "n": i} for i in range(500)])
    client.flush(name)
    index = client.prepare_index_params()
    index.add_index("v", index_name="vidx", index_type="HNSW", metric_type="COSINE", params={"M": 8, "efConstruction": 40})
    index.add_index("n", index_name="nidx", index_type="STL_SORT")
    client.create_index(name, index)
    assert set(client.list_indexes(name)) == {"vidx", "nidx"}
    desc = client.describe_index(name, "vidx")
    assert desc["index_type"] == "HNSW" and desc["metric_type"] == "COSINE" and desc["field_name"] == "v"
    assert str(desc["M"]) == "8"
    client.alter_index_properties(name, "vidx", properties={"mmap.enabled": True})
    assert str(client.describe_index(name, "vidx").get("mmap.enabled")).lower() == "true"
    client.load_collection(name)
    hits = client.search(name, data=[data[3].tolist()], anns_field="v", limit=3, search_params={"params": {"ef": 64}})
    assert hits[0][0]["id"] == 3
    client.release_collection(name)
    client.drop_index(name, "nidx")
    assert client.list_indexes(name) == ["vidx"]
    assert client.describe_index(name, "nidx") is None  # pymilvus maps code 700 to None


def test_orm_index_progress_and_compaction(uri: str, name: str) -> None:
    connections.connect(alias="idx", uri=uri)
    try:
        schema = CollectionSchema([FieldSchema("id", DataType.INT64, is_primary=True), FieldSchema("v", DataType.FLOAT_VECTOR, dim=4)])
        coll = Collection(name, schema, using="idx")
        rng = np.random.default_rng(1)
        for part in range(3):
            coll.insert([list(range(part * 100, part * 100 + 100)), rng.random((100, 4), dtype=np.float32).tolist()])
            coll.flush()
        coll.delete("id < 50")
        coll.create_index("v", {"index_type": "IVF_FLAT", "metric_type": "L2", "params": {"nlist": 8}})
        assert utility.wait_for_index_building_complete(name, using="idx")
        progress = utility.index_building_progress(name, using="idx")
        assert progress["total_rows"] >= progress["indexed_rows"] >= 0
        coll.compact()
        deadline = time.monotonic() + 60
        while coll.get_compaction_state().state.name != "Completed" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert coll.get_compaction_state().state.name == "Completed"
        coll.load()
        assert coll.query("id >= 0", output_fields=["count(*)"])[0]["count(*)"] == 250
        coll.drop()
    finally:
        connections.disconnect("idx")


def test_connect_with_credentials_and_token(uri: str) -> None:
    assert MilvusClient(uri=uri, token="root:Milvus").list_databases()
    assert MilvusClient(uri=uri, user="root", password="Milvus").get_server_version()
    connections.connect(alias="cred", uri=uri, user="root", password="Milvus", db_name="default")
    try:
        assert utility.get_server_version(using="cred")
    finally:
        connections.disconnect("cred")


def test_alter_database_properties(client: MilvusClient, name: str) -> None:
    client.create_database("p_" + name, properties={"database.max.collections": 10})
    client.alter_database_properties("p_" + name, properties={"database.replica.number": 1})
    props = client.describe_database("p_" + name)
    assert props["database.max.collections"] == "10" and props["database.replica.number"] == "1"
    client.drop_database("p_" + name)


def test_engine_stats_reach_metrics(target_server: Target, client: MilvusClient, name: str) -> None:
    client.create_collection(name, dimension=2)
    client.insert(name, [{"id": 1, "vector": [0.5, 0.5]}])
    texts = {}
    for process, http in target_server.metrics_endpoints().items():  # a cluster: every role's engine
        with urllib.request.urlopen(f"{http}/metrics", timeout=30) as r:
            texts[process] = r.read().decode()
    assert any("shoal_engine_collections" in t for t in texts.values()), sorted(texts)
