"""Insert/result columns: what pymilvus packs is decoded exactly, and what Shoal returns
is read back by pymilvus's own result parsing to the same values, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymilvus import CollectionSchema, DataType, FieldSchema
from pymilvus.client.abstract import CollectionSchema as DescribedSchema
from pymilvus.client.prepare import Prepare
from pymilvus.client.search_result import SearchResult as ClientSearchResult
from pymilvus.grpc_gen import milvus_pb2, schema_pb2

from shoal.api.translate.field_data import batch_to_fields_data, fields_data_to_batch
from shoal.api.translate.schema import schema_from_proto, schema_to_proto
from shoal.api.translate.search import search_result_to_proto
from shoal.engine.requests import SearchResult
from shoal.engine.validation import normalize_insert
from shoal.errors import ShoalError
from shoal.schema import DYNAMIC_FIELD, Column, object_array
from shoal.schema import CollectionSchema as Schema


def make_schema() -> tuple[Schema, list[dict]]:
    schema, info = make_schema_info()
    return schema, info["fields"]


def make_schema_info() -> tuple[Schema, dict]:
    s = CollectionSchema(
        [
            FieldSchema("id", DataType.INT64, is_primary=True),
            FieldSchema("b", DataType.BOOL, nullable=True),
            FieldSchema("i8", DataType.INT8, default_value=np.int8(7)),
            FieldSchema("f", DataType.FLOAT),
            FieldSchema("s", DataType.VARCHAR, max_length=16, nullable=True),
            FieldSchema("j", DataType.JSON, nullable=True),
            FieldSchema("a", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=3, max_length=8),
            FieldSchema("fv", DataType.FLOAT_VECTOR, dim=3),
            FieldSchema("bv", DataType.BINARY_VECTOR, dim=16),
            FieldSchema("f16", DataType.FLOAT16_VECTOR, dim=2),
            FieldSchema("bf16", DataType.BFLOAT16_VECTOR, dim=2),
            FieldSchema("i8v", DataType.INT8_VECTOR, dim=2),
            FieldSchema("sv", DataType.SPARSE_FLOAT_VECTOR),
        ],
        enable_dynamic_field=True,
    )
    req = Prepare.create_collection_request("c", s)
    proto = schema_pb2.CollectionSchema()
    proto.ParseFromString(req.schema)
    schema = schema_from_proto(proto)
    info = DescribedSchema(milvus_pb2.DescribeCollectionResponse(schema=schema_to_proto(schema, "c"))).dict()
    return schema, info


def rows() -> list[dict]:
    return [
        {
            "id": 1, "b": True, "i8": 3, "f": 0.5, "s": "one", "j": {"k": [1, 2]}, "a": ["x", "y"],
            "fv": [0.1, 0.2, 0.3], "bv": b"\x01\x02", "f16": np.array([1.5, -2], dtype=np.float16),
            "bf16": b"\x80\x3f\x00\x40", "i8v": np.array([-3, 4], dtype=np.int8), "sv": {3: 0.5, 1: 1.25},
            "color": "red",
        },
        {
            "id": 2, "b": None, "f": 1.0, "s": None, "j": None, "a": [],
            "fv": [1.0, 2.0, 3.0], "bv": b"\xff\x00", "f16": np.array([0, 1], dtype=np.float16),
            "bf16": b"\x00\x00\x80\xbf", "i8v": np.array([127, -128], dtype=np.int8), "sv": {0: 2.0},
            "size": 10,
        },
    ]


def decoded() -> tuple[Schema, dict]:
    schema, fields_info = make_schema()
    req = Prepare.row_insert_param("c", rows(), "", fields_info, enable_dynamic=True)
    batch = fields_data_to_batch(req.fields_data, req.num_rows)
    return schema, normalize_insert(schema, batch, req.num_rows)


def test_row_insert_from_pymilvus_is_decoded_exactly() -> None:
    _, batch = decoded()
    assert batch["id"].values.tolist() == [1, 2]
    assert batch["b"].valid.tolist() == [True, False] and batch["b"].values[0]
    assert batch["i8"].values.dtype == np.int8 and batch["i8"].values.tolist() == [3, 7]  # default filled
    assert batch["s"].values[0] == "one" and batch["s"].valid.tolist() == [True, False]
    assert batch["j"].values[0] == {"k": [1, 2]} and batch["j"].valid.tolist() == [True, False]
    assert batch["a"].values.tolist() == [["x", "y"], []]
    assert np.allclose(batch["fv"].values, [[0.1, 0.2, 0.3], [1, 2, 3]])
    assert batch["bv"].values.tolist() == [[1, 2], [255, 0]]
    assert batch["f16"].values.dtype == np.float16 and batch["f16"].values.tolist() == [[1.5, -2.0], [0, 1]]
    assert batch["bf16"].values.tolist() == [[0x3F80, 0x4000], [0, 0xBF80]]
    assert batch["i8v"].values.tolist() == [[-3, 4], [127, -128]]
    assert batch["sv"].values.tolist() == [{1: 1.25, 3: 0.5}, {0: 2.0}]
    assert batch[DYNAMIC_FIELD].values.tolist() == [{"color": "red"}, {"size": 10}]


def test_column_insert_is_decoded_with_nulls_and_defaults() -> None:
    schema, info = make_schema_info()
    cols = {
        "id": [5, 6], "b": [], "i8": [None, 5], "f": [1.0, 2.0], "s": [None, "x"], "j": [{"a": 1}, None],
        "a": [["p"], ["q", "r"]], "fv": [[0, 0, 1], [1, 0, 0]], "bv": [b"\x00\x01", b"\x02\x03"],
        "f16": [b"\x00\x00\x00\x3c"] * 2, "bf16": [b"\x00\x00\x00\x00"] * 2, "i8v": [b"\x01\x02"] * 2,
        "sv": [{1: 1.0}, {2: 2.0}],
    }
    types = {f["name"]: f["type"] for f in info["fields"]}
    entities = [{"name": n, "type": types[n], "values": v} for n, v in cols.items()]
    req = Prepare.batch_insert_param("c", entities, "", info["fields"])
    batch = normalize_insert(schema, fields_data_to_batch(req.fields_data, req.num_rows), req.num_rows)
    assert batch["id"].values.tolist() == [5, 6]
    assert batch["b"].valid.tolist() == [False, False]  # nullable column sent empty: all null
    assert batch["i8"].values.tolist() == [7, 5] and batch["i8"].valid is None  # default filled
    assert batch["s"].valid.tolist() == [False, True] and batch["s"].values[1] == "x"
    assert batch["j"].values[0] == {"a": 1} and batch["j"].valid.tolist() == [True, False]
    assert batch["f16"].values.tolist() == [[0.0, 1.0], [0.0, 1.0]]
    assert batch[DYNAMIC_FIELD].values.tolist() == [{}, {}]


def result_columns() -> tuple[Schema, dict]:
    schema, batch = decoded()
    return schema, batch


def test_search_results_are_read_back_by_pymilvus() -> None:
    schema, batch = result_columns()
    out_fields = [f for f in schema.fields if f.name != "id"]
    from shoal.api.translate.schema import dynamic_field_schema

    meta = dynamic_field_schema(113)
    res = SearchResult(
        num_queries=1, top_k=2, topks=[2], ids=np.array([2, 1]), scores=np.array([0.25, 0.5], np.float32),
        fields={**{f.name: batch[f.name].take(np.array([1, 0])) for f in out_fields},
                DYNAMIC_FIELD: batch[DYNAMIC_FIELD].take(np.array([1, 0]))},
        field_schemas=[*out_fields, meta], output_fields=[f.name for f in out_fields] + ["size"],
        primary_field_name="id", session_ts=99,
    )
    requested = [f.name for f in out_fields] + ["size"]
    proto = search_result_to_proto(res, requested, "c")
    assert proto.session_ts == 99
    hits = ClientSearchResult(proto.results)[0]
    first, second = hits[0], hits[1]
    assert first["id"] == 2 and second["id"] == 1
    assert first["distance"] == pytest.approx(0.25)
    e1, e2 = first["entity"], second["entity"]
    assert e1["b"] is None and e2["b"] is True
    assert e1["s"] is None and e2["s"] == "one"
    assert e1["j"] is None and e2["j"] == {"k": [1, 2]}
    assert e1["i8"] == 7 and e2["a"] == ["x", "y"]
    assert e1["size"] == 10 and "color" not in e2  # only the requested dynamic key
    assert np.float32(e2["fv"][0]) == np.float32(0.1)
    assert e2["bv"] == b"\x01\x02"
    assert np.frombuffer(e2["f16"], np.float16).tolist() == [1.5, -2.0]
    assert e2["bf16"] == b"\x80\x3f\x00\x40"
    assert np.frombuffer(e2["i8v"], np.int8).tolist() == [-3, 4]
    assert dict(e2["sv"]) == {1: 1.25, 3: 0.5}


def test_nullable_columns_go_back_full_length_with_valid_data() -> None:
    schema, batch = decoded()
    fd = batch_to_fields_data({"s": batch["s"]}, [schema.field("s")])[0]
    assert list(fd.scalars.string_data.data) == ["one", ""]
    assert list(fd.valid_data) == [True, False]


def test_all_dynamic_keys_come_back_for_star() -> None:
    schema, batch = decoded()
    from shoal.api.translate.schema import dynamic_field_schema

    fds = batch_to_fields_data({DYNAMIC_FIELD: batch[DYNAMIC_FIELD]}, [dynamic_field_schema(113)], None)
    assert fds[0].is_dynamic and list(fds[0].scalars.json_data.data) == [b'{"color":"red"}', b'{"size":10}']


def test_empty_result_columns_have_a_type() -> None:
    schema, _ = decoded()
    empty = {
        "id": Column(np.empty(0, np.int64)),
        "fv": Column(np.empty((0, 3), np.float32)),
        "sv": Column(object_array([])),
    }
    fds = batch_to_fields_data(empty, [schema.field("id"), schema.field("fv"), schema.field("sv")])
    assert [fd.WhichOneof("field") for fd in fds] == ["scalars", "vectors", "vectors"]
    assert fds[0].scalars.WhichOneof("data") == "long_data"


def test_value_count_mismatch_is_rejected() -> None:
    fd = schema_pb2.FieldData(type=int(DataType.INT64), field_name="id")
    fd.scalars.long_data.data.extend([1, 2, 3])
    with pytest.raises(ShoalError) as e:
        fields_data_to_batch([fd], 2)
    assert e.value.code == 1100 and "id" in e.value.message


_SCALARS = {
    DataType.BOOL: st.booleans(),
    DataType.INT8: st.integers(-128, 127),
    DataType.INT32: st.integers(-(2**31), 2**31 - 1),
    DataType.INT64: st.integers(-(2**63), 2**63 - 1),
    DataType.DOUBLE: st.floats(allow_nan=False),
    DataType.VARCHAR: st.text(max_size=20),
}


@settings(max_examples=60, deadline=None)
@given(data=st.data(), dtype=st.sampled_from(sorted(_SCALARS)))
def test_nullable_scalars_read_back_by_pymilvus(data: st.DataObject, dtype: DataType) -> None:
    from pymilvus.client.entity_helper import extract_row_data_from_fields_data_v2

    from shoal.schema import SCALAR_DTYPES
    from shoal.schema import DataType as DT
    from shoal.schema import FieldSchema as Field

    values = data.draw(st.lists(st.one_of(st.none(), _SCALARS[dtype]), min_size=1, max_size=30))
    valid = np.array([v is not None for v in values])
    dt = DT(int(dtype))
    fill = [v if v is not None else ("" if dt.is_string else 0) for v in values]
    arr = np.array(fill, dtype=SCALAR_DTYPES[dt]) if dt in SCALAR_DTYPES else object_array(fill)
    field = Field("x", dt, field_id=101, nullable=True, max_length=100)
    fd = batch_to_fields_data({"x": Column(arr, valid)}, [field])[0]
    rows: list[dict] = [{} for _ in values]
    extract_row_data_from_fields_data_v2(fd, rows)
    assert [r["x"] for r in rows] == values
