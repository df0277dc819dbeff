"""Element-level search over the vector member of an array of structs (`chunks[emb]` searched
with a plain vector, its index on L2, IP or COSINE): every struct element is a candidate on
its own, so one entity can be hit several times, and each hit carries its element's offset
(zero-based position in the row's array), as Milvus 2.6.4+/3.0 returns it.

- `element_filter(chunks, $[m] ...)` as a top-level conjunct of the filter restricts which
  elements take part; the rest of the filter selects rows.
- `radius` / `range_filter` bound the elements' scores (Milvus's range search rules).
- `group_by_field` = the primary key keeps each entity's best `group_size` elements.

Scores are exact (every allowed element is compared; an HNSW index on the member is accepted
and described, nothing approximate is built), L2 as the squared distance like Milvus's.
Neighbours: `embedding_list` (the flattened member vectors, shared), `reader` (masks, results).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shoal.engine.embedding_list import flatten
from shoal.errors import invalid
from shoal.expr import typed as t
from shoal.expr.evaluator import matching_elements


@dataclass
class Candidates:
    """One segment's allowed elements: where they sit and which row they belong to."""

    pos: int  # the segment's position in the search's segment list
    rows: np.ndarray  # (m,) each element's row
    offsets: np.ndarray  # (m,) each element's position in its row's array
    scores: np.ndarray  # (nq, m)


@dataclass
class ElementHits:
    scores: np.ndarray
    segs: np.ndarray
    rows: np.ndarray
    offsets: np.ndarray


def element_rows(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For flattened elements: each one's row and its offset in that row's array."""
    rows = np.repeat(np.arange(len(counts)), counts)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1])) if len(counts) else np.zeros(0, np.int64)
    return rows, np.arange(len(rows)) - starts[rows]


def element_scores(queries: np.ndarray, elems: np.ndarray, metric: str) -> np.ndarray:
    """(nq, m) scores in float64: inner product, cosine, or squared L2 distance."""
    q = np.asarray(queries, dtype=np.float64)
    e = np.asarray(elems, dtype=np.float64)
    if q.ndim != 2 or (len(e) and q.shape[1] != e.shape[1]):
        raise invalid(f"the dim ({q.shape[-1]}) of the query vector does not match the field's dim ({e.shape[-1]})")
    if metric == "COSINE":
        q, e = _unit(q), _unit(e)
    dots = q @ e.T
    if metric in ("IP", "COSINE"):
        return dots
    return np.maximum((q**2).sum(1)[:, None] + (e**2).sum(1)[None, :] - 2.0 * dots, 0.0)


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1.0, norms)


def check_range(metric: str, radius: float, range_filter: float | None) -> None:
    if range_filter is None:
        return
    if metric != "L2" and range_filter <= radius:
        raise invalid(f"range_filter ({range_filter}) must be greater than radius ({radius}) for IP/COSINE")
    if metric == "L2" and range_filter >= radius:
        raise invalid(f"range_filter ({range_filter}) must be less than radius ({radius}) for L2")


def _in_range(s: np.ndarray, metric: str, radius: float | None, range_filter: float | None) -> np.ndarray:
    if radius is None:
        return np.ones(len(s), dtype=bool)
    if metric == "L2":
        keep = s < radius
        return keep if range_filter is None else keep & (s >= range_filter)
    keep = s > radius
    return keep if range_filter is None else keep & (s <= range_filter)


def best_elements(
    parts: list[Candidates], q: int, metric: str, k: int, radius: float | None = None,
    range_filter: float | None = None, group_size: int = 0, strict: bool = False,
) -> ElementHits:
    """Query `q`'s best `k` element hits over every segment (ties: segment, then element order);
    with `group_size` > 0 the best `k` entities, each with up to `group_size` of its elements
    (`strict`: only entities that have that many)."""
    scores = np.concatenate([p.scores[q] for p in parts]) if parts else np.zeros(0)
    segs = np.concatenate([np.full(len(p.rows), p.pos, np.int64) for p in parts]) if parts else np.zeros(0, np.int64)
    rows = np.concatenate([p.rows for p in parts]) if parts else np.zeros(0, np.int64)
    offsets = np.concatenate([p.offsets for p in parts]) if parts else np.zeros(0, np.int64)
    keep = _in_range(scores, metric, radius, range_filter)
    scores, segs, rows, offsets = scores[keep], segs[keep], rows[keep], offsets[keep]
    order = np.argsort(scores if metric == "L2" else -scores, kind="stable")
    if group_size <= 0:
        order = order[:k]
    else:
        order = _grouped(order, segs, rows, k, group_size, strict)
    return ElementHits(scores[order].astype(np.float32), segs[order], rows[order], offsets[order])


def _grouped(order: np.ndarray, segs: np.ndarray, rows: np.ndarray, k: int, size: int, strict: bool) -> np.ndarray:
    """The positions of `order` kept by grouping on the entity: groups ranked by their best
    element, each group's elements in score order."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i in order.tolist():
        key = (int(segs[i]), int(rows[i]))
        members = groups.get(key)
        if members is None:
            members = groups[key] = []
        if len(members) < size:
            members.append(i)
    picked = [m for m in groups.values() if not strict or len(m) == size][:k]
    return np.asarray([i for m in picked for i in m], dtype=np.int64)


def page(hits: ElementHits, offset: int, limit: int, group_size: int) -> ElementHits:
    """Hits `offset`..`offset + limit` (whole entities' groups when grouped)."""
    if not group_size:
        cut = slice(offset, offset + limit)
        return ElementHits(hits.scores[cut], hits.segs[cut], hits.rows[cut], hits.offsets[cut])
    keys = list(zip(hits.segs.tolist(), hits.rows.tolist(), strict=True))
    wanted = set(list(dict.fromkeys(keys))[offset : offset + limit])
    idx = np.asarray([i for i, k in enumerate(keys) if k in wanted], dtype=np.int64)
    return ElementHits(hits.scores[idx], hits.segs[idx], hits.rows[idx], hits.offsets[idx])


def collapse_to_rows(hits: ElementHits) -> ElementHits:
    """An element-level hybrid sub-search's hits as entity hits: each entity's best element,
    entities in the order of their best element (Milvus collapses before reranking)."""
    seen: set[tuple[int, int]] = set()
    keep = []
    for i, key in enumerate(zip(hits.segs.tolist(), hits.rows.tolist(), strict=True)):
        if key not in seen:
            seen.add(key)
            keep.append(i)
    idx = np.asarray(keep, dtype=np.int64)
    return ElementHits(hits.scores[idx], hits.segs[idx], hits.rows[idx], hits.offsets[idx])


def segment_candidates(
    pos: int, values: np.ndarray, valid: np.ndarray | None, n: int, row_mask: np.ndarray | None,
    member: str, queries: np.ndarray, metric: str, element_filter: t.ElementMatch | None,
) -> Candidates | None:
    """The scored elements of one segment's first `n` rows that the search may return: those of
    rows passing `row_mask` (and not null) that `element_filter` keeps."""
    elems, counts = flatten(values, n, member)
    if not len(elems):
        return None
    rows, offsets = element_rows(counts)
    ok = np.ones(len(rows), dtype=bool)
    if row_mask is not None:
        ok &= row_mask[:n][rows]
    if valid is not None:
        ok &= valid[:n][rows]
    if element_filter is not None:
        ok &= matching_elements(element_filter, values[:n], len(rows))
    chosen = np.flatnonzero(ok)
    if not len(chosen):
        return None
    return Candidates(pos, rows[chosen], offsets[chosen], element_scores(queries, elems[chosen], metric))
