"""Share mode's reads at the proxy: what each query node of a replica group is asked, and how
the answers become one (`proxy_engine.ClusterEngine._gathered`).

Each node answers for its share of the segments (`cluster/shares.py`), so:
- search (range search too): each node returns its best limit + offset hits per query, scores
  unrounded; the proxy keeps the best across nodes, ties by the smaller primary key (Milvus's
  proxy reduce), a key once, then applies the offset and round_decimal;
- search with group_by: each node returns its best hits, as many as the engine groups
  (`group_candidates`), with the group field; the proxy keeps the best of all and groups them
  with the engine's rule (`group_by.pick_groups`), so a group's hits on a node that did not
  rank that group among its own best still count;
- search with a function reranker (decay, RRF, weighted): each node returns its best limit +
  offset hits by the search's own score (with a decay reranker's field); the proxy merges and
  applies the offset as for any search, then reranks that page as the engine does
  (`engine/rerank.rerank_page`, Milvus's proxy order);
- a search iterator's step: the proxy keeps the iterator's state (`engine/iterators.py`); each
  node is asked for a range search from the step's unrounded bound, as many more hits as keys
  were returned at it; the proxy merges, drops those keys, pages and remembers the new bound;
- full-text (BM25) search: first every node's BM25 statistics of its share for the query terms
  (rows, total length, rows per term), summed, then the search with those statistics, so each
  node scores its share as the whole collection would;
- hybrid search: each sub search is gathered as a search of its own limit (its best hits over
  every node; grouped as above, then ranked by score again, when the hybrid search groups), then the
  proxy fuses them by primary key (`engine/fusion.py`), scales them by a decay reranker, and
  pages or groups them;
- query: each node returns its first limit + offset rows in primary-key order (with order_by:
  in that order, with the order_by fields); the proxy merges in the same order, then applies
  offset and limit; `count(*)` is the sum;
- row counts and index progress are sums, segment listings are concatenated.
A read whose answer cannot be assembled from per-node answers this way is refused with code 10
(`check`), so share mode never answers wrong.
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from datetime import datetime
from typing import Any

import numpy as np

from shoal.engine.embedding_list import struct_member
from shoal.engine.fulltext import Bm25Stats
from shoal.engine.fusion import check_subs, fusion_of
from shoal.engine.group_by import (
    GroupKey,
    check_group_vector,
    group_candidates,
    group_scorer,
    pick_groups,
    resolve_group_key,
)
from shoal.engine.iterators import IteratorStates, hashable
from shoal.engine.order_by import order_fields, order_rows
from shoal.engine.reader import DEPTH_KEYS, higher_is_better, resolve_output_fields
from shoal.engine.requests import HybridSearchRequest, QueryRequest, SearchRequest, SearchResult
from shoal.engine.rerank import rerank_field, rerank_page
from shoal.errors import Code, ShoalError
from shoal.schema import CollectionSchema, Column, DataType, FieldSchema

GATHERED = frozenset({"search", "hybrid_search", "query", "collection_row_count", "partition_row_count",
                      "describe_index", "persistent_segments", "query_segments"})
Call = tuple[str, tuple[Any, ...]]  # a method and its arguments, asked of every node of the group


def _refuse(what: str) -> ShoalError:
    return ShoalError(Code.NOT_SUPPORTED, f"{what} is not supported with segment_placement share (the cluster "
                      "divides sealed segments among query nodes and gathers reads); run segment_placement copy")


def _is_text(queries: Any) -> bool:
    return isinstance(queries, list) and bool(queries) and isinstance(queries[0], str)


def _vector_field(schema: CollectionSchema, anns_field: str) -> FieldSchema:
    field = schema.field(anns_field) if anns_field else None
    if field is None:
        vectors = schema.vector_fields
        return vectors[0] if len(vectors) == 1 else FieldSchema(name="", dtype=DataType.FLOAT_VECTOR)
    return field


def check(method: str, args: tuple[Any, ...], schema: CollectionSchema) -> None:
    """Code 10 for a read kind share mode does not gather."""
    if method not in GATHERED:
        raise _refuse(method)
    req = args[2] if len(args) > 2 else None
    if method == "search":
        if (req.iterator or req.iterator_last_bound is not None) and (req.group_by_field or req.rerank is not None):
            raise _refuse("a search iterator with group_by or a function reranker")
        if req.boosts:
            raise _refuse("search with a boost ranker")
        if req.group_by_field:
            resolve_group_key(schema, req.group_by_field, req.group_by_json_path, req.group_by_json_type)
            check_group_vector(_vector_field(schema, req.anns_field))
        if req.group_by_field and req.rerank is not None:
            raise _refuse("search with group_by and a function reranker")
        if req.anns_field and struct_member(schema, req.anns_field) is not None:
            raise _refuse("search of a struct array member (element-level or embedding-list search)")
    if method == "hybrid_search":
        check_subs(req.requests)
        if req.group_by_field and req.rerank.strategy.lower() == "decay":
            raise _refuse("hybrid search with group_by and a function reranker")
        fusion_of(req.rerank, len(req.requests))
        if req.group_by_field:
            resolve_group_key(schema, req.group_by_field, req.group_by_json_path, req.group_by_json_type)
            group_scorer(req.group_size, req.group_scorer)
        for sub in req.requests:
            if sub.anns_field and struct_member(schema, sub.anns_field) is not None:
                raise _refuse("hybrid search of a struct array member")


Step = tuple[float, set]  # a search iterator step: the unrounded bound it resumes from, keys returned at it


def iterator_step(method: str, args: tuple[Any, ...], states: IteratorStates) -> Step | None:
    """For a search iterator's step, where it resumes (the proxy keeps the iterator's state: each
    node sees only its share of the hits at the bound); None for any other read."""
    req = args[2] if len(args) > 2 else None
    if method != "search" or not (req.iterator or req.iterator_last_bound is not None):
        return None
    if req.iterator_last_bound is None:
        return math.nan, set()
    return states.resume(req.iterator_token, float(req.iterator_last_bound))


def node_calls(method: str, args: tuple[Any, ...], schema: CollectionSchema, step: Step | None = None) -> list[Call]:
    """What each node is asked: the first limit + offset hits, groups or rows, no offset; an
    iterator's step from its unrounded bound, as many more hits as keys were returned at it."""
    req = args[2] if len(args) > 2 else None
    if method == "search" and step is not None:
        bound, seen = step
        k = req.topk + req.offset + len(seen)
        # as the engine: the search depth the user gave (checked against limit + offset) reaches the extra hits
        params = {**req.params, **{d: max(_number(req.params[d]), k) for d in DEPTH_KEYS
                                   if seen and _number(req.params.get(d)) > 0}}
        asked = dataclasses.replace(_node_search(req, schema), topk=k, params=params, iterator_token="",
                                    iterator_last_bound=None if math.isnan(bound) else bound)
        return [("search", (*args[:2], asked, *args[3:]))]
    if method == "search":
        return [("search", (*args[:2], _node_search(req, schema), *args[3:]))]
    if method == "hybrid_search":
        return [("search", (*args[:2], _sub_search(req, sub, schema), *args[3:])) for sub in req.requests]
    if method == "query" and (req.offset or req.order_by):
        limit = None if req.limit is None else req.limit + req.offset
        outputs = [*req.output_fields, *_order_extra(schema, req)]
        return [("query", (*args[:2], dataclasses.replace(req, limit=limit, offset=0, output_fields=outputs),
                           *args[3:]))]
    return [(method, args)]


def _number(value: Any) -> int:
    """A search depth param as a number; 0 when it is not one (the node then checks it)."""
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return 0


def _node_search(req: SearchRequest, schema: CollectionSchema) -> SearchRequest:
    """A search as a node runs it: limit + offset hits unrounded; a decay reranker's field with
    them, not reranked; with group_by, ungrouped: the best hits a grouped search would group, with
    the group field (`_ungrouped`)."""
    field = None if req.rerank is None else rerank_field(req.rerank)
    extra = [field] if field is not None and not _has_output(schema, req.output_fields, field) else []
    asked = dataclasses.replace(req, topk=req.topk + req.offset, offset=0, round_decimal=-1, rerank=None,
                                output_fields=[*req.output_fields, *extra])
    return _ungrouped(asked, schema, req.topk + req.offset, req.group_size)


def _ungrouped(req: SearchRequest, schema: CollectionSchema, want: int, group_size: int) -> SearchRequest:
    """A grouped search as each node is asked it: its best hits (as many as the engine groups,
    `group_candidates`) with the group field, so the proxy groups the best of every node's; a
    node grouping its own would miss a group's hits on a node that did not rank that group."""
    key = resolve_group_key(schema, req.group_by_field, req.group_by_json_path, req.group_by_json_type)
    if key is None:
        return req
    extra = [] if _has_output(schema, req.output_fields, key.field.name) else [key.field.name]
    return dataclasses.replace(req, topk=group_candidates(want, group_size), group_by_field=None,
                               group_by_json_path=None, group_by_json_type=None, group_size=1,
                               strict_group_size=False, output_fields=[*req.output_fields, *extra])


def _sub_search(req: HybridSearchRequest, sub: SearchRequest, schema: CollectionSchema) -> SearchRequest:
    """A hybrid sub search as a search of its own: its limit, the hybrid's outputs (and a decay
    reranker's field), partitions and level; grouped as the hybrid search groups."""
    decay = _decay(req)
    extra = [decay.field] if decay is not None and not _has_output(schema, req.output_fields, decay.field) else []
    asked = dataclasses.replace(sub, offset=0, round_decimal=-1, output_fields=[*req.output_fields, *extra],
                                partition_names=list(req.partition_names), consistency=req.consistency,
                                group_by_field=req.group_by_field, group_by_json_path=req.group_by_json_path,
                                group_by_json_type=req.group_by_json_type)
    return _ungrouped(asked, schema, sub.topk, req.group_size)


def _decay(req: HybridSearchRequest) -> Any:
    return req.rerank.function if req.rerank.strategy.lower() == "decay" else None


def _has_output(schema: CollectionSchema, outputs: list[str], name: str, query: bool = False) -> bool:
    """Whether a read with `outputs` returns field `name` (a query always returns the primary key)."""
    fields, _ = resolve_output_fields(schema, outputs)
    return any(f.name == name for f in fields) or (query and name == schema.primary_field.name)


def _order_extra(schema: CollectionSchema, req: QueryRequest) -> list[str]:
    """ORDER BY fields the query does not output: the nodes return them for the merge, which drops them."""
    if [f.lower().replace(" ", "") for f in req.output_fields] == ["count(*)"]:
        return []
    out: list[str] = []
    for name, _ in req.order_by:
        if schema.field(name) is not None and name not in out and not _has_output(schema, req.output_fields, name,
                                                                                   query=True):
            out.append(name)
    return out


def text_stats_calls(calls: list[Call]) -> list[tuple[int, Call]]:
    """For each search call with raw-text queries (full-text search), the call asking every node
    for its share's BM25 statistics: a node's own would score its share unlike the whole."""
    return [(i, ("text_stats", args)) for i, (method, args) in enumerate(calls)
            if method == "search" and _is_text(args[2].queries)]


def with_text_stats(calls: list[Call], at: list[int], parts: list[list[dict[str, Any]]]) -> list[Call]:
    """The calls, each full-text search carrying the sum of the nodes' statistics."""
    out = list(calls)
    for i, answers in zip(at, parts, strict=True):
        found = [a["result"] for a in answers]
        if any(f is None for f in found):
            continue  # not a BM25 output (a MinHash field's text): nothing collection-wide to score with
        method, args = calls[i]
        out[i] = (method, (*args[:2], dataclasses.replace(args[2], bm25_stats=Bm25Stats.total(found)), *args[3:]))
    return out


def node_part(engine: Any, method: str, args: tuple[Any, ...], result: Any) -> dict[str, Any]:
    """One node's answer (its engine read `result`): for a search also its metric and whether
    higher scores rank first, which the merge needs."""
    out: dict[str, Any] = {"result": result}
    if method == "search":
        meta = engine.catalog.require(str(args[0]), str(args[1]))
        field = engine.reader._vector_field(meta, args[2].anns_field)
        out["metric"] = engine.reader._metric(meta, field, args[2].metric_type)
        out["desc"] = higher_is_better(out["metric"])
    return out


def merge(method: str, args: tuple[Any, ...], parts: list[list[dict[str, Any]]], schema: CollectionSchema,
          step: Step | None = None, states: IteratorStates | None = None) -> Any:
    """The answer from every node's answer to each call of `node_calls` (parts[call][node]); an
    iterator's step also leaves its state in `states`."""
    req = args[2] if len(args) > 2 else None
    if method == "hybrid_search":
        return _merge_hybrid(req, parts, schema)
    results = [p["result"] for p in parts[0]]
    if method in ("collection_row_count", "partition_row_count"):
        return sum(int(r) for r in results)
    if method in ("persistent_segments", "query_segments"):
        return [s for r in results for s in r]
    if method == "describe_index":
        return _merge_index_progress(results)
    if method == "query":
        return _merge_query(results, req, schema)
    desc = any(bool(p.get("desc")) for p in parts[0])
    if step is not None and states is not None:
        return _iterated(_merge_search(results, req, desc, schema, 0, req.topk + req.offset + len(step[1])), req, step,
                         states, schema)
    if req.rerank is not None:
        return _reranked(_merge_search(results, req, desc, schema, req.offset, req.topk), req, parts[0], schema)
    if req.group_by_field:
        return _rounded(_grouped_search(results, req, desc, schema), req.round_decimal)
    return _rounded(_merge_search(results, req, desc, schema, req.offset, req.topk), req.round_decimal)


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


def _merge_query(results: list[Any], req: Any, schema: CollectionSchema) -> Any:
    first = results[0]
    if first.count is not None:
        total = sum(int(r.count) for r in results)
        return dataclasses.replace(first, fields={"count(*)": Column(np.array([total], dtype=np.int64))}, count=total)
    pk = schema.primary_field.name
    fields = _concat([r.fields for r in results])
    if req.order_by:
        by = order_fields(schema, req.order_by)
        order = order_rows({**fields, **{f.name: _sortable(fields[f.name]) for f, _ in by
                                         if f.dtype is DataType.TIMESTAMPTZ}}, by, pk)
    else:
        order = np.argsort(fields[pk].values, kind="stable")
    stop = None if req.limit is None else req.offset + req.limit
    order = order[req.offset:stop]
    extra = set(_order_extra(schema, req)) if req.order_by else set()
    return dataclasses.replace(
        first, fields={n: c.take(order) for n, c in fields.items() if n not in extra},
        output_fields=[n for n in first.output_fields if n not in extra],
        field_schemas=[f for f in first.field_schemas if f.name not in extra],
        session_ts=max(r.session_ts for r in results))


def _sortable(col: Column) -> Column:
    """A TIMESTAMPTZ column as the node presented it (ISO text) back to microseconds."""
    ok = col.valid
    micros = [int(datetime.fromisoformat(v).timestamp() * 1_000_000) if (ok is None or ok[i]) and v else 0
              for i, v in enumerate(col.values.tolist())]
    return Column(np.array(micros, dtype=np.int64), ok)


def _merge_search(results: list[Any], req: Any, desc: bool, schema: CollectionSchema, skip: int, want: int) -> Any:
    """The best hits of every node's, per query: `want` of them after the first `skip`."""
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
        kept = kept[skip:skip + want]
        picked += kept
        topks.append(len(kept))
    take = np.array(picked, dtype=np.int64)
    fields = _concat([r.fields for r in results]) if first.fields else {}
    return dataclasses.replace(
        first, top_k=req.topk, topks=topks, ids=ids[take], scores=scores[take],
        fields={n: c.take(take) for n, c in fields.items()}, session_ts=max(r.session_ts for r in results),
        all_search_count=sum(r.all_search_count for r in results))


def _groups(merged: SearchResult, key: GroupKey, topk: int, offset: int, group_size: int,
            strict: bool) -> tuple[list[np.ndarray], list[Any]]:
    """Per query, the hits of `merged` (best first, ungrouped) a grouped search returns, and
    their group values."""
    values = key.values(merged.fields[key.field.name])
    starts = np.concatenate([[0], np.cumsum(merged.topks)])
    picks = []
    for q in range(merged.num_queries):
        rows = np.arange(int(starts[q]), int(starts[q + 1]))
        at = pick_groups([key.hashable(values[r]) for r in rows], merged.scores[rows], topk, offset, group_size, strict)
        picks.append(rows[np.array(at, dtype=np.int64)])
    return picks, values


def _grouped_search(results: list[Any], req: SearchRequest, desc: bool, schema: CollectionSchema) -> Any:
    key = resolve_group_key(schema, req.group_by_field, req.group_by_json_path, req.group_by_json_type)
    assert key is not None
    merged = _merge_search(results, req, desc, schema, 0, group_candidates(req.topk + req.offset, req.group_size))
    picks, values = _groups(merged, key, req.topk, req.offset, req.group_size, req.strict_group_size)
    take = np.concatenate(picks).astype(np.int64) if picks else np.empty(0, np.int64)
    extra = set() if _has_output(schema, req.output_fields, key.field.name) else {key.field.name}
    return dataclasses.replace(
        merged, topks=[len(p) for p in picks], ids=merged.ids[take], scores=merged.scores[take],
        fields={n: c.take(take) for n, c in merged.fields.items() if n not in extra},
        field_schemas=[f for f in merged.field_schemas if f.name not in extra],
        output_fields=[n for n in merged.output_fields if n not in extra],
        group_by_field=key.name, group_by_schema=key.reported,
        group_by_values=key.column([values[i] for i in take.tolist()]))


def _reranked(merged: SearchResult, req: SearchRequest, parts: list[dict[str, Any]], schema: CollectionSchema) -> Any:
    """A function reranker over the merged page (offset applied), as the engine does."""
    metric = str(parts[0].get("metric", ""))
    field = rerank_field(req.rerank)
    col = None if field is None else merged.fields[field]
    starts = np.concatenate([[0], np.cumsum(merged.topks)])
    picked: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    topks = []
    for q in range(merged.num_queries):
        at = np.arange(int(starts[q]), int(starts[q + 1]))
        order, rescored = rerank_page(req.rerank, merged.scores[at], metric,
                                      None if col is None else col.values[at],
                                      None if col is None or col.valid is None else col.valid[at])
        picked.append(at[order])
        scores.append(rescored)
        topks.append(len(order))
    take = np.concatenate(picked).astype(np.int64) if picked else np.empty(0, np.int64)
    extra = set() if field is None or _has_output(schema, req.output_fields, field) else {field}
    out = dataclasses.replace(
        merged, topks=topks, ids=merged.ids[take],
        scores=(np.concatenate(scores) if scores else np.empty(0)).astype(np.float32),
        fields={n: c.take(take) for n, c in merged.fields.items() if n not in extra},
        field_schemas=[f for f in merged.field_schemas if f.name not in extra],
        output_fields=[n for n in merged.output_fields if n not in extra])
    return _rounded(out, req.round_decimal)


def _merge_hybrid(req: HybridSearchRequest, parts: list[list[dict[str, Any]]], schema: CollectionSchema) -> Any:
    """Each sub search's best hits over every node (grouped ones re-ranked by score), fused by
    primary key (`engine/fusion.py`), a decay reranker's scaling, then paged or grouped."""
    fusion = fusion_of(req.rerank, len(req.requests))
    decay = _decay(req)
    key = resolve_group_key(schema, req.group_by_field, req.group_by_json_path, req.group_by_json_type)
    scorer = group_scorer(req.group_size, req.group_scorer) if key is not None else "max"
    descs = [any(bool(p.get("desc")) for p in sub_parts) for sub_parts in parts]
    depth = [sub.topk if key is None else group_candidates(sub.topk, req.group_size) for sub in req.requests]
    subs = [_merge_search([p["result"] for p in sub_parts], _sub_search(req, sub, schema), desc, schema, 0, k)
            for sub, sub_parts, desc, k in zip(req.requests, parts, descs, depth, strict=True)]
    metrics = [str(sub_parts[0].get("metric", "")) for sub_parts in parts]
    first = subs[0]
    ids = np.concatenate([s.ids for s in subs]) if len(subs) > 1 else first.ids
    scores = np.concatenate([s.scores for s in subs])
    fields = _concat([s.fields for s in subs]) if first.fields else {}
    base = np.cumsum([0] + [len(s.ids) for s in subs])
    starts = [np.concatenate([[0], np.cumsum(s.topks)]) for s in subs]
    # grouped: each sub search's hits are its groups' (group_size each), ranked by score again
    chosen = ([_groups(s, key, sub.topk, 0, req.group_size, False)[0] for s, sub in zip(subs, req.requests, strict=True)]
              if key is not None else None)
    values = key.values(fields[key.field.name]) if key is not None else []
    picked: list[int] = []
    fused_scores: list[float] = []
    topks = []
    for q in range(first.num_queries):
        fused: dict[Any, float] = {}
        where: dict[Any, int] = {}  # a key's row in the concatenated sub answers (its first)
        for i in range(len(subs)):
            rows = list(range(int(base[i] + starts[i][q]), int(base[i] + starts[i][q + 1])))
            if chosen is not None:
                rows = [int(base[i]) + int(r) for r in chosen[i][q]]
                rows.sort(key=lambda r, d=descs[i]: -float(scores[r]) if d else float(scores[r]))
            for r in rows:
                where.setdefault(ids[r], r)
            fusion.add(fused, i, metrics[i], [ids[r] for r in rows], [float(scores[r]) for r in rows])
        if decay is not None:
            col = fields[decay.field]
            at = np.array([where[k] for k in fused], dtype=np.int64)
            fused = dict(zip(fused, decay.decayed(list(fused.values()), col.values[at],
                                                None if col.valid is None else col.valid[at]), strict=True))
        ranked = sorted(fused.items(), key=lambda kv: -kv[1])
        if key is None:
            ranked = ranked[req.offset:req.offset + req.limit]
        else:
            at = pick_groups([key.hashable(values[where[k]]) for k, _ in ranked], np.array([v for _, v in ranked]),
                             req.limit, req.offset, req.group_size, req.strict_group_size, scorer)
            ranked = [ranked[i] for i in at]
        picked += [where[k] for k, _ in ranked]
        fused_scores += [v for _, v in ranked]
        topks.append(len(ranked))
    take = np.array(picked, dtype=np.int64)
    extra = {f for f in (decay.field if decay is not None else "", key.field.name if key is not None else "")
             if f and not _has_output(schema, req.output_fields, f)}
    out = dataclasses.replace(
        first, top_k=req.limit, topks=topks, ids=ids[take], scores=np.array(fused_scores, dtype=np.float32),
        fields={n: c.take(take) for n, c in fields.items() if n not in extra},
        field_schemas=[f for f in first.field_schemas if f.name not in extra],
        output_fields=[n for n in first.output_fields if n not in extra],
        group_by_field=None if key is None else key.name, group_by_schema=None if key is None else key.reported,
        group_by_values=None if key is None else key.column([values[i] for i in picked]),
        session_ts=max(s.session_ts for s in subs), all_search_count=len(picked), iterator_token="",
        iterator_last_bound=0.0)
    return _rounded(out, req.round_decimal)


def _iterated(merged: SearchResult, req: SearchRequest, step: Step, states: IteratorStates,
              schema: CollectionSchema) -> Any:
    """One iterator step: the merged hits less the keys returned at the bound, paged; its token
    and bound, and its state kept for the next step (as the engine's reader does)."""
    bound, seen = step
    keep = np.array([hashable(x) not in seen for x in np.asarray(merged.ids).tolist()], dtype=bool)
    starts = np.concatenate([[0], np.cumsum(merged.topks)])
    take_parts = [np.flatnonzero(keep[int(starts[q]):int(starts[q + 1])])[req.offset:req.offset + req.topk] + int(starts[q])
                  for q in range(merged.num_queries)]
    take = np.concatenate(take_parts).astype(np.int64) if take_parts else np.empty(0, np.int64)
    raw = merged.scores[take]
    out = _rounded(dataclasses.replace(
        merged, topks=[len(t) for t in take_parts], ids=merged.ids[take], scores=raw,
        fields={n: c.take(take) for n, c in merged.fields.items()}), req.round_decimal)
    last = float(out.scores[-1]) if len(out.scores) else (req.iterator_last_bound or 0.0)
    out = dataclasses.replace(out, iterator_token=req.iterator_token or uuid.uuid4().hex, iterator_last_bound=last)
    states.remember(out.iterator_token, last, out.ids, raw, step)
    return out


def _rounded(result: Any, round_decimal: int) -> Any:
    if round_decimal is None or round_decimal < 0:
        return result
    return dataclasses.replace(result, scores=np.round(result.scores.astype(np.float64), round_decimal).astype(np.float32))
