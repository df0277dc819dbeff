"""Schema translation: what pymilvus sends on create comes back identical on describe."""

from __future__ import annotations

import numpy as np
import pytest
from pymilvus import CollectionSchema, DataType, FieldSchema
from pymilvus.client.abstract import CollectionSchema as DescribedSchema
from pymilvus.client.prepare import Prepare
from pymilvus.grpc_gen import milvus_pb2, schema_pb2

from shoal.api.translate.schema import field_from_proto, schema_from_proto, schema_to_proto
from shoal.errors import ShoalError
from shoal.schema import DYNAMIC_FIELD
from shoal.schema import DataType as DT


def sent(schema: CollectionSchema, name: str = "docs") -> schema_pb2.CollectionSchema:
    req = Prepare.create_collection_request(name, schema)
    out = schema_pb2.CollectionSchema()
    out.ParseFromString(req.schema)
    return out


def described(proto: schema_pb2.CollectionSchema) -> dict:
    return DescribedSchema(milvus_pb2.DescribeCollectionResponse(schema=proto)).dict()


def full_schema() -> CollectionSchema:
    return CollectionSchema(
        [
            FieldSchema("pk", DataType.VARCHAR, is_primary=True, max_length=64),
            FieldSchema("b", DataType.BOOL, nullable=True),
            FieldSchema("i8", DataType.INT8, default_value=np.int8(7)),
            FieldSchema("i16", DataType.INT16),
            FieldSchema("i32", DataType.INT32),
            FieldSchema("i64", DataType.INT64, is_partition_key=True),
            FieldSchema("f", DataType.FLOAT, default_value=1.5),
            FieldSchema("d", DataType.DOUBLE, nullable=True),
            FieldSchema("s", DataType.VARCHAR, max_length=10, default_value="hi", nullable=True),
            FieldSchema("j", DataType.JSON, nullable=True),
            FieldSchema("a", DataType.ARRAY, element_type=DataType.INT32, max_capacity=5),
            FieldSchema("fv", DataType.FLOAT_VECTOR, dim=4),
            FieldSchema("bv", DataType.BINARY_VECTOR, dim=16),
            FieldSchema("f16", DataType.FLOAT16_VECTOR, dim=4),
            FieldSchema("bf16", DataType.BFLOAT16_VECTOR, dim=4),
            FieldSchema("i8v", DataType.INT8_VECTOR, dim=4),
            FieldSchema("sv", DataType.SPARSE_FLOAT_VECTOR),
        ],
        enable_dynamic_field=True,
        description="every type",
    )


def test_every_field_type_round_trips_through_describe() -> None:
    schema = schema_from_proto(sent(full_schema()))
    assert [f.field_id for f in schema.fields] == list(range(100, 117))
    assert schema.enable_dynamic_field and schema.description == "every type"
    assert schema.field("fv").dim == 4 and schema.field("bv").dim == 16
    assert schema.field("s").max_length == 10 and schema.field("s").default_value == "hi"
    assert schema.field("a").element_type is DT.INT32 and schema.field("a").max_capacity == 5
    assert schema.field("i8").default_value == 7 and schema.field("f").default_value == 1.5
    assert schema.field("b").nullable and schema.field("i64").is_partition_key

    back = described(schema_to_proto(schema, "docs", "default"))
    by_name = {f["name"]: f for f in back["fields"]}
    assert DYNAMIC_FIELD not in by_name  # Milvus hides it; pymilvus would treat it as input
    assert by_name["pk"]["is_primary"] and by_name["pk"]["params"]["max_length"] == 64
    assert by_name["fv"]["params"]["dim"] == 4
    assert by_name["s"]["default_value"].string_data == "hi"
    assert by_name["i8"]["default_value"].int_data == 7
    assert by_name["b"]["nullable"] is True
    assert by_name["a"]["element_type"] == DataType.INT32 and by_name["a"]["params"]["max_capacity"] == 5
    assert back["enable_dynamic_field"] is True


def test_auto_id_is_kept() -> None:
    s = CollectionSchema(
        [FieldSchema("id", DataType.INT64, is_primary=True, auto_id=True), FieldSchema("v", DataType.FLOAT_VECTOR, dim=2)]
    )
    schema = schema_from_proto(sent(s))
    assert schema.auto_id and schema.primary_field.auto_id


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ([FieldSchema("v", DataType.FLOAT_VECTOR, dim=2)], "primary key is not specified"),
        ([FieldSchema("id", DataType.INT64, is_primary=True)], "does not contain vector field"),
        ([FieldSchema("id", DataType.INT64, is_primary=True), FieldSchema("v", DataType.FLOAT_VECTOR, dim=40000)],
         "invalid dimension: 40000"),
        ([FieldSchema("id", DataType.INT64, is_primary=True), FieldSchema("v", DataType.BINARY_VECTOR, dim=12)],
         "multiple of 8"),
        ([FieldSchema("id", DataType.INT64, is_primary=True), FieldSchema("1bad", DataType.FLOAT_VECTOR, dim=2)],
         "first character"),
        ([FieldSchema("id", DataType.INT64, is_primary=True), FieldSchema("s", DataType.VARCHAR, max_length=70000),
          FieldSchema("v", DataType.FLOAT_VECTOR, dim=2)], "65535"),
    ],
)
def test_bad_schemas_are_rejected_with_1100(fields: list[FieldSchema], message: str) -> None:
    proto = schema_pb2.CollectionSchema(name="c")
    for f in fields:
        proto.fields.append(schema_pb2.FieldSchema(**_raw_field(f)))
    with pytest.raises(ShoalError) as e:
        schema_from_proto(proto)
    # a bad field name is Milvus's code 1701 (field name invalid); the rest are 1100
    assert e.value.code == (1701 if message == "first character" else 1100) and message in e.value.message


def _raw_field(f: FieldSchema) -> dict:
    from pymilvus.grpc_gen import common_pb2

    return {
        "name": f.name,
        "data_type": int(f.dtype),
        "is_primary_key": f.is_primary,
        "type_params": [common_pb2.KeyValuePair(key=k, value=str(v)) for k, v in f.params.items()],
    }


def test_more_than_64_fields_is_rejected() -> None:
    fields = [FieldSchema("id", DataType.INT64, is_primary=True), FieldSchema("v", DataType.FLOAT_VECTOR, dim=2)]
    fields += [FieldSchema(f"x{i}", DataType.INT32) for i in range(63)]
    with pytest.raises(ShoalError, match="64"):
        schema_from_proto(sent(CollectionSchema(fields)))


def test_added_field_keeps_nullable_and_default() -> None:
    f = FieldSchema("extra", DataType.VARCHAR, max_length=8, nullable=True, default_value="x")
    req = Prepare.add_collection_field_request("docs", f)
    proto = schema_pb2.FieldSchema()
    proto.ParseFromString(req.schema)
    out = field_from_proto(proto)
    assert out.nullable and out.default_value == "x" and out.max_length == 8


def test_default_value_of_wrong_type_is_rejected() -> None:
    proto = schema_pb2.FieldSchema(name="n", data_type=int(DT.INT32))
    proto.default_value.string_data = "seven"
    with pytest.raises(ShoalError, match="of default_value"):
        field_from_proto(proto)


def test_function_outputs_are_marked_so_clients_skip_them() -> None:
    from pymilvus import Function, FunctionType

    s = CollectionSchema([
        FieldSchema("id", DataType.INT64, is_primary=True),
        FieldSchema("text", DataType.VARCHAR, max_length=100, enable_analyzer=True),
        FieldSchema("sparse", DataType.SPARSE_FLOAT_VECTOR),
    ])
    s.add_function(Function("bm25", FunctionType.BM25, input_field_names=["text"], output_field_names=["sparse"]))
    schema = schema_from_proto(sent(s))
    assert schema.functions[0]["output_field_names"] == ["sparse"]
    back = described(schema_to_proto(schema, "docs"))
    by_name = {f["name"]: f for f in back["fields"]}
    assert by_name["sparse"].get("is_function_output") is True and not by_name["text"].get("is_function_output")
    assert back["functions"][0]["name"] == "bm25"
    req = Prepare.row_insert_param("docs", [{"id": 1, "text": "hello"}], "", back["fields"])
    assert [fd.field_name for fd in req.fields_data] == ["id", "text"]
