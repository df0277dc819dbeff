"""Query requests and results, and error statuses, as pymilvus sends and reads them."""

from __future__ import annotations

import numpy as np
import pytest
from pymilvus.client.prepare import Prepare
from pymilvus.client.utils import is_successful
from pymilvus.grpc_gen import common_pb2

from shoal.api.translate.query import query_from_proto, query_result_to_proto
from shoal.api.translate.status import from_error, unexpected
from shoal.engine.requests import QueryResult
from shoal.errors import ShoalError, collection_not_found, invalid
from shoal.schema import Column, DataType, FieldSchema


def test_query_request_parameters() -> None:
    req = Prepare.query_request("c", "n > {v}", ["n", "$meta"], ["p"], limit=5, offset=2,
                                expr_params={"v": [1, 2]}, consistency_level=3)
    out = query_from_proto(req)
    assert out.expr == "n > {v}" and out.expr_params == {"v": [1, 2]}
    assert out.output_fields == ["n", "$meta"] and out.partition_names == ["p"]
    assert out.limit == 5 and out.offset == 2 and out.consistency.level == 3


def test_count_star_and_an_iterator_page() -> None:
    out = query_from_proto(Prepare.query_request("c", "", ["COUNT(*)"], []))
    assert out.output_fields == ["count(*)"] and out.limit is None
    # every query comes back in primary-key order, an iterator's pages included (the reader's rule)
    it = query_from_proto(Prepare.query_request("c", "id > 0", [], [], limit=1, iterator="True",
                                                reduce_stop_for_best="True"))
    assert it.limit == 1 and it.expr == "id > 0"


def test_query_window_is_16384() -> None:
    with pytest.raises(ShoalError) as e:
        query_from_proto(Prepare.query_request("c", "id > 0", [], [], limit=16000, offset=1000))
    assert e.value.code == 1100 and "(offset+limit) should be in range [1, 16384], but got 17000" in e.value.message


def test_empty_filter_needs_a_limit() -> None:
    with pytest.raises(ShoalError) as e:
        query_from_proto(Prepare.query_request("c", "", ["id"], []))
    assert e.value.code == 1100


def test_count_result_is_one_int64_field() -> None:
    res = QueryResult(fields={}, output_fields=["count(*)"], field_schemas=[], session_ts=5, count=42)
    proto = query_result_to_proto(res, ["count(*)"], "id")
    assert proto.output_fields == ["count(*)"] and proto.session_ts == 5
    assert proto.fields_data[0].type == DataType.INT64 and list(proto.fields_data[0].scalars.long_data.data) == [42]


def test_dynamic_keys_are_filtered_and_named() -> None:
    pk = FieldSchema("id", DataType.INT64, field_id=100, is_primary=True)
    meta = FieldSchema("$meta", DataType.JSON, field_id=102, is_dynamic=True)
    from shoal.schema import object_array

    res = QueryResult(
        fields={"id": Column(np.array([1, 2])), "$meta": Column(object_array([{"a": 1, "b": 2}, {"b": 3}]))},
        output_fields=["id", "a"], field_schemas=[pk, meta], session_ts=1,
    )
    proto = query_result_to_proto(res, ["a"], "id")
    assert list(proto.output_fields) == ["id", "a"]
    assert [bytes(x) for x in proto.fields_data[1].scalars.json_data.data] == [b'{"a":1}', b"{}"]
    assert proto.fields_data[1].is_dynamic


def test_status_codes() -> None:
    s = from_error(collection_not_found("x"))
    assert s.code == 100 and s.error_code == common_pb2.CollectionNotExists and "x" in s.reason
    assert not is_successful(s)
    s = from_error(invalid("bad"))
    assert (s.code, s.error_code, s.reason) == (1100, common_pb2.IllegalArgument, "bad: invalid parameter")
    s = unexpected(KeyError("k"))
    assert s.code == 65535 and s.error_code == common_pb2.UnexpectedError and "KeyError" in s.reason
    s = from_error(ShoalError(800, "database not found[database=x]"))
    assert s.code == 800 and s.error_code != 0
