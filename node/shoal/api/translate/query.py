"""Query on the wire: `QueryRequest` → engine `QueryRequest`, `QueryResult` → `QueryResults`.

`count(*)` comes back as an Int64 field named `count(*)` with one value, as Milvus does.
Neighbours: `field_data` (columns), `search` (shared output-field rules), the servicer.
"""

from __future__ import annotations

from pymilvus.grpc_gen import milvus_pb2, schema_pb2

from shoal.api.translate.common import (
    kv_to_dict,
    parse_bool,
    parse_ignore_growing,
    parse_int,
    read_consistency,
    template_values,
)
from shoal.api.translate.field_data import batch_to_fields_data
from shoal.api.translate.search import result_output_fields
from shoal.api.validate import check_result_window
from shoal.engine.requests import QueryRequest, QueryResult
from shoal.errors import invalid, not_supported
from shoal.schema import DataType

COUNT_STAR = "count(*)"


def parse_order_by(raw: str) -> list[tuple[str, bool]]:
    """`price:desc,id` → [("price", True), ("id", False)]."""
    out = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        name, _, direction = item.partition(":")
        direction = (direction or "asc").strip().lower()
        if direction not in ("asc", "desc"):
            raise invalid(f"invalid order direction {direction!r} for {name}: expected asc or desc")
        out.append((name.strip(), direction == "desc"))
    return out


def query_from_proto(req: milvus_pb2.QueryRequest) -> QueryRequest:
    kv = kv_to_dict(req.query_params)
    limit = parse_int(kv["limit"], "limit") if kv.get("limit") not in (None, "") else None
    # Milvus's proxy reads the offset only when a limit is given; without one it is ignored
    offset = parse_int(kv.get("offset", "0") or "0", "offset") if limit is not None else 0
    check_result_window(offset, None if limit == 0 else limit)  # a zero limit has always read as no limit here
    outputs = [f.strip() for f in req.output_fields if f.strip()]
    lowered = [o.lower() for o in outputs]
    if COUNT_STAR in lowered and len(outputs) > 1:
        raise invalid("count entities with pagination or other output fields is not allowed")
    if COUNT_STAR in lowered and limit is not None:
        raise invalid("count entities with pagination is not allowed")
    if not req.expr and limit is None and COUNT_STAR not in lowered:
        raise invalid("empty expression should be used with limit")
    iterator = parse_bool(kv.get("iterator", "false"))
    if kv.get("group_by_fields"):
        raise not_supported("group_by_fields in query (aggregation)")
    return QueryRequest(
        order_by=parse_order_by(kv.get("order_by_fields", "")),
        timezone=kv.get("timezone", ""),
        expr=req.expr,
        expr_params=template_values(req.expr_template_values),
        output_fields=[COUNT_STAR if o.lower() == COUNT_STAR else o for o in outputs],
        partition_names=list(req.partition_names),
        limit=limit,
        offset=offset,
        consistency=read_consistency(
            req.guarantee_timestamp,
            req.consistency_level,
            req.use_default_consistency,
            # an iterator's pages (and a resume from its checkpoint) pass its first page's
            # session_ts: every page reads that one snapshot, as Milvus's iterators do
            req.guarantee_timestamp if iterator and req.guarantee_timestamp else req.travel_timestamp,
        ),
        ignore_growing=parse_ignore_growing(kv),
    )


def query_result_to_proto(
    res: QueryResult, requested_output: list[str], primary_field: str, collection: str = ""
) -> milvus_pb2.QueryResults:
    if res.count is not None:
        fd = schema_pb2.FieldData(type=int(DataType.INT64), field_name=COUNT_STAR)
        fd.scalars.long_data.data.append(int(res.count))
        return milvus_pb2.QueryResults(
            fields_data=[fd],
            output_fields=[COUNT_STAR],
            collection_name=collection,
            session_ts=res.session_ts,
            primary_field_name=primary_field,
        )
    keys, names = result_output_fields(requested_output, res.field_schemas, res.output_fields)
    return milvus_pb2.QueryResults(
        fields_data=batch_to_fields_data(res.fields, res.field_schemas, keys),
        output_fields=names,
        collection_name=collection,
        session_ts=res.session_ts,
        primary_field_name=primary_field,
    )


