"""RESTful v2: entities (insert, upsert, delete, get, query, search, hybrid_search) and import jobs.

Rows come in as JSON objects and are decoded like a JSON import file's rows
(`engine.import_formats.rows_to_batch`); reads and searches are decoded by the same
translate functions the gRPC servicer uses (`query_from_proto`, `search_from_proto`,
`hybrid_from_proto`, the request built by pymilvus's own `Prepare`) and answered by the
engine. Results go out as one JSON object per row, dynamic keys at the top level.
"""

from __future__ import annotations

import datetime
import os
from typing import Any

import numpy as np
from pymilvus import RRFRanker, WeightedRanker
from pymilvus.client.prepare import Prepare
from pymilvus.grpc_gen import milvus_pb2

from shoal.api.rest import Call
from shoal.api.rpc.imports import import_options
from shoal.api.translate.common import dict_to_kv
from shoal.api.translate.query import query_from_proto
from shoal.api.translate.search import hybrid_from_proto, search_from_proto
from shoal.engine.import_formats import ImportFileError, rows_to_batch
from shoal.engine.requests import SearchResult
from shoal.errors import invalid
from shoal.schema import DYNAMIC_FIELD, Batch, CollectionSchema, DataType, FieldSchema

# ---------------------------------------------------------------- values out


def _value(f: FieldSchema | None, values: Any, valid: Any, i: int) -> Any:
    if valid is not None and not valid[i]:
        return None
    v = values[i]
    if f is not None and f.dtype is DataType.BFLOAT16_VECTOR:
        return (np.asarray(v, dtype=np.uint32) << 16).view(np.float32).tolist()
    if f is not None and f.dtype is DataType.SPARSE_FLOAT_VECTOR:
        return {str(k): float(x) for k, x in dict(v).items()}
    if isinstance(v, np.ndarray):
        return v.astype(np.float32).tolist() if v.dtype == np.float16 else v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


def _rows(fields: Batch, schemas: list[FieldSchema], n: int, rows: list[dict[str, Any]] | None = None) -> list[dict]:
    out = rows if rows is not None else [{} for _ in range(n)]
    by_name = {f.name: f for f in schemas}
    for name, col in fields.items():
        f = by_name.get(name)
        for i in range(n):
            v = _value(f, col.values, col.valid, i)
            if name == DYNAMIC_FIELD:
                out[i].update(v or {})
            else:
                out[i][name] = v
    return out


# ---------------------------------------------------------------- writes


def _schema(c: Call, name: str) -> CollectionSchema:
    return c.engine.describe_collection(c.db, name).schema


def _batch(c: Call, schema: CollectionSchema, upsert: bool, partial: bool = False) -> tuple[Batch, int]:
    data = c.need("data", (list, dict))
    rows = data if isinstance(data, list) else [data]
    if not rows:
        raise invalid("data must not be empty")
    try:
        return rows_to_batch("<data>", schema, rows, with_auto_id=upsert, partial=partial), len(rows)
    except ImportFileError as e:
        raise invalid(str(e)) from None


def _ids(ids: np.ndarray) -> list[Any]:
    return [str(x) for x in ids] if ids.dtype == object else ids.astype(np.int64).tolist()


def insert(c: Call) -> dict[str, Any]:
    name = c.need("collectionName")
    batch, n = _batch(c, _schema(c, name), upsert=False)
    res = c.engine.insert(c.db, name, c.get("partitionName", "", str), batch, n)
    return {"insertCount": res.insert_count, "insertIds": _ids(res.ids)}


def upsert(c: Call) -> dict[str, Any]:
    name = c.need("collectionName")
    partial = bool(c.get("partialUpdate", False))
    batch, n = _batch(c, _schema(c, name), upsert=True, partial=partial)
    res = c.engine.upsert(c.db, name, c.get("partitionName", "", str), batch, n, partial_update=partial)
    return {"upsertCount": res.upsert_count, "upsertIds": _ids(res.ids)}


def _key_filter(schema: CollectionSchema, ids: Any) -> str:
    keys = ids if isinstance(ids, list) else [ids]
    pk = schema.primary_field
    return f"{pk.name} in {[str(k) for k in keys] if pk.dtype.is_string else [int(k) for k in keys]}".replace("'", '"')


def delete(c: Call) -> dict[str, Any]:
    name = c.need("collectionName")
    expr = c.get("filter", "", str) or (_key_filter(_schema(c, name), c.need("id", (list, int, str)))
                                       if c.get("id") is not None else "")
    c.rpc("Delete", milvus_pb2.DeleteRequest(db_name=c.db, collection_name=name, expr=expr,
                                             partition_name=c.get("partitionName", "", str)))
    return {}


# ---------------------------------------------------------------- reads


def _query(c: Call, name: str, expr: str) -> list[dict[str, Any]]:
    params: dict[str, Any] = {}
    if c.get("limit") is not None:
        params["limit"] = c.get("limit", kind=int)
    if c.get("offset") is not None:
        params["offset"] = c.get("offset", kind=int)
    outputs = c.get("outputFields", [], list) or ["*"]
    proto = milvus_pb2.QueryRequest(db_name=c.db, collection_name=name, expr=expr, output_fields=outputs,
                                    partition_names=c.get("partitionNames", [], list), query_params=dict_to_kv(params))
    req = query_from_proto(proto)
    res = c.engine.query(c.db, name, req)
    if res.count is not None:
        return [{"count(*)": res.count}]
    n = len(next(iter(res.fields.values()))) if res.fields else 0
    return _rows(res.fields, res.field_schemas, n)


def query(c: Call) -> list[dict[str, Any]]:
    return _query(c, c.need("collectionName"), c.get("filter", "", str))


def get(c: Call) -> list[dict[str, Any]]:
    name = c.need("collectionName")
    return _query(c, name, _key_filter(_schema(c, name), c.need("id", (list, int, str))))


def _vectors(f: FieldSchema | None, data: list[Any]) -> Any:
    if f is None:
        return data
    if f.dtype is DataType.BINARY_VECTOR:
        return [bytes(v) if isinstance(v, list) else v for v in data]
    if f.dtype is DataType.FLOAT16_VECTOR:
        return [np.asarray(v, dtype=np.float16) for v in data]
    if f.dtype is DataType.INT8_VECTOR:
        return [np.asarray(v, dtype=np.int8) for v in data]
    if f.dtype is DataType.BFLOAT16_VECTOR:
        raise invalid("RESTful search with a BFLOAT16 vector is not supported; search it over gRPC")
    if f.dtype is DataType.SPARSE_FLOAT_VECTOR:
        return [{int(k): float(v) for k, v in d.items()} for d in data]
    return data


def _anns(schema: CollectionSchema, spec: dict[str, Any]) -> tuple[str, FieldSchema | None]:
    name = spec.get("annsField") or ""
    if not name and len(schema.vector_fields) == 1:
        name = schema.vector_fields[0].name
    return name, schema.field(name) if name else None


def _search_param(spec: dict[str, Any]) -> dict[str, Any]:
    sp = dict(spec.get("searchParams") or {})
    param: dict[str, Any] = {"params": dict(sp.get("params") or {})}
    metric = sp.get("metricType") or spec.get("metricType")
    if metric:
        param["metric_type"] = metric
    for k in ("radius", "range_filter"):
        if k in sp:
            param["params"][k] = sp[k]
    return param


def _hits(res: SearchResult, pk: str) -> list[dict[str, Any]]:
    n = len(res.ids)
    rows = [{pk: _value(None, res.ids, None, i), "distance": float(res.scores[i])} for i in range(n)]
    return _rows(res.fields, res.field_schemas, n, rows)


def search(c: Call) -> list[dict[str, Any]]:
    name = c.need("collectionName")
    schema = _schema(c, name)
    anns, field = _anns(schema, c.body)
    kwargs: dict[str, Any] = {}
    if c.get("offset") is not None:
        kwargs["offset"] = c.get("offset", kind=int)
    if c.get("groupingField"):
        kwargs["group_by_field"] = c.get("groupingField", kind=str)
    proto = Prepare.search_requests_with_expr(
        name, anns, _search_param(c.body), c.get("limit", 100, int), data=_vectors(field, c.need("data", list)),
        expr=c.get("filter", "", str), partition_names=c.get("partitionNames", [], list),
        output_fields=c.get("outputFields", [], list), **kwargs,
    )
    req = search_from_proto(proto, schema, None)
    return _hits(c.engine.search(c.db, name, req), schema.primary_field.name)


def hybrid_search(c: Call) -> list[dict[str, Any]]:
    name = c.need("collectionName")
    schema = _schema(c, name)
    subs = []
    for spec in c.need("search", list):
        anns, field = _anns(schema, spec)
        subs.append(Prepare.search_requests_with_expr(
            name, anns, _search_param(spec), int(spec.get("limit", 100)), data=_vectors(field, spec.get("data") or []),
            expr=spec.get("filter") or None, partition_names=c.get("partitionNames", [], list),
        ))
    rerank = c.get("rerank", {"strategy": "rrf"}, dict)
    params = rerank.get("params") or {}
    strategy = str(rerank.get("strategy", "rrf")).lower()
    if strategy == "rrf":
        ranker: Any = RRFRanker(int(params.get("k", 60)))
    elif strategy == "weighted":
        ranker = WeightedRanker(*params.get("weights", []))
    else:
        raise invalid(f"rerank strategy {strategy!r} is not supported: use rrf or weighted")
    proto = Prepare.hybrid_search_request_with_ranker(
        name, subs, ranker, c.get("limit", 100, int), partition_names=c.get("partitionNames", [], list),
        output_fields=c.get("outputFields", [], list),
    )
    req = hybrid_from_proto(proto, schema)
    return _hits(c.engine.hybrid_search(c.db, name, req), schema.primary_field.name)


# ---------------------------------------------------------------- import jobs


def create_import(c: Call) -> dict[str, str]:
    files = c.need("files", list)
    if not all(isinstance(g, list) and all(isinstance(p, str) for p in g) for g in files):
        raise invalid("files must be a list of lists of file paths")
    options = {k: str(v) for k, v in (c.get("options", {}, dict) or {}).items()}
    job = c.engine.import_files(c.db, c.need("collectionName"), c.get("partitionName", "", str), files,
                                import_options(options))
    return {"jobId": str(job.job_id)}


def _job_id(c: Call) -> int:
    raw = c.need("jobId", (str, int))
    try:
        return int(raw)
    except ValueError:
        raise invalid(f"jobId {raw!r} is not a job id") from None


def import_progress(c: Call) -> dict[str, Any]:
    job = c.engine.import_job(_job_id(c))
    details = [{"fileName": p, "fileSize": _size(p), "progress": job.progress, "state": job.state,
                "importedRows": job.file_rows.get(p, 0), "totalRows": job.file_rows.get(p, 0)}
               for g in job.files for p in g]
    out = {
        "jobId": str(job.job_id), "collectionName": job.collection, "state": job.state, "progress": job.progress,
        "importedRows": job.imported_rows, "totalRows": job.total_rows, "reason": job.reason,
        "fileSize": sum(d["fileSize"] for d in details), "details": details,
    }
    if job.finished:
        out["completeTime"] = _iso(job.finished)
    return out


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _iso(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def list_imports(c: Call) -> dict[str, Any]:
    jobs = sorted(c.engine.list_import_jobs(c.db, c.get("collectionName", "", str)), key=lambda j: j.job_id)
    return {"records": [{"jobId": str(j.job_id), "collectionName": j.collection, "state": j.state,
                         "progress": j.progress} for j in jobs]}


ROUTES = {
    "entities/insert": insert, "entities/upsert": upsert, "entities/delete": delete, "entities/get": get,
    "entities/query": query, "entities/search": search, "entities/hybrid_search": hybrid_search,
    "jobs/import/create": create_import, "jobs/import/describe": import_progress,
    "jobs/import/get_progress": import_progress, "jobs/import/list": list_imports,
}
