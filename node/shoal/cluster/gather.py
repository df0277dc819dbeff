"""Share mode's reads at the proxy: what each query node of a replica group is asked, and how
the answers become one (`proxy_engine.ClusterEngine._gathered`).

Each node answers for its share of the segments (`cluster/shares.py`), so:
- search: each node returns its best limit + offset hits per query; the proxy keeps the best
  across nodes, ties by the smaller primary key (Milvus's proxy reduce), a key once, then applies
  the offset;
- query: each node returns its first limit + offset rows in primary-key order; the proxy merges by
  primary key, then applies offset and limit; `count(*)` is the sum;
- row counts and index progress are sums, segment listings are concatenated.
A read whose answer cannot be assembled from per-node answers this way is refused with code 10
(`check`), so share mode never answers wrong.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from shoal.errors import Code, ShoalError
from shoal.schema import Column

GATHERED = frozenset({"search", "query", "collection_row_count", "partition_row_count", "describe_index",
                      "persistent_segments", "query_segments"})


def _refuse(what: str) -> ShoalError:
    return ShoalError(Code.NOT_SUPPORTED, f"{what} is not supported with segment_placement share (the cluster "
                      "divides sealed segments among query nodes and gathers reads); run segment_placement copy")


def check(method: str, args: tuple[Any, ...]) -> None:
    """Code 10 for a read kind share mode does not gather."""
    if method not in GATHERED:
        raise _refuse("hybrid search" if method == "hybrid_search" else method)
    req = args[2] if len(args) > 2 else None
    if method == "search":
        if req.group_by_field:
            raise _refuse("search with group_by")
        if req.iterator or req.iterator_v2 or req.iterator_token or req.iterator_last_bound is not None:
            raise _refuse("a search iterator")
        if req.params.get("radius") is not None or req.params.get("range_filter") is not None:
            raise _refuse("range search")
        if isinstance(req.queries, list) and req.queries and isinstance(req.queries[0], str):
            raise _refuse("full-text (BM25) search")
        if req.rerank is not None or req.boosts:
            raise _refuse("search with a function reranker or boost")
    if method == "query" and req.order_by:
        raise _refuse("query with order_by")


def node_args(method: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """What each node is asked: the first limit + offset hits or rows, no offset."""
    req = args[2] if len(args) > 2 else None
    if method == "search":
        return (*args[:2], dataclasses.replace(req, topk=req.topk + req.offset, offset=0), *args[3:])
    if method == "query" and req.offset:
        limit = None if req.limit is None else req.limit + req.offset
        return (*args[:2], dataclasses.replace(req, limit=limit, offset=0), *args[3:])
    return args


def merge(method: str, args: tuple[Any, ...], parts: list[dict[str, Any]]) -> Any:
    results = [p["result"] for p in parts]
    if method in ("collection_row_count", "partition_row_count"):
        return sum(int(r) for r in results)
    if method in ("persistent_segments", "query_segments"):
        return [s for r in results for s in r]
    if method == "describe_index":
        return _merge_index_progress(results)
    if method == "query":
        return _merge_query(results, args[2])
    return _merge_search(results, args[2], any(bool(p.get("desc")) for p in parts))


def _merge_index_progress(results: list[list[Any]]) -> list[Any]:
    out = []
    for infos in zip(*results, strict=True):
        states = {i.state for i in infos}
        state = "Failed" if "Failed" in states else "InProgress" if "InProgress" in states else infos[0].state
        out.append(dataclasses.replace(
            infos[0], state=state, indexed_rows=sum(i.indexed_rows for i in infos),
            total_rows=sum(i.total_rows for i in infos), pending_index_rows=sum(i.pending_index_rows for i in infos)))
    return out


def _concat(batches: list[dict[str, Column]]) -> dict[str, Column]:
    return {name: Column.concat([b[name] for b in batches]) for name in batches[0]}


def _merge_query(results: list[Any], req: Any) -> Any:
    first = results[0]
    if first.count is not None:
        total = sum(int(r.count) for r in results)
        return dataclasses.replace(first, fields={"count(*)": Column(np.array([total], dtype=np.int64))}, count=total)
    pk = next(f.name for f in first.field_schemas if f.is_primary)
    fields = _concat([r.fields for r in results])
    order = np.argsort(fields[pk].values, kind="stable")
    stop = None if req.limit is None else req.offset + req.limit
    order = order[req.offset:stop]
    return dataclasses.replace(first, fields={n: c.take(order) for n, c in fields.items()},
                               session_ts=max(r.session_ts for r in results))


def _merge_search(results: list[Any], req: Any, desc: bool) -> Any:
    first = results[0]
    nq = first.num_queries
    ids = np.concatenate([r.ids for r in results]) if len(results) > 1 else first.ids
    scores = np.concatenate([r.scores for r in results]).astype(np.float32, copy=False)
    base = np.cumsum([0] + [len(r.ids) for r in results])
    starts = [np.concatenate([[0], np.cumsum(r.topks)]) for r in results]
    picked: list[int] = []
    topks: list[int] = []
    for q in range(nq):
        rows = [int(base[p]) + i for p, r in enumerate(results) for i in range(int(starts[p][q]), int(starts[p][q + 1]))]
        rows.sort(key=lambda i: (-float(scores[i]) if desc else float(scores[i]), ids[i]))
        seen: set[Any] = set()
        kept = []
        for i in rows:
            if ids[i] not in seen:
                seen.add(ids[i])
                kept.append(i)
        kept = kept[req.offset:req.offset + req.topk]
        picked += kept
        topks.append(len(kept))
    take = np.array(picked, dtype=np.int64)
    fields = _concat([r.fields for r in results]) if first.fields else {}
    return dataclasses.replace(
        first, top_k=req.topk, topks=topks, ids=ids[take], scores=scores[take],
        fields={n: c.take(take) for n, c in fields.items()}, session_ts=max(r.session_ts for r in results),
        all_search_count=sum(r.all_search_count for r in results))
