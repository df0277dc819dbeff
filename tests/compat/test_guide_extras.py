"""More of the guide as users write it: ORM index rebuild and compaction, host/port connect,
output fields, limits and validation errors, collection properties, session reads."""

from __future__ import annotations

import time
from urllib.parse import urlparse

import pytest
from pymilvus import Collection, MilvusClient, MilvusException, connections, db

from tests.compat.helpers import DIM, create_products, product_rows, vectors

feature = pytest.mark.feature


@feature("connect")
def test_connect_with_host_and_port(uri: str) -> None:
    parsed = urlparse(uri)
    connections.connect(alias="compat_hostport", host=parsed.hostname, port=str(parsed.port))
    try:
        assert connections.has_connection("compat_hostport")
    finally:
        connections.disconnect("compat_hostport")


@feature("database")
def test_orm_database_api(orm: str) -> None:
    name = "compat_orm_db"
    if name in db.list_database(using=orm):
        db.drop_database(name, using=orm)
    db.create_database(name, using=orm)
    try:
        assert name in db.list_database(using=orm)
    finally:
        db.drop_database(name, using=orm)
    assert name not in db.list_database(using=orm)


@feature("orm.index_rebuild")
def test_orm_drop_and_rebuild_index(orm: str, client: MilvusClient, name: str) -> None:
    create_products(client, name)
    collection = Collection(name, using=orm)
    collection.release()
    collection.drop_index()
    collection.create_index(field_name="embedding", index_name="embedding_index",
                            index_params={"metric_type": "L2", "index_type": "HNSW",
                                          "params": {"M": 32, "efConstruction": 200}})
    assert collection.has_index(index_name="embedding_index")
    assert collection.index(index_name="embedding_index").params["index_type"] == "HNSW"
    collection.load()
    res = collection.search(data=[vectors(1, seed=2)[0]], anns_field="embedding",
                            param={"metric_type": "L2", "params": {"ef": 100}}, limit=10)
    assert len(res[0]) == 10


@feature("compaction")
def test_orm_compaction_as_in_the_guide(orm: str, client: MilvusClient, name: str) -> None:
    create_products(client, name)
    client.flush(name)
    client.delete(name, filter="id >= 150")
    collection = Collection(name, using=orm)
    collection.compact()
    deadline = time.monotonic() + 60
    while str(collection.get_compaction_state().state) != "Completed" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert str(collection.get_compaction_state().state) == "Completed"
    assert client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"] == 150


@feature("search.output_fields")
def test_output_vector_and_star(client: MilvusClient, name: str) -> None:
    rows = create_products(client, name, product_rows(30), dynamic=True)
    res = client.search(name, data=[rows[4]["embedding"]], limit=1, output_fields=["embedding", "metadata"])
    hit = res[0][0]
    assert hit["entity"]["embedding"] == pytest.approx(rows[4]["embedding"], abs=1e-6)
    assert hit["entity"]["metadata"] == rows[4]["metadata"]
    client.insert(name, [product_rows(1, start=99)[0] | {"extra": "dyn"}])
    got = client.query(name, filter="id == 99", output_fields=["*"])
    assert got[0]["extra"] == "dyn" and got[0]["category"] == "food" and len(got[0]["embedding"]) == DIM


@feature("search.filter")
@pytest.mark.parametrize(("expr", "want"), [
    ('title like "%5"', [5, 15, 25]),
    ('title like "item 2_"', [20, 21, 22, 23, 24, 25, 26, 27, 28, 29]),
    ("metadata['stock'] in [0, 1] and price > 200", [22, 23]),
])
def test_more_filter_shapes(client: MilvusClient, name: str, expr: str, want: list[int]) -> None:
    create_products(client, name, product_rows(30))
    res = client.search(name, data=[vectors(1, seed=1)[0]], limit=30, filter=expr)
    assert sorted(h["id"] for h in res[0]) == want


@feature("errors")
def test_limits_and_validation(client: MilvusClient, name: str) -> None:
    create_products(client, name, product_rows(10))
    with pytest.raises(MilvusException):
        client.search(name, data=[[0.1] * DIM], limit=16385)  # topk <= 16384
    with pytest.raises(MilvusException):
        client.insert(name, [product_rows(1, start=50)[0] | {"title": "x" * 501}])  # max_length 500
    row = product_rows(1, start=60)[0]
    del row["price"]
    with pytest.raises(MilvusException):
        client.insert(name, [row])  # a required field is missing
    assert client.query(name, filter="id >= 50", output_fields=["count(*)"])[0]["count(*)"] == 0


@feature("collection.properties")
def test_alter_collection_properties(client: MilvusClient, name: str) -> None:
    create_products(client, name, product_rows(5))
    client.alter_collection_properties(name, properties={"collection.ttl.seconds": 3600})
    props = client.describe_collection(name).get("properties", {})
    assert str(props.get("collection.ttl.seconds")) == "3600"


@feature("consistency")
def test_session_reads_its_own_writes(client: MilvusClient, name: str) -> None:
    create_products(client, name, product_rows(20), consistency="Session")
    client.insert(name, product_rows(3, start=700, seed=5))
    got = client.query(name, filter="id >= 700", output_fields=["id"], consistency_level="Session")
    assert sorted(r["id"] for r in got) == [700, 701, 702]


@feature("load_release")
def test_load_state_and_progress(orm: str, client: MilvusClient, name: str) -> None:
    from pymilvus import utility

    create_products(client, name, product_rows(10))
    assert utility.loading_progress(name, using=orm)["loading_progress"] in ("100%", 100)
    assert str(utility.load_state(name, using=orm)).endswith("Loaded")
    client.release_collection(name)
    assert str(utility.load_state(name, using=orm)).endswith("NotLoad")


@feature("search.hybrid")
def test_hybrid_search_with_filter_and_output(client: MilvusClient, name: str) -> None:
    from pymilvus import AnnSearchRequest, RRFRanker

    rows = create_products(client, name, product_rows(40))
    reqs = [AnnSearchRequest(data=[rows[2]["embedding"]], anns_field="embedding", param={"metric_type": "L2"},
                             limit=10, expr='category == "tools"')]
    res = client.hybrid_search(name, reqs, RRFRanker(), limit=3, output_fields=["category"])
    assert res[0][0]["id"] == 2
    assert all(h["entity"]["category"] == "tools" for h in res[0])
