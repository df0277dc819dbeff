"""Bad requests get Milvus's error codes, and the server keeps serving afterwards."""

from __future__ import annotations

import numpy as np
import pytest
from pymilvus import DataType, MilvusClient, MilvusException


@pytest.fixture()
def coll(client: MilvusClient, name: str) -> str:
    schema = client.create_schema(enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("title", DataType.VARCHAR, max_length=5)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    index = client.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
    client.insert(name, [{"id": 1, "title": "ok", "v": [0.0, 0.0, 0.0, 1.0]}])
    return name


def code_of(fn, *args, **kwargs) -> int:  # noqa: ANN001
    with pytest.raises(MilvusException) as e:
        fn(*args, **kwargs)
    return e.value.code


def still_serving(client: MilvusClient, coll: str) -> None:
    assert client.query(coll, filter="id == 1", output_fields=["title"])[0]["title"] == "ok"


def test_wrong_dim_unknown_field_and_too_long_varchar(client: MilvusClient, coll: str) -> None:
    assert code_of(client.insert, coll, [{"id": 2, "title": "a", "v": [0.0, 1.0]}]) in (1100, 1)
    assert code_of(client.insert, coll, [{"id": 2, "title": "a", "v": [0.0] * 4, "nope": 1}]) in (1100, 1)
    with pytest.raises(MilvusException) as e:
        client.insert(coll, [{"id": 2, "title": "far too long", "v": [0.0] * 4}])
    assert e.value.code == 1100 and "title" in e.value.message
    assert code_of(client.search, coll, data=[[0.0, 1.0]], limit=1) == 1100
    still_serving(client, coll)


def test_nothing_of_a_rejected_batch_is_written(client: MilvusClient, coll: str) -> None:
    with pytest.raises(MilvusException):
        client.insert(coll, [{"id": 10, "title": "fine", "v": [0.0] * 4}, {"id": 11, "title": "toolong", "v": [0.0] * 4}])
    assert client.query(coll, filter="id in [10, 11]") == []


def test_malformed_filter_is_1100(client: MilvusClient, coll: str) -> None:
    assert code_of(client.query, coll, filter="id >>> == 3") == 1100
    assert code_of(client.search, coll, data=[[0.0] * 4], limit=1, filter="title ==") == 1100
    assert code_of(client.delete, coll, filter="(((") == 1100
    still_serving(client, coll)


def test_topk_and_nq_limits(client: MilvusClient, coll: str) -> None:
    with pytest.raises(MilvusException) as e:
        client.search(coll, data=[[0.0] * 4], limit=20000)
    assert e.value.code == 1100 and "topk [20000] is invalid, it should be in range [1, 16384]" in e.value.message
    assert code_of(client.search, coll, data=[[0.0] * 4], limit=16000, offset=1000) == 1100
    assert code_of(client.search, coll, data=np.zeros((16385, 4), np.float32).tolist(), limit=1) == 1100
    still_serving(client, coll)


def test_unknown_collection_is_100(client: MilvusClient, name: str) -> None:
    assert code_of(client.describe_collection, "missing_" + name) == 100
    assert code_of(client.query, "missing_" + name, filter="id > 0") == 100
    assert code_of(client.insert, "missing_" + name, [{"id": 1}]) == 100
    assert not client.has_collection("missing_" + name)


def test_bad_names_dims_and_field_counts(client: MilvusClient, name: str) -> None:
    assert code_of(client.create_collection, "1starts_with_digit", dimension=4) == 1100
    assert code_of(client.create_collection, "has-dash", dimension=4) == 1100
    assert code_of(client.create_collection, "x" * 256, dimension=4) == 1100
    assert code_of(client.create_collection, name, dimension=40000) == 1100
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    for i in range(63):
        schema.add_field(f"f{i}", DataType.INT32)
    assert code_of(client.create_collection, name, schema=schema) == 1100
    assert not client.has_collection(name)


def test_duplicate_create_and_drop_missing(client: MilvusClient, coll: str) -> None:
    with pytest.raises(MilvusException):
        client.create_collection(coll, dimension=8)  # same name, different schema
    client.drop_collection("never_" + coll)  # Milvus treats dropping a missing collection as done
    still_serving(client, coll)


def test_large_request_is_accepted(client: MilvusClient, name: str) -> None:
    client.create_collection(name, dimension=1024, consistency_level="Strong")
    rows = np.random.default_rng(0).random((6000, 1024), dtype=np.float32)  # ~24 MB on the wire
    res = client.insert(name, [{"id": i, "vector": rows[i]} for i in range(6000)])
    assert res["insert_count"] == 6000
