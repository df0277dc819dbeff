"""The read path: query, search and hybrid search over a snapshot of segments.

Every read picks one MVCC timestamp, takes the collection's segment list once, and per
segment combines visibility (inserted at or before T, not deleted by T, inside the TTL)
with the filter into one mask that is pushed into the vector search — never applied
after the top-k. Per-segment hits are merged into the global top-k, then output fields
are gathered only for the hits that survive.
"""

from __future__ import annotations

import dataclasses
import math
import re
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np

from shoal.engine.catalog import CollectionMeta
from shoal.engine.element_search import (
    ElementHits,
    best_elements,
    check_range,
    collapse_to_rows,
    page,
    segment_candidates,
)
from shoal.engine.embedding_list import (
    ELEMENT_METRICS,
    MAX_SIM_METRICS,
    flatten,
    lower_is_better,
    max_sim_flat,
    max_sim_metric,
    struct_field,
    struct_member,
    top_rows,
)
from shoal.engine.entity_ttl import TTL_FIELD, unexpired
from shoal.engine.filter_cache import FilterCache
from shoal.engine.fulltext import (
    Bm25Stats,
    bm25_input,
    bm25_pairs,
    bm25_queries,
    bm25_stats,
    minhash_function,
    minhash_signatures,
)
from shoal.engine.fusion import check_subs, fusion_of
from shoal.engine.group_by import (
    GroupKey,
    check_group_vector,
    group_candidates,
    group_scorer,
    pick_groups,
    resolve_group_key,
)
from shoal.engine.iterators import IteratorStates, window
from shoal.engine.order_by import order_fields, order_rows
from shoal.engine.requests import (
    HybridSearchRequest,
    QueryRequest,
    QueryResult,
    ReadConsistency,
    SearchRequest,
    SearchResult,
)
from shoal.engine.rerank import rerank_field, rerank_page
from shoal.engine.segments import Segment
from shoal.engine.tso import TimestampOracle, compose, physical_ms
from shoal.errors import Code, ShoalError, invalid, not_supported
from shoal.expr import compile_filter
from shoal.expr.compiled import sample_mask
from shoal.index import EXACT_ROWS, allowed_rows, range_search_exact, search_exact
from shoal.index.params import check_search_params
from shoal.index.sparse import BM25_KEY, sparse_exact
from shoal.index.threads import fan_out
from shoal.schema import (
    DYNAMIC_FIELD,
    MAX_NQ,
    MAX_TOPK,
    Batch,
    CollectionSchema,
    Column,
    DataType,
    FieldSchema,
    object_array,
)
from shoal.timestamptz import format_iso

QUERY_WINDOW = 16384
DEPTH_KEYS = ("ef", "search_list", "itopk_size")
MAX_NPROBE = 65536
# A one-query search spreads its segments over the search threads when at least two indexed
# segments have this many rows: below it, handing a segment to another thread costs about what
# searching it does.
FAN_OUT_ROWS = 65_536
DYNAMIC_SCHEMA = FieldSchema(name=DYNAMIC_FIELD, dtype=DataType.JSON, is_dynamic=True)
ASCENDING_METRICS = {"L2", "HAMMING", "JACCARD", "SUBSTRUCTURE", "SUPERSTRUCTURE"}


def higher_is_better(metric: str) -> bool:
    return metric.upper() not in ASCENDING_METRICS


def default_metric(field: FieldSchema) -> str:
    if field.dtype is DataType.BINARY_VECTOR:
        return "HAMMING"
    if field.dtype is DataType.SPARSE_FLOAT_VECTOR:
        return "IP"
    return "COSINE"


def null_column(field: FieldSchema, n: int) -> Column:
    dtype = field.numpy_dtype()
    if field.dtype.is_dense_vector:
        return Column(np.zeros((n, field.vector_width()), dtype=dtype), np.zeros(n, bool))
    if dtype.kind == "O":
        return Column(object_array([None] * n), np.zeros(n, bool))
    return Column(np.zeros(n, dtype=dtype), np.zeros(n, bool))


# A dynamic key asked for as an output field must parse as an identifier (or `$meta[...]`/a
# path), as Milvus's proxy parses it; "**", "*%" or "@" are refused.
_DYNAMIC_OUTPUT = re.compile(r"(\$meta|[^\W\d]\w*)(\[.*\])?")
# An output field Milvus's proxy reads as an aggregation, before any field or dynamic key
_AGGREGATION = re.compile(r"(?i)(sum|count|avg|min|max)\s*\(\s*([\w*]*)\s*\)")


def _check_aggregation(schema: CollectionSchema, name: str) -> None:
    match = _AGGREGATION.fullmatch(name)
    if match is None:
        return
    func, target = match.group(1).lower(), match.group(2).strip()
    if target == "*":
        if func != "count":
            raise invalid(f"{func}(*) is not supported, only count(*) is allowed")
        return
    if schema.field(target) is None:
        raise invalid(f"target field {target} for aggregation:{func} does not exist")
    raise not_supported(f"the aggregation {name} in output fields")


def resolve_output_fields(schema: CollectionSchema, names: list[str]) -> tuple[list[FieldSchema], list[str]]:
    """Schema fields to return (with `$meta` last when dynamic keys are asked for) and the names as asked."""
    fields: list[FieldSchema] = []
    wanted: list[str] = []
    need_meta = False
    bm25_outputs = {dst.name for _, dst in bm25_pairs(schema)} if schema.functions else set()
    for name in names:
        if name in bm25_outputs:
            raise invalid(f"not allowed to retrieve raw data of field {name}: it is the output of a BM25 function")
        _check_aggregation(schema, name)
        if name in ("*", "%"):
            for f in schema.fields:
                at = next((i for i, x in enumerate(fields) if x.name == f.name), None)
                if at is not None:
                    fields[at] = f  # a struct projected to some members before: now all of it
                elif f.name not in bm25_outputs:
                    fields.append(f)
                    wanted.append(f.name)
            need_meta = need_meta or schema.enable_dynamic_field
            continue
        member = struct_member(schema, name) if name.endswith("]") else None
        if member is not None:
            _project_member(fields, wanted, schema, name, member)
            continue
        f = schema.field(name)
        if f is not None:
            if f not in fields:
                fields.append(f)
                wanted.append(name)
        elif name == DYNAMIC_FIELD and schema.enable_dynamic_field:
            need_meta = True
        elif schema.enable_dynamic_field:
            if not _DYNAMIC_OUTPUT.fullmatch(name):
                raise invalid(f"parse output field name failed: {name}")
            need_meta = True
            wanted.append(name)
        else:
            raise invalid(f"field {name} not exist")
    if need_meta:
        fields.append(DYNAMIC_SCHEMA)
    return fields, wanted


def _project_member(
    fields: list[FieldSchema], wanted: list[str], schema: CollectionSchema, path: str, member: FieldSchema
) -> None:
    """`structs[member]` as an output field: the struct array with only the members asked for."""
    parent = struct_field(schema, path)
    assert parent is not None
    at = next((i for i, x in enumerate(fields) if x.name == parent.name), None)
    if at is None:
        fields.append(dataclasses.replace(parent, struct_fields=[member]))
        wanted.append(parent.name)
        return
    have = {m.name for m in fields[at].struct_fields} | {member.name}
    fields[at] = dataclasses.replace(parent, struct_fields=[m for m in parent.struct_fields if m.name in have])


def gather(
    segments: list[Segment], seg_of_hit: np.ndarray, row_of_hit: np.ndarray, fields: list[FieldSchema]
) -> Batch:
    """Output columns for hits given as (segment position, row) pairs, in hit order."""
    n = len(row_of_hit)
    out: Batch = {}
    if n and seg_of_hit.min() == seg_of_hit.max():  # every hit in one segment: no scatter
        seg = segments[int(seg_of_hit[0])]
        for field in fields:
            col = seg.columns.get(field.name)
            out[field.name] = col.take(row_of_hit) if col is not None else null_column(field, n)
        return out
    for field in fields:
        parts: list[tuple[np.ndarray, Column]] = []
        for s in np.unique(seg_of_hit):
            at = np.flatnonzero(seg_of_hit == s)
            col = segments[s].columns.get(field.name)
            rows = row_of_hit[at]
            parts.append((at, col.take(rows) if col is not None else null_column(field, len(rows))))
        if not parts:
            out[field.name] = null_column(field, 0)
            continue
        if len(parts) == 1 and len(parts[0][0]) == n and np.array_equal(parts[0][0], np.arange(n)):
            out[field.name] = parts[0][1]
            continue
        first = parts[0][1]
        values = np.empty((n,) + first.values.shape[1:], dtype=first.values.dtype)
        any_null = any(c.valid is not None for _, c in parts)
        valid = np.ones(n, bool) if any_null else None
        for at, col in parts:
            values[at] = col.values
            if valid is not None and col.valid is not None:
                valid[at] = col.valid
        out[field.name] = Column(values, valid)
    return out


def present(batch: Batch, fields: list[FieldSchema], timezone: str | None) -> Batch:
    """Output columns as clients see them: TIMESTAMPTZ as ISO text in `timezone`."""
    for f in fields:
        if f.dtype is DataType.TIMESTAMPTZ and f.name in batch:
            col = batch[f.name]
            ok = col.valid
            text = [format_iso(v, timezone) if ok is None or ok[i] else "" for i, v in enumerate(col.values.tolist())]
            batch[f.name] = Column(object_array(text), col.valid)
    return batch


@dataclass
class _Hits:
    scores: np.ndarray  # (m,)
    segs: np.ndarray  # (m,) positions in the segment list
    rows: np.ndarray  # (m,)


def read_scope(segments: list[Segment]) -> frozenset[int]:
    """The partitions a read spans: those of the segments it was given."""
    return frozenset(s.partition_id for s in segments)


class Reader:
    def __init__(self, tso: TimestampOracle, filter_cache: FilterCache | None = None) -> None:
        self.tso = tso
        self.filter_cache = filter_cache if filter_cache is not None else FilterCache(0)
        self._iterators = IteratorStates()  # search iterator V2's state between steps

    # ---- shared
    def read_ts(self, consistency: ReadConsistency) -> int:
        if consistency.travel_ts:
            return consistency.travel_ts
        return self.tso.now()

    @staticmethod
    def ttl_floor(meta: CollectionMeta, read_ts: int) -> int:
        ttl = meta.ttl_seconds
        return compose(max(0, physical_ms(read_ts) - ttl * 1000)) if ttl > 0 else 0

    @staticmethod
    def _visible(
        meta: CollectionMeta, seg: Segment, read_ts: int, floor: int, scope: frozenset[int]
    ) -> np.ndarray | None:
        """Rows visible at read_ts: written by then, not deleted, not expired by either TTL, not
        shadowed by a newer row of their key in a partition of `scope` (the read's partitions)."""
        mask = seg.visible(read_ts, floor, scope)
        ttl_field = meta.properties.get(TTL_FIELD)
        if not ttl_field:
            return mask
        alive = unexpired(seg, ttl_field, read_ts, seg.num_rows if mask is None else len(mask))
        if alive is None:
            return mask
        return alive if mask is None else mask & alive

    def _masks(
        self,
        meta: CollectionMeta,
        segments: list[Segment],
        expr: str,
        params: dict,
        read_ts: int,
    ) -> list[np.ndarray | None]:
        """Per segment: rows visible at read_ts that pass the filter (None = all rows)."""
        flt = compile_filter(expr, meta.schema, params) if expr else None
        floor = self.ttl_floor(meta, read_ts)
        scope = read_scope(segments)
        masks: list[np.ndarray | None] = []
        for seg in segments:
            batch, n = seg.snapshot_batch()
            mask = self._visible(meta, seg, read_ts, floor, scope)
            if mask is not None and len(mask) > n:
                mask = mask[:n]  # rows appended after the snapshot are not this read's
            if flt is not None:
                fmask = self.filter_cache.evaluate(flt, seg, batch, n)
                mask = fmask if mask is None else (mask & fmask[:n])
            if flt is not None and flt.sample is not None:
                mask = sample_mask(np.ones(n, dtype=bool) if mask is None else mask[:n], flt.sample)
            if mask is None and not seg.sealed:
                # a growing segment may take rows while this read runs: pin the rows it has now
                mask = np.ones(n, dtype=bool)
            masks.append(mask)
        return masks

    # ---- query
    def query(self, meta: CollectionMeta, segments: list[Segment], req: QueryRequest) -> QueryResult:
        read_ts = self.read_ts(req.consistency)
        if req.ignore_growing:
            segments = [s for s in segments if s.sealed]
        is_count = [f.lower().replace(" ", "") for f in req.output_fields] == ["count(*)"]
        if not req.expr and req.limit is None and not is_count:
            raise invalid("empty expression should be used with limit")
        if req.limit is not None and req.limit + req.offset > QUERY_WINDOW:
            raise invalid(
                f"invalid max query result window, (offset+limit) should be in range [1, {QUERY_WINDOW}], "
                f"but got {req.offset + req.limit}"
            )
        masks = self._masks(meta, segments, req.expr, req.expr_params, read_ts)
        if is_count:
            total = sum(
                s.num_rows if m is None else int(np.count_nonzero(m)) for s, m in zip(segments, masks, strict=True)
            )
            count_field = FieldSchema(name="count(*)", dtype=DataType.INT64)
            return QueryResult(
                fields={"count(*)": Column(np.array([total], dtype=np.int64))},
                output_fields=["count(*)"],
                field_schemas=[count_field],
                session_ts=read_ts,
                count=total,
            )
        pk = meta.schema.primary_field
        fields, wanted = resolve_output_fields(meta.schema, req.output_fields)
        if pk not in fields:
            fields.insert(0, pk)
            wanted.insert(0, pk.name)
        seg_parts, row_parts = [], []
        for pos, (seg, mask) in enumerate(zip(segments, masks, strict=True)):
            rows = np.arange(seg.num_rows) if mask is None else allowed_rows(mask)
            seg_parts.append(np.full(len(rows), pos, dtype=np.int64))
            row_parts.append(rows)
        seg_of = np.concatenate(seg_parts) if seg_parts else np.empty(0, np.int64)
        row_of = np.concatenate(row_parts) if row_parts else np.empty(0, np.int64)
        if req.order_by:
            by = order_fields(meta.schema, req.order_by)
            order = order_rows(gather(segments, seg_of, row_of, [f for f, _ in by] + [pk]), by, pk.name)
            stop = None if req.limit is None else req.offset + req.limit
            order = order[req.offset : stop]
            seg_of, row_of = seg_of[order], row_of[order]
        else:
            # Milvus merges its segments' results by primary key: rows come back in key
            # order, and a limit keeps the smallest keys that match
            keys = gather(segments, seg_of, row_of, [pk])[pk.name].values
            order = np.argsort(keys, kind="stable")
            stop = None if req.limit is None else req.offset + req.limit
            order = order[req.offset : stop]
            seg_of, row_of = seg_of[order], row_of[order]
        return QueryResult(
            fields=present(gather(segments, seg_of, row_of, fields), fields, req.timezone or meta.properties.get("timezone")),
            output_fields=wanted,
            field_schemas=fields,
            session_ts=read_ts,
        )

    # ---- search
    def _vector_field(self, meta: CollectionMeta, anns_field: str) -> FieldSchema:
        if anns_field:
            f = meta.schema.field(anns_field)
            if f is None or not f.dtype.is_vector:
                raise invalid(f"failed to create query plan: failed to get field schema by name: fieldName({anns_field}) not found")
            return f
        vectors = meta.schema.vector_fields
        if len(vectors) != 1:
            raise invalid("multiple anns_fields exist, please specify a anns_field in search_params")
        return vectors[0]

    def _metric(self, meta: CollectionMeta, field: FieldSchema, asked: str | None) -> str:
        have = _index_metric(meta, field.name, (asked or "").upper())
        if not have and bm25_input(meta.schema, field) is not None:
            have = "BM25"  # a BM25 function's output is scored by BM25 even before it is indexed
            _check_metric(have, (asked or "").upper())
        if not have and minhash_function(meta.schema, field) is not None:
            have = "MHJACCARD"
        return (asked or have or default_metric(field)).upper()

    def _text_queries(
        self,
        meta: CollectionMeta,
        field: FieldSchema,
        segments: list[Segment],
        queries: Any,
        params: dict,
        read_ts: int,
        stats: Bm25Stats | None = None,
    ) -> tuple[Any, dict]:
        """Raw-text queries on a BM25 output: idf-weighted term vectors and the BM25 context
        (statistics of the rows visible at `read_ts`: deleted and replaced rows do not count;
        or `stats`, given)."""
        text_field = bm25_input(meta.schema, field) if meta.schema.functions else None
        if text_field is None:
            mh = minhash_function(meta.schema, field) if meta.schema.functions else None
            if mh is not None and len(queries) and all(isinstance(t, str) for t in queries):
                return minhash_signatures(meta.schema, mh, list(queries)), params
            return queries, params
        index = meta.index_for_field(field.name)
        floor = self.ttl_floor(meta, read_ts)
        scope = read_scope(segments)
        live = [self._visible(meta, seg, read_ts, floor, scope) for seg in segments]
        bq = bm25_queries(
            text_field, field, list(queries), segments, live, index.params if index else None,
            params.get("analyzer_name"), stats,
        )
        return bq.queries, {**params, BM25_KEY: bq.context}

    def text_stats(self, meta: CollectionMeta, segments: list[Segment], req: SearchRequest) -> Bm25Stats | None:
        """The BM25 statistics a raw-text search `req` would score with over `segments`; None
        when its field is not a BM25 function's output."""
        field = self._vector_field(meta, req.anns_field)
        text_field = bm25_input(meta.schema, field) if meta.schema.functions else None
        if text_field is None:
            return None
        read_ts = self.read_ts(req.consistency)
        if req.ignore_growing:
            segments = [s for s in segments if s.sealed]
        floor = self.ttl_floor(meta, read_ts)
        scope = read_scope(segments)
        live = [self._visible(meta, seg, read_ts, floor, scope) for seg in segments]
        return bm25_stats(text_field, field, list(req.queries), segments, live, req.params.get("analyzer_name"))

    def _segment_hits(
        self,
        field: FieldSchema,
        metric: str,
        segments: list[Segment],
        masks: list[np.ndarray | None],
        queries: np.ndarray | list,
        k: int,
        params: dict,
    ) -> list[_Hits]:
        nq = len(queries)
        radius = params.get("radius")
        rf = None if params.get("range_filter") is None else float(params["range_filter"])

        def search_segment(pos: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
            """One segment's (scores, rows, range limits or None) for every query."""
            seg, mask = segments[pos], masks[pos]
            col = seg.columns[field.name]
            n = seg.num_rows
            if mask is not None and len(mask) != n:
                # a growing segment took rows after `_masks` read it: they are not visible to this read
                mask = np.concatenate([mask[:n], np.zeros(max(0, n - len(mask)), dtype=bool)])
            vectors = col.values[:n]
            if col.valid is not None:
                mask = col.valid[:n] if mask is None else (mask & col.valid[:n])
            index = seg.indexes.get(field.name)
            kept = None if mask is None or index is None else int(np.count_nonzero(mask))
            if kept is not None and kept <= EXACT_ROWS and field.dtype.is_dense_vector:
                index = None  # a handful of rows: exact scores from the stored vectors beat any index
            if radius is not None:
                if index is not None:
                    return index.range_search(queries, float(radius), rf, params, mask, k)
                return range_search_exact(vectors, queries, float(radius), rf, metric, mask, k)
            if index is not None:
                scores, rows = index.search(queries, min(k, n), params, mask, kept)
            elif BM25_KEY in params:
                scores, rows = sparse_exact(vectors, queries, min(k, n), mask, bm25=params[BM25_KEY])
            else:
                scores, rows = search_exact(vectors, queries, min(k, n), metric, mask)
            return scores, rows, None

        todo = [
            pos
            for pos, (seg, mask) in enumerate(zip(segments, masks, strict=True))
            if seg.num_rows > 0 and (mask is None or mask.any()) and field.name in seg.columns
        ]
        big = sum(1 for pos in todo if field.name in segments[pos].indexes and segments[pos].num_rows >= FAN_OUT_ROWS)
        # One query over several large indexed segments: search them side by side (a batch
        # already spreads each segment's search over every thread)
        found = fan_out(search_segment, todo) if nq == 1 and big > 1 else [search_segment(pos) for pos in todo]
        per_query: list[list[tuple[np.ndarray, np.ndarray, int]]] = [[] for _ in range(nq)]
        blocks: list[tuple[np.ndarray, np.ndarray, int]] = []  # (nq, k) scores and rows per segment
        for pos, (scores, rows, lims) in zip(todo, found, strict=True):
            if lims is None:
                blocks.append((np.asarray(scores, dtype=np.float32).reshape(nq, -1), np.asarray(rows, dtype=np.int64).reshape(nq, -1), pos))
                continue
            for q in range(nq):
                a, b = int(lims[q]), int(lims[q + 1])
                per_query[q].append((scores[a:b], rows[a:b], pos))
        desc = higher_is_better(metric)
        if radius is None:
            return _merge_top_k(blocks, nq, k, desc)
        out = []
        for parts in per_query:
            if not parts:
                out.append(_Hits(np.empty(0, np.float32), np.empty(0, np.int64), np.empty(0, np.int64)))
                continue
            scores = np.concatenate([p[0] for p in parts]).astype(np.float32, copy=False)
            rows = np.concatenate([p[1] for p in parts]).astype(np.int64, copy=False)
            segs = np.concatenate([np.full(len(p[1]), p[2], dtype=np.int64) for p in parts])
            keep = rows >= 0
            scores, rows, segs = scores[keep], rows[keep], segs[keep]
            order = np.argsort(-scores if desc else scores, kind="stable")[:k]
            out.append(_Hits(scores[order], segs[order], rows[order]))
        return out

    def search(self, meta: CollectionMeta, segments: list[Segment], req: SearchRequest) -> SearchResult:
        member = struct_member(meta.schema, req.anns_field) if req.anns_field else None
        if member is not None and isinstance(req.queries, np.ndarray):
            return self._element_search(meta, segments, req, member)
        if member is not None:
            return self._embedding_list_search(meta, segments, req, member)
        field = self._vector_field(meta, req.anns_field)
        nq = len(req.queries)
        if not 1 <= req.topk <= MAX_TOPK:
            raise invalid(f"topk [{req.topk}] is invalid, it should be in range [1, {MAX_TOPK}], but got {req.topk}")
        if nq > MAX_NQ:
            raise invalid(f"nq [{nq}] is invalid, nq (number of search vector per search request) should be in range [1, {MAX_NQ}]")
        if req.offset < 0 or req.topk + req.offset > MAX_TOPK:
            raise invalid(f"(offset+limit) should be in range [1, {MAX_TOPK}], but got {req.topk + req.offset}")
        metric = self._metric(meta, field, req.metric_type)
        if metric == "MHJACCARD" and req.params.get("radius") is not None:
            raise invalid("metric MHJACCARD does not support range search: not support range search")
        if req.group_by_field:
            check_group_vector(field)
        read_ts = self.read_ts(req.consistency)
        if req.ignore_growing:
            segments = [s for s in segments if s.sealed]
        masks = self._masks(meta, segments, req.expr, req.expr_params, read_ts)
        desc = higher_is_better(metric)
        want = req.topk + req.offset
        group_field = resolve_group_key(meta.schema, req.group_by_field, req.group_by_json_path, req.group_by_json_type)
        k = want if group_field is None else group_candidates(want, req.group_size)
        page_k = k
        if req.boosts:  # boosts reorder candidates: take more than the page (Milvus: each segment's top-k)
            k = min(MAX_TOPK, max(k * 4, k + 100))
        params = req.params
        if req.iterator:
            # Every IVF list is probed (the indexes cap nprobe at nlist): an iterator must reach
            # every row, and rows left behind the first page's bound would never come back.
            params = {**params, "nprobe": MAX_NPROBE}
        seen_at_bound: set = set()
        real_bound = math.nan
        if req.iterator_last_bound is not None:
            real_bound, seen_at_bound = self._iterators.resume(req.iterator_token, float(req.iterator_last_bound))
            params = window(params, real_bound, desc)
            k = min(MAX_TOPK, k + len(seen_at_bound))
        index_meta = meta.index_for_field(field.name)
        if index_meta is not None:
            check_search_params(index_meta.params.get("index_type", ""), field.dtype, params, page_k)
        if k > page_k:  # boost candidates: search deeper than the user's depth params reach
            params = {**params, **{d: max(int(float(params[d])), k) for d in DEPTH_KEYS if params.get(d) not in (None, "")}}
        queries, params = self._text_queries(meta, field, segments, req.queries, params, read_ts, req.bm25_stats)
        hits = self._segment_hits(field, metric, segments, masks, queries, k, params)
        if seen_at_bound:
            pk = meta.schema.primary_field
            hits = [
                _Hits(h.scores[m], h.segs[m], h.rows[m])
                for h in hits
                for m in [~np.isin(gather(segments, h.segs, h.rows, [pk])[pk.name].values, list(seen_at_bound))]
            ]
        if req.boosts:
            hits = self._boost(meta, segments, hits, req.boosts, req.boost_params, req.expr_params, desc)
        group_values = None
        if req.rerank is not None and (group_field is not None or req.iterator):
            raise not_supported("a function reranker with group_by or an iterator")
        if group_field is not None:
            hits, group_values = self._group(segments, hits, group_field, req.topk, req.offset, req.group_size, req.strict_group_size)
        elif req.offset or k != want:  # else every query has at most `want` hits already: the page
            hits = [_Hits(h.scores[req.offset : want], h.segs[req.offset : want], h.rows[req.offset : want]) for h in hits]
        if req.rerank is not None:
            hits = self._rerank(segments, hits, req.rerank, metric)
        result = self._result(
            meta, segments, hits, req.output_fields, read_ts, req.round_decimal, req.topk, group_field, group_values, req
        )
        if req.iterator:
            raw = np.concatenate([h.scores for h in hits]) if hits else np.empty(0, np.float32)
            self._iterators.remember(result.iterator_token, result.iterator_last_bound, result.ids, raw,
                                     (real_bound, seen_at_bound))
        return result

    def _element_metric(self, meta: CollectionMeta, req: SearchRequest) -> str:
        asked = (req.metric_type or "").upper()
        have = _index_metric(meta, req.anns_field, asked)
        if have in MAX_SIM_METRICS:
            raise invalid(f"the index on {req.anns_field} has metric {have}, for EmbeddingList search; "
                          f"a plain vector searches its elements with an index of metric {', '.join(ELEMENT_METRICS)}")
        metric = asked or have or "COSINE"
        if metric not in ELEMENT_METRICS:
            raise invalid(f"metric type {metric} cannot search the elements of {req.anns_field}; "
                          f"use one of {', '.join(ELEMENT_METRICS)}")
        return metric

    def _element_hits(
        self, meta: CollectionMeta, segments: list[Segment], req: SearchRequest, member: FieldSchema,
        masks: list[np.ndarray | None], group_size: int = 0, strict: bool = False,
    ) -> tuple[list[ElementHits], str]:
        """Per query the best element hits of `req` (element-level search) among the rows of
        `masks`, and the metric."""
        struct = struct_field(meta.schema, req.anns_field)
        assert struct is not None
        metric = self._element_metric(meta, req)
        radius = req.params.get("radius")
        range_filter = req.params.get("range_filter")
        if radius is not None:
            check_range(metric, float(radius), None if range_filter is None else float(range_filter))
        flt = compile_filter(req.expr, meta.schema, req.expr_params) if req.expr else None
        chosen = flt.element_filter(struct.name) if flt is not None else None
        parts = []
        for pos, (seg, mask) in enumerate(zip(segments, masks, strict=True)):
            col = seg.columns.get(struct.name)
            n = seg.num_rows if mask is None else min(seg.num_rows, len(mask))
            if col is None or n == 0:
                continue
            part = segment_candidates(pos, col.values, col.valid, n, mask, member.name, req.queries, metric, chosen)
            if part is not None:
                parts.append(part)
        want = req.topk + req.offset
        return [
            best_elements(parts, q, metric, want, None if radius is None else float(radius),
                          None if range_filter is None else float(range_filter), group_size, strict)
            for q in range(len(req.queries))
        ], metric

    def _element_search(
        self, meta: CollectionMeta, segments: list[Segment], req: SearchRequest, member: FieldSchema
    ) -> SearchResult:
        """A plain vector against a struct's vector member: each element a hit of its own, with its offset."""
        for what, used in (("search iterators", req.iterator), ("boost rankers", req.boosts), ("function rerankers", req.rerank)):
            if used:
                raise not_supported(f"{what} in an element-level search of {req.anns_field}")
        if not 1 <= req.topk <= MAX_TOPK or req.offset < 0 or req.topk + req.offset > MAX_TOPK:
            raise invalid(f"(offset+limit) should be in range [1, {MAX_TOPK}], but got {req.topk + req.offset}")
        pk = meta.schema.primary_field
        if req.group_by_field and req.group_by_field != pk.name:
            raise invalid(f"an element-level search of {req.anns_field} groups by the primary key ({pk.name}) only, "
                          f"got {req.group_by_field}")
        if req.group_by_field and req.params.get("radius") is not None:
            raise invalid("an element-level search cannot group and range-search at once")
        group_size = max(req.group_size, 1) if req.group_by_field else 0
        read_ts = self.read_ts(req.consistency)
        if req.ignore_growing:
            segments = [s for s in segments if s.sealed]
        masks = self._masks(meta, segments, req.expr, req.expr_params, read_ts)
        found, _ = self._element_hits(meta, segments, req, member, masks, group_size, req.strict_group_size)
        pages = [page(h, req.offset, req.topk, group_size) for h in found]
        hits = [_Hits(h.scores, h.segs, h.rows) for h in pages]
        result = self._result(meta, segments, hits, req.output_fields, read_ts, req.round_decimal, req.topk, None, None, req)
        result.element_indices = np.concatenate([h.offsets for h in pages]) if pages else np.zeros(0, np.int64)
        if req.group_by_field:
            result.group_by_field, result.group_by_schema = pk.name, pk
            result.group_by_values = Column(np.asarray(result.ids))
        return result

    def _embedding_list_search(
        self, meta: CollectionMeta, segments: list[Segment], req: SearchRequest, member: FieldSchema
    ) -> SearchResult:
        """EmbeddingList queries against a struct member, scored exactly by a MAX_SIM metric."""
        struct = struct_field(meta.schema, req.anns_field)
        assert struct is not None
        # Milvus groups and range-searches a struct member's element-level results only, never
        # an EmbeddingList search's entity-level ones (its StructArray grouping and range pages)
        for what, used, why in (
            ("group_by", req.group_by_field, "Milvus groups element-level search results only"),
            ("range search", req.params.get("radius") is not None, "Milvus range-searches element-level search only"),
            ("search iterators", req.iterator, ""), ("boost rankers", req.boosts, ""), ("function rerankers", req.rerank, ""),
        ):
            if used:
                raise not_supported(f"{what} in an embedding-list search of {req.anns_field}" + (f" ({why})" if why else ""))
        if not 1 <= req.topk <= MAX_TOPK or req.offset < 0 or req.topk + req.offset > MAX_TOPK:
            raise invalid(f"(offset+limit) should be in range [1, {MAX_TOPK}], but got {req.topk + req.offset}")
        asked = max_sim_metric(req.metric_type or "")
        have = _index_metric(meta, req.anns_field, asked)
        if have and have not in MAX_SIM_METRICS:
            raise invalid(f"the index on {req.anns_field} has metric {have}, for element-level search; "
                          f"EmbeddingList queries need an index with a MAX_SIM metric")
        metric = asked or have or "MAX_SIM_COSINE"
        if metric not in MAX_SIM_METRICS:
            raise invalid(f"metric type {metric} cannot search the embedding lists of {req.anns_field}; "
                          f"use one of {', '.join(MAX_SIM_METRICS)}")
        read_ts = self.read_ts(req.consistency)
        if req.ignore_growing:
            segments = [s for s in segments if s.sealed]
        masks = self._masks(meta, segments, req.expr, req.expr_params, read_ts)
        want = req.topk + req.offset
        lower = lower_is_better(metric)
        queries = list(req.queries)
        blocks: list[tuple[np.ndarray, np.ndarray, int]] = []
        for pos, (seg, mask) in enumerate(zip(segments, masks, strict=True)):
            col = seg.columns.get(struct.name)
            n = seg.num_rows if mask is None else min(seg.num_rows, len(mask))
            if col is None or n == 0:
                continue
            elems, counts = flatten(col.values, n, member.name)
            scores, has = max_sim_flat(queries, elems, counts, metric)
            ok = has if mask is None else has & mask[:n]
            if col.valid is not None:
                ok &= col.valid[:n]
            blocks.append((*top_rows(scores, ok, want, lower), pos))
        hits = _merge_top_k(blocks, len(queries), want, not lower)
        hits = [_Hits(h.scores[req.offset : want], h.segs[req.offset : want], h.rows[req.offset : want]) for h in hits]
        return self._result(meta, segments, hits, req.output_fields, read_ts, req.round_decimal, req.topk, None, None, req)

    def _boost(
        self,
        meta: CollectionMeta,
        segments: list[Segment],
        hits: list[_Hits],
        boosts: list[dict[str, str]],
        params: dict[str, str],
        expr_params: dict,
        desc: bool,
    ) -> list[_Hits]:
        """Milvus's boost rankers: hits matching a ranker's filter get its weight, multiplied
        into (or added to) their score; several rankers combine by product (or sum)."""
        boost_mode = str(params.get("boost_mode", "multiply")).lower()
        function_mode = str(params.get("function_mode", "multiply")).lower()
        if boost_mode not in ("multiply", "sum") or function_mode not in ("multiply", "sum"):
            raise invalid("boost_mode and function_mode should be multiply or sum")
        rules = []
        for b in boosts:
            try:
                weight = float(b.get("weight", "1"))
            except ValueError:
                raise invalid(f"boost ranker weight must be a number, got {b.get('weight')!r}") from None
            expr = b.get("filter", "")
            rules.append((compile_filter(expr, meta.schema, expr_params) if expr else None, weight))
        masks: dict[tuple[int, int], np.ndarray] = {}
        out = []
        for h in hits:
            factor = np.ones(len(h.rows)) if function_mode == "multiply" else np.zeros(len(h.rows))
            matched_any = np.zeros(len(h.rows), bool)
            for r, (flt, weight) in enumerate(rules):
                matched = np.ones(len(h.rows), bool)
                if flt is not None:
                    for s in np.unique(h.segs).tolist():
                        key = (r, s)
                        if key not in masks:
                            seg = segments[s]
                            batch, n = seg.snapshot_batch()
                            masks[key] = self.filter_cache.evaluate(flt, seg, batch, n)
                        at = h.segs == s
                        matched[at] = masks[key][h.rows[at]]
                matched_any |= matched
                if function_mode == "multiply":
                    factor[matched] *= weight
                else:
                    factor[matched] += weight
            scores = h.scores.astype(np.float64)
            boosted = scores * factor if boost_mode == "multiply" else scores + factor
            scores = np.where(matched_any, boosted, scores).astype(np.float32)
            order = np.argsort(-scores if desc else scores, kind="stable")
            out.append(_Hits(scores[order], h.segs[order], h.rows[order]))
        return out

    @staticmethod
    def _rerank(segments: list[Segment], hits: list[_Hits], rerank: Any, metric: str) -> list[_Hits]:
        """Each query's page reordered by the function ranker (the offset is already applied)."""
        name = rerank_field(rerank)
        field = None if name is None else FieldSchema(name=name, dtype=DataType.DOUBLE)
        out = []
        for h in hits:
            col = None if field is None else gather(segments, h.segs, h.rows, [field])[field.name]
            order, scores = rerank_page(rerank, h.scores, metric, None if col is None else col.values,
                                        None if col is None else col.valid)
            out.append(_Hits(scores, h.segs[order], h.rows[order]))
        return out

    @staticmethod
    def _decayed(segments: list[Segment], scores: dict[tuple[int, int], float], decay: Any) -> dict[tuple[int, int], float]:
        if not scores:
            return scores
        keys = list(scores)
        field = FieldSchema(name=decay.field, dtype=DataType.DOUBLE)
        segs = np.array([k[0] for k in keys], dtype=np.int64)
        rows = np.array([k[1] for k in keys], dtype=np.int64)
        col = gather(segments, segs, rows, [field])[field.name]
        return dict(zip(keys, decay.decayed([scores[k] for k in keys], col.values, col.valid), strict=True))


    def _group(
        self,
        segments: list[Segment],
        hits: list[_Hits],
        group_field: GroupKey,
        topk: int,
        offset: int,
        group_size: int,
        strict: bool,
        scorer: str = "max",
    ) -> tuple[list[_Hits], Column]:
        """Hits grouped by a field: groups ordered by their best hit (hybrid search: by the
        max, sum or avg of their rows' fused scores), at most group_size rows each."""
        out: list[_Hits] = []
        values_out = []
        for h in hits:
            keys = group_field.values(gather(segments, h.segs, h.rows, [group_field.field])[group_field.field.name])
            picks = pick_groups([group_field.hashable(k) for k in keys], h.scores, topk, offset, group_size, strict,
                                scorer)
            idx = np.array(picks, dtype=np.int64)
            out.append(_Hits(h.scores[idx], h.segs[idx], h.rows[idx]))
            values_out.extend(keys[i] for i in picks)
        return out, group_field.column(values_out)

    def _result(
        self,
        meta: CollectionMeta,
        segments: list[Segment],
        hits: list[_Hits],
        output_fields: list[str],
        read_ts: int,
        round_decimal: int,
        topk: int,
        group_field: GroupKey | None,
        group_values: Column | None,
        req: SearchRequest | None = None,
    ) -> SearchResult:
        pk = meta.schema.primary_field
        segs = np.concatenate([h.segs for h in hits]) if hits else np.empty(0, np.int64)
        rows = np.concatenate([h.rows for h in hits]) if hits else np.empty(0, np.int64)
        scores = np.concatenate([h.scores for h in hits]) if hits else np.empty(0, np.float32)
        if round_decimal is not None and round_decimal >= 0:
            scores = np.round(scores.astype(np.float64), round_decimal).astype(np.float32)
        fields, wanted = resolve_output_fields(meta.schema, output_fields)
        with_pk = fields if pk in fields else [pk, *fields]
        gathered = present(
            gather(segments, segs, rows, with_pk), with_pk, (req.timezone if req else "") or meta.properties.get("timezone")
        )
        ids = gathered[pk.name].values
        out_fields = {f.name: gathered[f.name] for f in fields}
        token, last_bound = "", 0.0
        if req is not None and req.iterator:
            token = req.iterator_token or uuid.uuid4().hex
            if len(scores):
                last_bound = float(scores[-1])
            elif req.iterator_last_bound is not None:
                last_bound = req.iterator_last_bound
        return SearchResult(
            num_queries=len(hits),
            top_k=topk,
            topks=[len(h.rows) for h in hits],
            ids=ids,
            scores=scores.astype(np.float32, copy=False),
            fields=out_fields,
            field_schemas=fields,
            output_fields=wanted,
            primary_field_name=pk.name,
            session_ts=read_ts,
            group_by_field=group_field.name if group_field else None,
            group_by_schema=group_field.reported if group_field else None,
            group_by_values=group_values,
            iterator_token=token,
            iterator_last_bound=last_bound,
            all_search_count=int(len(rows)),
        )

    # ---- hybrid search
    def _sub_hits(
        self, meta: CollectionMeta, segments: list[Segment], sub: SearchRequest, masks: list[np.ndarray | None],
        member: FieldSchema | None, group_field: GroupKey | None, group_size: int, read_ts: int,
    ) -> tuple[list[_Hits], str]:
        """One hybrid sub search's ranked hits (grouped when the hybrid search groups) and its metric."""
        if member is not None:  # element hits collapse to their entities before fusing, as in Milvus
            scope = sub.params.get("element_scope")
            collapse = scope.get("collapse") if isinstance(scope, dict) else None
            if scope is not None and (not isinstance(collapse, dict) or collapse.get("strategy", "max") != "max"):
                raise not_supported(f"element_scope {scope} in a hybrid search (entities take their best element: max)")
            found, metric = self._element_hits(meta, segments, sub, member, masks)
            return [_Hits(c.scores, c.segs, c.rows) for c in map(collapse_to_rows, found)], metric
        field = self._vector_field(meta, sub.anns_field)
        metric = self._metric(meta, field, sub.metric_type)
        queries, sub_params = self._text_queries(meta, field, segments, sub.queries, sub.params, read_ts)
        if group_field is None:
            return self._segment_hits(field, metric, segments, masks, queries, sub.topk, sub_params), metric
        # as Milvus: every sub search is grouped itself, then the groups' rows are fused
        k = group_candidates(sub.topk, group_size)
        hits = self._segment_hits(field, metric, segments, masks, queries, k, sub_params)
        hits, _ = self._group(segments, hits, group_field, sub.topk, 0, group_size, False)
        desc = higher_is_better(metric)
        return [
            _Hits(h.scores[o], h.segs[o], h.rows[o])
            for h in hits
            for o in [np.argsort(-h.scores if desc else h.scores, kind="stable")]
        ], metric

    def hybrid_search(
        self, meta: CollectionMeta, segments: list[Segment], req: HybridSearchRequest
    ) -> SearchResult:
        check_subs(req.requests)
        members = {r.anns_field: struct_member(meta.schema, r.anns_field) for r in req.requests if r.anns_field}
        lists = [r.anns_field for r in req.requests if members.get(r.anns_field) and not isinstance(r.queries, np.ndarray)]
        if lists:
            raise not_supported(f"embedding-list search of {lists[0]} inside a hybrid search (search it alone)")
        elements = [r.anns_field for r in req.requests if members.get(r.anns_field)]
        structs = {f.split("[", 1)[0] for f in elements}
        pk = meta.schema.primary_field.name
        if elements and req.group_by_field and (len(elements) < len(req.requests) or len(structs) > 1 or req.group_by_field != pk):
            # Milvus's StructArray grouping page: element-level sub searches of one struct, grouped by the key
            raise invalid(f"a hybrid search with an element-level search of {elements[0]} groups by the primary key "
                          f"({pk}) only, and only when every sub search is element-level on the same struct array")
        read_ts = self.read_ts(req.consistency)
        nq = len(req.requests[0].queries)
        strategy = req.rerank.strategy.lower()
        decay = req.rerank.function if strategy == "decay" else None
        if decay is not None and req.group_by_field:
            raise not_supported("a function reranker with group_by")
        fusion = fusion_of(req.rerank, len(req.requests))
        group_field = resolve_group_key(meta.schema, req.group_by_field, req.group_by_json_path, req.group_by_json_type)
        scorer = group_scorer(req.group_size, req.group_scorer)
        fused: list[dict[Any, float]] = [{} for _ in range(nq)]
        for i, sub in enumerate(req.requests):
            masks = self._masks(meta, segments, sub.expr, sub.expr_params, read_ts)
            if sub.ignore_growing:  # masked out, not removed: fused hits key on segment positions
                masks = [m if seg.sealed else np.zeros(seg.num_rows, bool) for seg, m in zip(segments, masks, strict=True)]
            hits, metric = self._sub_hits(meta, segments, sub, masks, members.get(sub.anns_field), group_field, req.group_size, read_ts)
            for q, h in enumerate(hits):
                fusion.add(fused[q], i, metric, list(zip(h.segs.tolist(), h.rows.tolist(), strict=True)), h.scores.tolist())
        if decay is not None:
            fused = [self._decayed(segments, f, decay) for f in fused]
        hits_out = []
        for q in range(nq):
            ranked = sorted(fused[q].items(), key=lambda kv: -kv[1])
            if group_field is None:
                ranked = ranked[req.offset : req.offset + req.limit]
            hits_out.append(
                _Hits(
                    np.array([s for _, s in ranked], dtype=np.float32),
                    np.array([k[0] for k, _ in ranked], dtype=np.int64),
                    np.array([k[1] for k, _ in ranked], dtype=np.int64),
                )
            )
        group_values = None
        if group_field is not None:
            hits_out, group_values = self._group(
                segments, hits_out, group_field, req.limit, req.offset, req.group_size, req.strict_group_size, scorer
            )
        return self._result(
            meta, segments, hits_out, req.output_fields, read_ts, req.round_decimal, req.limit, group_field, group_values
        )


def _merge_top_k(blocks: list[tuple[np.ndarray, np.ndarray, int]], nq: int, k: int, desc: bool) -> list[_Hits]:
    """Per query, the best k of every segment's (nq, k) answers (row -1 = no hit), ties in segment order."""
    if not blocks:
        empty = _Hits(np.empty(0, np.float32), np.empty(0, np.int64), np.empty(0, np.int64))
        return [empty] * nq
    if len(blocks) == 1:
        scores, rows, pos = blocks[0]
    else:
        scores = np.concatenate([b[0] for b in blocks], axis=1)
        rows = np.concatenate([b[1] for b in blocks], axis=1)
    key = -scores if desc else scores.copy()
    key[rows < 0] = np.inf
    if len(blocks) == 1 and key.shape[1] <= k and bool((key[:, 1:] >= key[:, :-1]).all()):
        # one segment whose index answered in order (faiss does): the stable sort would not move a hit
        segs = np.full(rows.shape, pos, dtype=np.int64)
    else:
        order = np.argsort(key, axis=1, kind="stable")[:, :k]
        at = np.arange(nq)[:, None]
        scores, rows = scores[at, order], rows[at, order]
        if len(blocks) == 1:
            segs = np.full(rows.shape, pos, dtype=np.int64)
        else:
            segs = np.concatenate([np.full(b[1].shape, b[2], dtype=np.int64) for b in blocks], axis=1)[at, order]
    found = (rows >= 0).sum(axis=1).tolist()  # the missing sort last
    return [_Hits(scores[q, :c], segs[q, :c], rows[q, :c]) for q, c in enumerate(found)]


def _index_metric(meta: CollectionMeta, field: str, asked: str) -> str:
    """The metric of the field's index ("" without one); a request asking another metric is
    Milvus's metric mismatch."""
    index = meta.index_for_field(field)
    have = index.params.get("metric_type", "").upper() if index else ""
    _check_metric(have, asked)
    return have


def _check_metric(have: str, asked: str) -> None:
    if asked and have and asked != have:
        raise ShoalError(Code.METRIC_TYPE_MISMATCH, f"metric type not match: invalid parameter[expected={have}][actual={asked}]")
