"""The guide's ORM walkthrough (Collection, Partition, utility), compaction, and users/roles."""

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
    utility,
)

from tests.compat.helpers import create_products, product_rows

feature = pytest.mark.feature


def _documents(orm: str, name: str) -> Collection:
    fields = [
        FieldSchema(name="id", dtype=DataType.INT64, is_primary=True, auto_id=False),
        FieldSchema(name="embedding", dtype=DataType.FLOAT_VECTOR, dim=128),
        FieldSchema(name="text", dtype=DataType.VARCHAR, max_length=1000),
        FieldSchema(name="category", dtype=DataType.VARCHAR, max_length=100),
    ]
    schema = CollectionSchema(fields=fields, description="documents")
    return Collection(name=name, schema=schema, using=orm, consistency_level="Strong")


@feature("orm.walkthrough")
def test_guide_orm_walkthrough(orm: str, name: str) -> None:
    collection = _documents(orm, name)
    collection.create_index(field_name="embedding", index_name="embedding_index",
                            index_params={"metric_type": "L2", "index_type": "IVF_FLAT", "params": {"nlist": 16}})
    rng = np.random.default_rng(0)
    vecs = rng.random((5, 128), dtype=np.float32).tolist()
    collection.insert([[1, 2, 3, 4, 5], vecs, [f"text {i}" for i in range(1, 6)], ["A", "B", "A", "B", "A"]])
    collection.flush()
    assert collection.num_entities == 5
    collection.load()
    results = collection.search(data=[vecs[2]], anns_field="embedding",
                                param={"metric_type": "L2", "params": {"nprobe": 10}}, limit=10,
                                output_fields=["text", "category"], expr="category == 'A'")
    hits = list(results[0])
    assert [h.id for h in hits] and hits[0].id == 3
    assert hits[0].entity.get("text") == "text 3"
    assert {h.id for h in hits} == {1, 3, 5}
    rows = collection.query(expr="id in [1, 2, 3]", output_fields=["text", "category"])
    assert sorted(r["id"] for r in rows) == [1, 2, 3]
    collection.delete(expr="id in [1, 2]")
    assert sorted(r["id"] for r in collection.query(expr="id > 0", output_fields=["id"])) == [3, 4, 5]
    assert name in utility.list_collections(using=orm)
    collection.release()
    collection.drop()
    assert not utility.has_collection(name, using=orm)


@feature("orm.partition")
def test_orm_partitions(orm: str, name: str) -> None:
    collection = _documents(orm, name)
    collection.create_index("embedding", {"metric_type": "L2", "index_type": "FLAT", "params": {}})
    part = collection.create_partition("partition_A")
    rng = np.random.default_rng(1)
    part.insert([[10, 11], rng.random((2, 128), dtype=np.float32).tolist(), ["a", "b"], ["A", "A"]])
    assert collection.has_partition("partition_A")
    part.load()
    res = collection.search(data=[[0.5] * 128], anns_field="embedding", param={"metric_type": "L2"}, limit=5,
                            partition_names=["partition_A"])
    assert sorted(h.id for h in res[0]) == [10, 11]
    part.release()
    collection.drop_partition("partition_A")
    assert not collection.has_partition("partition_A")


@feature("orm.iterators")
def test_orm_iterators(orm: str, client: MilvusClient, name: str) -> None:
    create_products(client, name)
    collection = Collection(name, using=orm)
    it = collection.query_iterator(expr="category == 'games'", output_fields=["id"], batch_size=20)
    seen = []
    while page := it.next():
        seen.extend(r["id"] for r in page)
    it.close()
    assert sorted(seen) == list(range(1, 200, 4))
    sit = collection.search_iterator(data=[[0.5] * 16], anns_field="embedding", param={"metric_type": "L2"},
                                     batch_size=25, limit=60)
    got = []
    while page := sit.next():
        got.extend(h.id for h in page)
    sit.close()
    assert len(got) == 60 and len(set(got)) == 60


@feature("compaction")
def test_compaction_keeps_live_rows(client: MilvusClient, name: str) -> None:
    create_products(client, name, rows=[])
    for start in range(0, 200, 50):
        client.insert(name, product_rows(50, start=start))
        client.flush(name)
    client.delete(name, filter="id < 100")
    client.flush(name)
    job = client.compact(name)
    deadline = time.monotonic() + 60
    while client.get_compaction_state(job) != "Completed" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert client.get_compaction_state(job) == "Completed"
    assert client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"] == 100
    assert client.get(name, ids=[150])[0]["id"] == 150


@feature("users_roles")
def test_users_and_roles(client: MilvusClient) -> None:
    user, role = "compat_user", "compat_role"
    if user in client.list_users():
        client.drop_user(user)
    client.create_user(user, "P@ssw0rd!x")
    try:
        assert user in client.list_users()
        client.update_password(user, "P@ssw0rd!x", "N3w_p@ssword")
        client.create_role(role)
        assert role in client.list_roles()
        client.grant_role(user, role)
        assert role in client.describe_user(user)["roles"]
        client.revoke_role(user, role)
        client.drop_role(role)
    finally:
        client.drop_user(user)
    assert user not in client.list_users()


@feature("errors")
def test_collection_not_loaded_error_code(client: MilvusClient, name: str) -> None:
    client.create_collection(name, dimension=4, consistency_level="Strong")
    client.release_collection(name)
    with pytest.raises(MilvusException) as err:
        client.query(name, filter="id > 0", limit=1)
    assert err.value.code == 101
