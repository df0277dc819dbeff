"""Search requests as pymilvus builds them, decoded into engine requests."""

from __future__ import annotations

import numpy as np
import pytest
from pymilvus import AnnSearchRequest, RRFRanker, WeightedRanker
from pymilvus.client.prepare import Prepare

from shoal.api.translate.search import decode_placeholders, hybrid_from_proto, search_from_proto
from shoal.engine.requests import ConsistencyLevel
from shoal.errors import ShoalError
from shoal.schema import CollectionSchema, DataType, FieldSchema


def schema() -> CollectionSchema:
    return CollectionSchema([
        FieldSchema("id", DataType.INT64, is_primary=True),
        FieldSchema("fv", DataType.FLOAT_VECTOR, dim=3),
        FieldSchema("hv", DataType.FLOAT16_VECTOR, dim=2),
        FieldSchema("bfv", DataType.BFLOAT16_VECTOR, dim=2),
        FieldSchema("bv", DataType.BINARY_VECTOR, dim=16),
        FieldSchema("iv", DataType.INT8_VECTOR, dim=2),
        FieldSchema("sv", DataType.SPARSE_FLOAT_VECTOR),
    ])


def request(field: str, data, limit: int = 5, param: dict | None = None, **kw):  # noqa: ANN001, ANN201
    return Prepare.search_requests_with_expr("c", field, param or {"metric_type": "L2"}, limit, data=data, **kw)


def test_float_vectors_and_parameters() -> None:
    req = request(
        "fv", [[1.0, 2.0, 3.0], [4.0, 5.0, 6.5]], limit=7,
        param={"metric_type": "ip", "params": {"nprobe": 16, "radius": 0.5, "range_filter": 0.9}},
        expr="id > {x}", expr_params={"x": 3}, output_fields=["id"], partition_names=["p"], round_decimal=3,
        offset=2, consistency_level=0, group_by_field="id", group_size=2, strict_group_size=True,
        ignore_growing=True,
    )
    out = search_from_proto(req, schema())
    assert out.anns_field == "fv" and out.topk == 7 and out.offset == 2
    assert out.queries.dtype == np.float32 and out.queries.tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.5]]
    assert out.metric_type == "IP"
    assert out.params["nprobe"] == 16 and out.params["radius"] == 0.5 and out.params["range_filter"] == 0.9
    assert out.expr == "id > {x}" and out.expr_params == {"x": 3}
    assert out.output_fields == ["id"] and out.partition_names == ["p"] and out.round_decimal == 3
    assert out.group_by_field == "id" and out.group_size == 2 and out.strict_group_size
    assert out.ignore_growing and out.consistency.level is ConsistencyLevel.STRONG


def test_every_vector_type_decodes_to_the_field_layout() -> None:
    s = schema()
    hv = search_from_proto(request("hv", [np.array([1.5, -2], np.float16)]), s).queries
    assert hv.dtype == np.float16 and hv.tolist() == [[1.5, -2.0]]
    bfv = search_from_proto(request("bfv", [b"\x80\x3f\x00\x40"]), s).queries
    assert bfv.dtype == np.uint16 and bfv.tolist() == [[0x3F80, 0x4000]]
    bv = search_from_proto(request("bv", [b"\x01\xff"], param={"metric_type": "HAMMING"}), s).queries
    assert bv.dtype == np.uint8 and bv.tolist() == [[1, 255]]
    iv = search_from_proto(request("iv", [np.array([-1, 7], np.int8)]), s).queries
    assert iv.dtype == np.int8 and iv.tolist() == [[-1, 7]]
    sv = search_from_proto(request("sv", [{5: 0.5, 2: 1.0}], param={"metric_type": "IP"}), s).queries
    assert sv == [{2: 1.0, 5: 0.5}]


def test_float_lists_are_converted_for_half_precision_fields() -> None:
    hv = search_from_proto(request("hv", [[1.5, -2.0]]), schema()).queries
    assert hv.dtype == np.float16 and hv.tolist() == [[1.5, -2.0]]
    bfv = search_from_proto(request("bfv", [[1.0, 2.0]]), schema()).queries
    assert bfv.dtype == np.uint16 and bfv.tolist() == [[0x3F80, 0x4000]]


def test_anns_field_is_inferred_only_when_unambiguous() -> None:
    one = CollectionSchema([FieldSchema("id", DataType.INT64, is_primary=True), FieldSchema("v", DataType.FLOAT_VECTOR, dim=2)])
    assert search_from_proto(request("", [[0.0, 1.0]]), one).anns_field == "v"
    with pytest.raises(ShoalError, match="anns_field"):
        search_from_proto(request("", [[0.0, 1.0, 2.0]]), schema())


@pytest.mark.parametrize("limit", [0, 16385, 20000])
def test_topk_out_of_range(limit: int) -> None:
    req = request("fv", [[1.0, 2.0, 3.0]], limit=1)
    for kv in req.search_params:
        if kv.key == "topk":
            kv.value = str(limit)
    with pytest.raises(ShoalError) as e:
        search_from_proto(req, schema())
    assert e.value.code == 1100
    assert e.value.message == f"topk [{limit}] is invalid, it should be in range [1, 16384], but got {limit}"


def test_nq_limit_and_garbage_placeholder() -> None:
    req = request("fv", np.zeros((16385, 3), np.float32).tolist(), limit=1)
    with pytest.raises(ShoalError, match=r"nq \[16385\]"):
        search_from_proto(req, schema())
    with pytest.raises(ShoalError) as e:
        decode_placeholders(b"\xff\xff\xff")
    assert e.value.code == 1100


def test_iterator_keys() -> None:
    req = request("fv", [[1.0, 2.0, 3.0]], limit=1, iterator=True, search_iter_v2=True, search_iter_batch_size=50,
                  search_iter_id="tok", search_iter_last_bound=0.25)
    out = search_from_proto(req, schema())
    assert out.iterator and out.iterator_v2 and out.iterator_batch_size == 50
    assert out.iterator_token == "tok" and out.iterator_last_bound == 0.25


def test_hybrid_search_request() -> None:
    reqs = [
        AnnSearchRequest([[1.0, 2.0, 3.0]], "fv", {"metric_type": "L2"}, limit=10),
        AnnSearchRequest([{1: 0.5}], "sv", {"metric_type": "IP"}, limit=20, expr="id > 1"),
    ]
    sub = [
        Prepare.search_requests_with_expr("c", r.anns_field, r.param, r.limit, data=r.data, expr=r.expr)
        for r in reqs
    ]
    proto = Prepare.hybrid_search_request_with_ranker("c", sub, RRFRanker(30), limit=4, output_fields=["id"], offset=1)
    out = hybrid_from_proto(proto, schema())
    assert out.rerank.strategy == "rrf" and out.rerank.params == {"k": 30}
    assert out.limit == 4 and out.offset == 1 and out.output_fields == ["id"]
    assert [r.anns_field for r in out.requests] == ["fv", "sv"] and out.requests[1].expr == "id > 1"
    weighted = Prepare.hybrid_search_request_with_ranker("c", sub, WeightedRanker(0.2, 0.8), limit=3)
    w = hybrid_from_proto(weighted, schema())
    assert w.rerank.strategy == "weighted" and w.rerank.params["weights"] == [0.2, 0.8]
