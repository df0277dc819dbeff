"""Cases from the collection file of Milvus's MilvusClient suite that Shoal answered differently.

Each test pins the code and the wording Milvus's code gives (its suite checks the message as a
substring). Schemas that fail are refused before anything is created, so no clean-up is needed.
"""

from __future__ import annotations

import numpy as np
import pytest
from milvus_errors import fails
from pymilvus import DataType, MilvusClient


def _schema(*extra: tuple[str, DataType, dict]) -> object:
    schema = MilvusClient.create_schema(enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=4)
    for field, dtype, kwargs in extra:
        schema.add_field(field, dtype, **kwargs)
    return schema


def test_schema_checks_use_milvus_wording(client: MilvusClient, name: str) -> None:
    def refused(schema: object, text: str, code: int = 1100) -> None:
        fails(lambda: client.create_collection(name, schema=schema), code, text)

    low = MilvusClient.create_schema(enable_dynamic_field=False)
    low.add_field("id", DataType.INT64, is_primary=True)
    low.add_field("vector", DataType.FLOAT_VECTOR, dim=1)
    refused(low, "invalid dimension: 1. should be in range 2 ~ 32768")
    refused(_schema(("a", DataType.ARRAY, {"element_type": DataType.JSON, "max_capacity": 4})),
            "element type JSON is not supported")
    refused(_schema(("a", DataType.ARRAY, {"element_type": DataType.FLOAT_VECTOR, "max_capacity": 4})),
            "element type FloatVector is not supported")
    refused(_schema(("a", DataType.ARRAY, {"element_type": DataType.INT64, "max_capacity": "a"})),
            "the value for max_capacity of field a must be an integer")
    # a VARCHAR element's max_length is checked before the capacity, with VARCHAR's range
    refused(_schema(("a", DataType.ARRAY, {"element_type": DataType.VARCHAR})),
            "type param(max_length) should be specified for the field(a)")
    refused(_schema(("a", DataType.ARRAY, {"element_type": DataType.VARCHAR, "max_length": 65536})),
            "the maximum length specified for the field(a) should be in (0, 65535], but got 65536 instead")
    text_pk = MilvusClient.create_schema(enable_dynamic_field=False)
    text_pk.add_field("id", DataType.VARCHAR, is_primary=True, auto_id=True)
    text_pk.add_field("vector", DataType.FLOAT_VECTOR, dim=4)
    refused(text_pk, f"type param(max_length) should be specified for the field(id) of collection {name}")
    many = _schema(*[(f"v{i}", DataType.FLOAT_VECTOR, {"dim": 4}) for i in range(10)])
    refused(many, "maximum vector field's number should be limited to 10")
    refused(_schema(("p", DataType.INT64, {"is_partition_key": True, "nullable": True})),
            "partition key field not support nullable")
    refused(_schema(("j", DataType.JSON, {"nullable": True, "default_value": "x"})),
            "type not support default_value, type:JSON, name:j")
    refused(_schema(("i", DataType.INT8, {"default_value": "abc"})),
            "type (Int8) of field (i) is not equal to the type(DataType_VarChar) of default_value")
    refused(_schema(("f", DataType.FLOAT, {"default_value": False})),
            "type (Float) of field (f) is not equal to the type(DataType_Bool) of default_value")
    refused(_schema(("s", DataType.VARCHAR, {"max_length": 2, "default_value": "abc"})),
            "the length (3) of string exceeds max length (2): invalid parameter[expected=valid length string]")
    refused(_schema(("中文", DataType.INT64, {})),
            "The first character of a field name must be an underscore or letter.: field name invalid[field=中文]",
            1701)


@pytest.mark.parametrize("nullable", [True, False])
def test_primary_and_vector_fields_take_no_null_or_default(client: MilvusClient, name: str, nullable: bool) -> None:
    schema = MilvusClient.create_schema(enable_dynamic_field=False)
    if nullable:
        schema.add_field("id", DataType.INT64, is_primary=True, nullable=True)
        text = "primary field not support null"
    else:
        schema.add_field("id", DataType.INT64, is_primary=True, default_value=np.int64(5))
        text = "primary field not support default_value"
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=4)
    fails(lambda: client.create_collection(name, schema=schema), 1100, text)
    vector_default = MilvusClient.create_schema(enable_dynamic_field=False)
    vector_default.add_field("id", DataType.INT64, is_primary=True)
    vector_default.add_field("vector", DataType.FLOAT_VECTOR, dim=4, default_value=np.float32(1.0))
    fails(lambda: client.create_collection(name, schema=vector_default), 1100,
           "type not support default_value, type:FloatVector")


def test_collection_calls_use_milvus_wording(client: MilvusClient, name: str) -> None:
    fails(lambda: client.create_collection(name, dimension=4, metric_type="invalid"), 1100,
           "float vector index does not support metric type: invalid: "
           "invalid parameter[expected=valid index params][actual=invalid index params]")
    client.create_collection(name, dimension=4)
    try:
        fails(lambda: client.rename_collection(name, name), 1100,
               "collection name or database name should be different")
        fails(lambda: client.drop_collection_properties(name, property_keys=[]), 1100,
               "no properties or delete keys provided")
        for bad in ("%$#", " "):
            fails(lambda bad=bad: client.alter_collection_properties(bad, {"collection.ttl.seconds": 60}), 100,
                  f"collection not found[database=default][collection={bad}]")
        fails(lambda: client.load_partitions(name, []), 1100, "due to no partition specified")
        fails(lambda: client.search(name, [[0.1] * 4], filter="vector is null"), 1100,
              "IsNull/IsNotNull operations are not supported on vector fields")
        fails(lambda: client.add_collection_field(name, "field_new", DataType.INT64, is_primary=True,
                                                   nullable=True), 1100,
               "not support to add pk field, field name = field_new")
    finally:
        client.drop_collection(name)


def test_a_timestamptz_field_takes_an_iso_default(client: MilvusClient, name: str) -> None:
    # the suite's collection `truncate_collection_add_more_index`: pymilvus sends the default as text
    client.create_collection(name, dimension=4, consistency_level="Strong")
    client.insert(name, [{"id": 1, "vector": [0.1] * 4}])
    client.add_collection_field(name, "at", DataType.TIMESTAMPTZ, nullable=True, default_value="2026-01-01T00:00:00Z")
    client.insert(name, [{"id": 2, "vector": [0.1] * 4}, {"id": 3, "vector": [0.1] * 4, "at": "2027-01-01T09:00:00+09:00"}])
    rows = client.query(name, filter="id > 0", output_fields=["at"])
    assert sorted((r["id"], r["at"]) for r in rows) == [
        (1, "2026-01-01T00:00:00Z"), (2, "2026-01-01T00:00:00Z"), (3, "2027-01-01T00:00:00Z")]
    field = next(f for f in client.describe_collection(name)["fields"] if f["name"] == "at")
    assert field["default_value"].string_data == "2026-01-01T00:00:00Z"
    client.drop_collection(name)


def test_truncate_leaves_no_segment(client: MilvusClient, name: str) -> None:
    # the suite's collection `truncate_collection`: Milvus drops the segments
    client.create_collection(name, dimension=4, consistency_level="Strong")
    client.insert(name, [{"id": i, "vector": [0.1] * 4} for i in range(50)])
    client.flush(name)
    assert len(client.list_persistent_segments(name)) == 1
    client.truncate_collection(name)
    assert client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"] == 0
    assert client.list_persistent_segments(name) == []
    client.insert(name, [{"id": 7, "vector": [0.1] * 4}])
    assert [r["id"] for r in client.query(name, filter="id >= 0")] == [7]
    client.drop_collection(name)
