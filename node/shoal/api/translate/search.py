"""Search on the wire: `SearchRequest`/`HybridSearchRequest` → engine requests, and
`engine.requests.SearchResult` → `SearchResults`.

The query vectors arrive in a serialized `common.PlaceholderGroup`; they are decoded
here into the layouts of `shoal.schema`. Search parameters arrive as string key/values
with a nested JSON `params`; both levels are read. Neighbours: `field_data` (output
columns), `common` (consistency, templates), the servicer (caller).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from pymilvus.grpc_gen import common_pb2, milvus_pb2, schema_pb2

from shoal.api.translate.common import (
    kv_to_dict,
    parse_bool,
    parse_ignore_growing,
    parse_int,
    parse_json_params,
    read_consistency,
    template_values,
)
from shoal.api.translate.field_data import (
    append_packed,
    batch_to_fields_data,
    column_to_field_data,
    dynamic_output,
    sparse_from_bytes,
)
from shoal.api.validate import check_nq, check_offset_limit, check_result_window, check_topk
from shoal.engine.embedding_list import struct_member
from shoal.engine.requests import HybridSearchRequest, RerankSpec, SearchRequest, SearchResult
from shoal.engine.rerank import FusionRerank, parse_function_rerank
from shoal.errors import Code, ShoalError, invalid, not_supported
from shoal.schema import (
    DYNAMIC_FIELD,
    MAX_HYBRID_REQUESTS,
    VECTOR_DTYPES,
    CollectionSchema,
    DataType,
    FieldSchema,
)

_PH = common_pb2.PlaceholderType

# placeholder type → (numpy dtype of one element, data type it decodes to)
_DENSE: dict[int, tuple[np.dtype, DataType]] = {
    _PH.FloatVector: (np.dtype("<f4"), DataType.FLOAT_VECTOR),
    _PH.Float16Vector: (np.dtype("<f2"), DataType.FLOAT16_VECTOR),
    _PH.BFloat16Vector: (np.dtype("<u2"), DataType.BFLOAT16_VECTOR),
    _PH.Int8Vector: (np.dtype("i1"), DataType.INT8_VECTOR),
    _PH.BinaryVector: (np.dtype("u1"), DataType.BINARY_VECTOR),
}


_EMB_LISTS = {
    _PH.EmbListBinaryVector: "BinaryVector", _PH.EmbListFloat16Vector: "Float16Vector",
    _PH.EmbListBFloat16Vector: "BFloat16Vector", _PH.EmbListSparseFloatVector: "SparseFloatVector",
    _PH.EmbListInt8Vector: "Int8Vector",
}


def decode_placeholders(raw: bytes) -> tuple[DataType, Any]:
    """Serialized PlaceholderGroup → (vector type, (nq, width) array | sparse dicts | texts)."""
    group = common_pb2.PlaceholderGroup()
    try:
        group.ParseFromString(raw)
    except Exception:  # protobuf raises DecodeError; any failure is bad input
        raise invalid("failed to parse the placeholder group of the search request") from None
    if len(group.placeholders) != 1:
        raise invalid(f"expected one placeholder in the search request, got {len(group.placeholders)}")
    ph = group.placeholders[0]
    values = list(ph.values)
    if not values:
        raise invalid("search request carries no query vectors")
    if ph.type in _DENSE:
        dtype, kind = _DENSE[ph.type]
        widths = {len(v) for v in values}
        if len(widths) != 1 or next(iter(widths)) % dtype.itemsize:
            raise invalid("query vectors of the search request have different or odd sizes")
        width = next(iter(widths)) // dtype.itemsize
        arr = np.frombuffer(b"".join(values), dtype=dtype).reshape(len(values), width)
        return kind, arr.astype(dtype.newbyteorder("="), copy=True)
    if ph.type == _PH.EmbListFloatVector:  # one flat float32 list per query, split by the member's dim
        return DataType.STRUCT, [np.frombuffer(v, dtype="<f4").astype(np.float32) for v in values]
    if ph.type in _EMB_LISTS:
        raise not_supported(f"embedding lists of {_EMB_LISTS[ph.type]} (only FloatVector lists are searched)")
    if ph.type == _PH.SparseFloatVector:
        return DataType.SPARSE_FLOAT_VECTOR, [sparse_from_bytes(v) for v in values]
    if ph.type == _PH.VarChar:
        return DataType.VARCHAR, [v.decode("utf-8", errors="replace") for v in values]
    raise not_supported(f"placeholder type {ph.type}")


def _num(value: Any, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise invalid(f"{name} [{value}] is invalid, it should be a number") from None


_JSON_KINDS = {str: "string", list: "array", dict: "object", bool: "boolean", type(None): "null"}
SEARCH_HINTS = ("iterative_filter",)


def _range_bound(value: Any) -> float:
    """`radius` / `range_filter` from the search params JSON: a JSON number, or the error Milvus's
    query node raises reading it (its JSON library's words, code 65535)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    kind = _JSON_KINDS.get(type(value), type(value).__name__)
    raise ShoalError(Code.UNEXPECTED, f"[json.exception.type_error.302] type must be number, but is {kind}")


def _check_hints(hints: Any) -> None:
    if hints not in (None, "", *SEARCH_HINTS):
        # Milvus's query node plans the search with the hint and refuses one it does not know
        raise invalid(f"Create Plan by expr failed:  => hints: {hints} not supported")


def _as_field_layout(kind: DataType, queries: Any, field: FieldSchema | None) -> Any:
    """Bring queries into the field's layout when the client sent another vector type.

    pymilvus sends float lists as FloatVector for float16/bfloat16 fields, and raw bytes
    as BinaryVector when it did not know the field's type.
    """
    if field is None or kind is field.dtype or not field.dtype.is_dense_vector:
        return queries
    target = VECTOR_DTYPES[field.dtype]
    if kind is DataType.FLOAT_VECTOR:
        if field.dtype is DataType.FLOAT16_VECTOR:
            return queries.astype(np.float16)
        if field.dtype is DataType.BFLOAT16_VECTOR:
            return (queries.view(np.uint32) >> 16).astype(np.uint16)
    if kind is DataType.BINARY_VECTOR and field.dtype is not DataType.FLOAT_VECTOR:
        raw = np.ascontiguousarray(queries)
        if raw.shape[1] % target.itemsize == 0:
            return raw.view(target.newbyteorder("<")).astype(target)
    return queries


def member_queries(kind: DataType, queries: Any, member: FieldSchema, anns_field: str) -> Any:
    """Queries of a struct member's vector field: one (m, dim) array per query (an EmbeddingList),
    or plain float vectors as one (nq, dim) array (element-level search)."""
    dim = int(member.dim or 0)
    if kind is DataType.FLOAT_VECTOR:
        if queries.shape[1] != dim:
            raise invalid(f"the dim ({queries.shape[1]}) of the query vector does not match the dim ({dim}) of {anns_field}")
        return queries
    if kind is not DataType.STRUCT:
        raise invalid(f"{anns_field} is searched with float vectors or EmbeddingLists, got {kind.name}")
    out = []
    for q in queries:
        if not len(q) or len(q) % dim:
            raise invalid(f"the dimension of an embedding list ({len(q)} floats) is not a multiple of "
                          f"the dim ({dim}) of {anns_field}")
        out.append(q.reshape(-1, dim))
    return out


def search_ids(req: milvus_pb2.SearchRequest) -> list[int] | list[str]:
    """The primary keys of a search by primary key (`search(ids=[...])`); [] for a vector search."""
    return list(req.ids.int_id.data) or list(req.ids.str_id.data)


def _int_or_none(raw: Any) -> int | None:
    try:
        return int(str(raw).strip()) if raw is not None else None
    except ValueError:
        return None


def search_from_proto(
    req: milvus_pb2.SearchRequest,
    schema: CollectionSchema | None = None,
    id_vectors: Any = None,
    outer_limit: int = 0,
) -> SearchRequest:
    """One SearchRequest (or a HybridSearch sub-request) → engine SearchRequest.

    `id_vectors` are the stored vectors of the keys of a search by primary key, in key
    order; they stand in for the placeholder group.
    """
    if search_ids(req) and id_vectors is None:
        raise not_supported("search by primary keys in this request")
    boosts, boost_params = rankers_from_proto(req) or ([], {})
    function_rerank = req.HasField("function_score") and len(req.function_score.functions) and not boosts
    if function_rerank and schema is None:
        raise not_supported("function rerankers in this request")
    kv = kv_to_dict(req.search_params)
    params = parse_json_params(kv.get("params", ""), "search params")
    anns_field = kv.get("anns_field", "")
    if not anns_field and schema is not None:
        vectors = schema.vector_fields
        if len(vectors) != 1:
            raise invalid("multiple anns_fields exist, please specify a anns_field in search_params")
        anns_field = vectors[0].name
    member = struct_member(schema, anns_field) if schema is not None else None
    field = member if member is not None else schema.field(anns_field) if schema is not None else None
    if schema is not None and (field is None or not field.dtype.is_vector):
        raise invalid(f"failed to create query plan: failed to get field schema by name: fieldName({anns_field}) not found")
    if id_vectors is not None:
        if member is not None:
            raise not_supported("search by primary keys on a struct array's vector field")
        queries = id_vectors
    else:
        kind, queries = decode_placeholders(req.placeholder_group)
        if member is not None:
            queries = member_queries(kind, queries, member, anns_field)
        elif kind is DataType.STRUCT:
            raise invalid(f"embedding lists search the vector fields of struct arrays; {anns_field} is not one")
        else:
            queries = _as_field_layout(kind, queries, field)
    nq = len(queries)
    check_nq(nq)
    if req.nq and req.nq != nq and id_vectors is None:  # keys whose vectors are null send no query
        raise invalid(f"nq [{req.nq}] does not match the number of query vectors [{nq}]")
    rerank = parse_function_rerank(schema, _functions(req.function_score), nq) if function_rerank else None

    topk_raw = kv.get("topk", kv.get("limit", params.get("topk", params.get("limit"))))
    topk = _int_or_none(topk_raw)
    if topk is None and outer_limit > 0:
        # Milvus: a hybrid sub-request without a usable topk takes the outer limit + offset
        topk = outer_limit
    elif topk_raw is None:
        raise invalid("topk not found in search_params")
    else:
        topk = parse_int(str(topk_raw), "topk")
    check_topk(topk)
    offset = parse_int(kv.get("offset", str(params.get("offset", 0))), "offset")
    check_offset_limit(offset, topk)
    metric = kv.get("metric_type") or params.get("metric_type") or None
    for key in ("radius", "range_filter"):
        if key in params:
            params[key] = _range_bound(params[key])
    _check_hints(params.get("hints", kv.get("hints")))
    if kv.get("analyzer_name"):  # the query text's analyzer on a multi-analyzer field
        params["analyzer_name"] = kv["analyzer_name"]
    group_by = kv.get("group_by_field") or None
    group_size = parse_int(kv.get("group_size", "1"), "group_size")
    if group_size < 1:
        raise invalid(f"group_size [{group_size}] is invalid, it should be positive")
    last_bound = kv.get("search_iter_last_bound")
    if len(getattr(req, "function_chains", ())):
        raise not_supported("function chains in search")
    if req.HasField("highlighter"):
        raise not_supported("the search highlighter")
    iterator = parse_bool(kv.get("iterator", "false"))
    # an iterator's later pages pass its first page's session_ts: they read that snapshot
    travel = req.guarantee_timestamp if iterator and req.guarantee_timestamp else req.travel_timestamp
    return SearchRequest(
        boosts=boosts,
        boost_params=boost_params,
        anns_field=anns_field,
        queries=queries,
        topk=topk,
        metric_type=str(metric).upper() if metric else None,
        params=params,
        offset=offset,
        expr=req.dsl,
        expr_params=template_values(req.expr_template_values),
        output_fields=list(req.output_fields),
        partition_names=list(req.partition_names),
        round_decimal=parse_int(kv.get("round_decimal", "-1"), "round_decimal"),
        group_by_field=group_by,
        group_by_json_path=kv.get("json_path") or None,
        group_by_json_type=kv.get("json_type") or None,
        group_size=group_size,
        strict_group_size=parse_bool(kv.get("strict_group_size", "false")),
        timezone=kv.get("timezone") or str(params.get("timezone", "")),
        ignore_growing=parse_ignore_growing(kv),
        consistency=read_consistency(req.guarantee_timestamp, req.consistency_level, req.use_default_consistency, travel),
        iterator=iterator,
        rerank=rerank,
        iterator_v2=parse_bool(kv.get("search_iter_v2", "false")),
        iterator_batch_size=parse_int(kv.get("search_iter_batch_size", "0"), "search_iter_batch_size"),
        iterator_token=kv.get("search_iter_id", ""),
        iterator_last_bound=_num(last_bound, "search_iter_last_bound") if last_bound else None,
    )


def rankers_from_proto(req: Any) -> tuple[list[dict[str, str]], dict[str, str]] | None:
    """The boost rankers of a search's function_score (their params) and the score's own
    params; None when the function score is not made of boost rankers (a decay or model ranker:
    `engine.rerank.parse_function_rerank` reads those).
    """
    if not req.HasField("function_score") or not len(req.function_score.functions):
        return [], {}
    boosts = []
    for fn in req.function_score.functions:
        params = kv_to_dict(fn.params)
        reranker = str(params.get("reranker", "")).lower()
        if reranker != "boost":
            return None
        if "random_score" in params:
            raise not_supported("random_score in a boost ranker")
        boosts.append(params)
    return boosts, kv_to_dict(req.function_score.params)


def _functions(function_score: Any) -> list[tuple[str, list[str], dict[str, str]]]:
    return [
        (fn.name, list(fn.input_field_names), {kv.key: kv.value for kv in fn.params})
        for fn in function_score.functions
    ]


def _rank_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw
    except RecursionError:
        raise invalid("rank params: the JSON value is nested too deeply") from None


def hybrid_from_proto(
    req: milvus_pb2.HybridSearchRequest, schema: CollectionSchema | None = None, id_vectors: list[Any] | None = None
) -> HybridSearchRequest:
    """`id_vectors[i]`: the stored vectors of sub-request i's primary keys (None: it sends vectors)."""
    if not req.requests:
        check_nq(0)  # Milvus words an empty request list as nq 0
    if len(req.requests) > MAX_HYBRID_REQUESTS:
        raise invalid(f"maximum of ann search requests is {MAX_HYBRID_REQUESTS}")
    function_rerank = req.HasField("function_score") and len(req.function_score.functions)
    if function_rerank:
        if rankers_from_proto(req) is not None:
            raise not_supported("boost rankers in hybrid search")
        if schema is None:
            raise not_supported("function rerankers in this request")
    vectors = id_vectors or [None] * len(req.requests)
    raw_rank = kv_to_dict(req.rank_params)
    outer = (_int_or_none(raw_rank.get("limit")) or 0) + (_int_or_none(raw_rank.get("offset")) or 0)
    subs = [search_from_proto(r, schema, v, outer) for r, v in zip(req.requests, vectors, strict=True)]
    nq = len(subs[0].queries) if subs else 0
    function = parse_function_rerank(schema, _functions(req.function_score), nq) if function_rerank else None
    if any(sub.boosts for sub in subs):
        raise not_supported("boost rankers in hybrid search sub-requests")
    rank = {k: _rank_value(v) for k, v in raw_rank.items()}
    strategy = "decay" if function is not None else str(rank.get("strategy", "rrf")).lower()
    rparams = rank.get("params", {})
    if isinstance(rparams, str):
        rparams = parse_json_params(rparams, "rank params")
    if isinstance(function, FusionRerank):  # an RRF or weighted ranker given as a function
        strategy, rparams, function = function.strategy, function.params, None
    limit = parse_int(str(rank.get("limit", subs[0].topk)), "limit")
    offset = parse_int(str(rank.get("offset", 0)), "offset")
    check_result_window(offset, limit)
    group_by = rank.get("group_by_field")
    return HybridSearchRequest(
        requests=subs,
        rerank=RerankSpec(strategy=strategy, params=rparams if isinstance(rparams, dict) else {}, function=function),
        limit=limit,
        offset=offset,
        output_fields=list(req.output_fields),
        partition_names=list(req.partition_names),
        round_decimal=parse_int(str(rank.get("round_decimal", -1)), "round_decimal"),
        group_by_field=str(group_by) if group_by else None,
        group_by_json_path=str(rank["json_path"]) if rank.get("json_path") else None,
        group_by_json_type=str(rank["json_type"]) if rank.get("json_type") else None,
        group_size=parse_int(str(rank.get("group_size", 1)), "group_size"),
        strict_group_size=parse_bool(str(rank.get("strict_group_size", "false"))),
        group_scorer=str(rank.get("rank_group_scorer", "max")),
        consistency=read_consistency(
            req.guarantee_timestamp, req.consistency_level, req.use_default_consistency, req.travel_timestamp
        ),
    )


def _ids_proto(ids: np.ndarray, pk: FieldSchema | None) -> schema_pb2.IDs:
    out = schema_pb2.IDs()
    is_str = (pk is not None and pk.dtype.is_string) or (ids.dtype == object and len(ids) and isinstance(ids[0], str))
    if is_str:
        out.str_id.data.extend(str(x) for x in ids)
    else:
        out.int_id.data.extend(np.asarray(ids, dtype=np.int64).tolist())
    return out


def result_output_fields(
    requested: list[str], field_schemas: list[FieldSchema], engine_names: list[str]
) -> tuple[set[str] | None, list[str]]:
    """Dynamic keys to keep in `$meta` and the `output_fields` list pymilvus unpacks by."""
    schema_names = [f.name for f in field_schemas]
    keys, dyn_names = dynamic_output(requested, schema_names)
    names = [n for n in engine_names if n in schema_names and n != DYNAMIC_FIELD]
    for f in field_schemas:
        if f.name not in names and f.name != DYNAMIC_FIELD:
            names.append(f.name)
    if DYNAMIC_FIELD in schema_names:
        names.extend(dyn_names if keys is not None else [DYNAMIC_FIELD])
    return keys, names


def empty_search_results(nq: int, collection: str, schema: CollectionSchema) -> milvus_pb2.SearchResults:
    """An answer of `nq` queries with no hits (a search by keys whose vectors are all null)."""
    pk = schema.primary_field
    ids = schema_pb2.IDs()
    (ids.str_id if pk.dtype.is_string else ids.int_id).SetInParent()
    data = schema_pb2.SearchResultData(num_queries=nq, topks=[0] * nq, ids=ids, primary_field_name=pk.name)
    out = milvus_pb2.SearchResults(results=data, collection_name=collection)
    out.status.CopyFrom(common_pb2.Status())
    return out


def search_result_to_proto(
    res: SearchResult, requested_output: list[str], collection: str = "", schema: CollectionSchema | None = None
) -> milvus_pb2.SearchResults:
    pk = next((f for f in res.field_schemas if f.name == res.primary_field_name), None)
    keys, names = result_output_fields(requested_output, res.field_schemas, res.output_fields)
    data = schema_pb2.SearchResultData(
        num_queries=res.num_queries,
        top_k=res.top_k,
        topks=list(res.topks),
        ids=_ids_proto(np.asarray(res.ids), pk),
        fields_data=batch_to_fields_data(res.fields, res.field_schemas, keys),
        output_fields=names,
        primary_field_name=res.primary_field_name,
        all_search_count=res.all_search_count,
    )
    append_packed(data, "scores", np.asarray(res.scores))
    if res.group_by_field and res.group_by_values is not None:
        gfield = res.group_by_schema or next((f for f in res.field_schemas if f.name == res.group_by_field), None)
        if gfield is None and schema is not None:
            gfield = schema.field(res.group_by_field)
        if gfield is not None:
            data.group_by_field_value.CopyFrom(column_to_field_data(gfield, res.group_by_values))
    if res.element_indices is not None:
        data.element_indices.data.extend(np.asarray(res.element_indices, dtype=np.int64).tolist())
    if res.iterator_token:
        data.search_iterator_v2_results.token = res.iterator_token
        data.search_iterator_v2_results.last_bound = float(res.iterator_last_bound)
    return milvus_pb2.SearchResults(results=data, collection_name=collection, session_ts=res.session_ts)
