"""Embedding-list search over the vector member of an array of structs (`chunks[emb]`).

A row's elements form one embedding list; a query is another (pymilvus `EmbeddingList`).
The MAX_SIM metrics score a row by summing, over the query's vectors, each one's best match
among the row's elements: the largest inner product (MAX_SIM_IP) or cosine (MAX_SIM_COSINE),
or the smallest squared L2 distance (MAX_SIM_L2, where lower is better: Milvus's docs write the
formula with "Max" for every metric; for a distance the best match is the nearest, which is how
Shoal reads it). `MAX_SIM` is MAX_SIM_COSINE. Scores are exact:
every visible row's elements are compared, so an HNSW index on the member is accepted and
described but nothing approximate is built. A row with no elements (or null) is never a hit.
"""

from __future__ import annotations

import re
import threading
import weakref

import numpy as np

from shoal.errors import invalid
from shoal.schema import CollectionSchema, DataType, FieldSchema

MAX_SIM_METRICS = ("MAX_SIM_COSINE", "MAX_SIM_IP", "MAX_SIM_L2")
METRIC_ALIASES = {"MAX_SIM": "MAX_SIM_COSINE"}  # Milvus's docs name MAX_SIM_COSINE so too


def max_sim_metric(asked: str) -> str:
    upper = asked.upper()
    return METRIC_ALIASES.get(upper, upper)
# index types Milvus builds on a struct's vector member; Shoal scores them all exactly
MEMBER_INDEX_TYPES = ("HNSW", "AUTOINDEX", "FLAT")
SCALAR_MEMBER_INDEX_TYPES = ("AUTOINDEX", "INVERTED", "STL_SORT", "BITMAP")
ELEMENT_METRICS = ("L2", "IP", "COSINE")  # element-level search (`element_search`)

_PATH = re.compile(r"^([^\[\]]+)\[([^\[\]]+)\]$")


def split_path(path: str) -> tuple[str, str] | None:
    m = _PATH.match(path)
    return (m.group(1), m.group(2)) if m else None


def struct_field(schema: CollectionSchema, path: str) -> FieldSchema | None:
    """The ARRAY_OF_STRUCT field a `struct[member]` path names (None when it names none)."""
    parts = split_path(path)
    if parts is None:
        return None
    f = schema.field(parts[0])
    return f if f is not None and f.dtype is DataType.ARRAY_OF_STRUCT else None


def struct_member(schema: CollectionSchema, path: str) -> FieldSchema | None:
    """The member a `struct[member]` path names, None if the path names no struct member."""
    f = struct_field(schema, path)
    parts = split_path(path)
    return None if f is None or parts is None else f.sub_field(parts[1])


def member_index_params(schema: CollectionSchema, path: str, params: dict[str, str]) -> dict[str, str] | None:
    """Checked index params for a struct member, or None if `path` names no struct member.

    Nothing is built: a vector member is scored exactly, a scalar member (indexed for element
    filters) is scanned. A vector member's index takes a MAX_SIM metric (EmbeddingList search)
    or an element-level one (L2, IP, COSINE: element-level search, `element_search`)."""
    member = struct_member(schema, path)
    if member is None:
        return None
    index_type = str(params.get("index_type") or "AUTOINDEX").upper()
    if not member.dtype.is_vector:
        if index_type not in SCALAR_MEMBER_INDEX_TYPES:
            raise invalid(f"index type {index_type} is not supported on the scalar field {path} of a struct array; "
                          f"use one of {', '.join(SCALAR_MEMBER_INDEX_TYPES)}")
        return {**{k: str(v) for k, v in params.items()}, "index_type": index_type}
    if index_type not in MEMBER_INDEX_TYPES:
        raise invalid(f"index type {index_type} is not supported on the vector field {path} of a struct array; "
                      f"use one of {', '.join(MEMBER_INDEX_TYPES)}")
    metric = max_sim_metric(str(params.get("metric_type") or "MAX_SIM_COSINE"))
    if metric not in MAX_SIM_METRICS + ELEMENT_METRICS:
        raise invalid(f"metric type {metric} is not supported for the vector field {path} of a struct array; "
                      f"embedding lists are searched with {', '.join(MAX_SIM_METRICS)}, "
                      f"elements with {', '.join(ELEMENT_METRICS)}")
    return {**{k: str(v) for k, v in params.items()}, "index_type": index_type, "metric_type": metric}


def lower_is_better(metric: str) -> bool:
    return metric == "MAX_SIM_L2"


def max_sim(queries: list[np.ndarray], rows: np.ndarray, member: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Scores (nq, len(rows)) of each query list against each row's elements, and which rows
    have elements at all. `rows` holds lists of member dicts (or None)."""
    elems, counts = flatten(rows, len(rows), member)
    return max_sim_flat(queries, elems, counts, metric)


# A column's elements as one float32 matrix, kept while the column lives: sealed columns never
# change, and a growing one is keyed by its row count too.
# (by the column's id, dropped when the column is freed; numpy arrays cannot be dict keys).
_FLAT: dict[int, dict[tuple[str, int], tuple[np.ndarray, np.ndarray]]] = {}
_FLAT_LOCK = threading.Lock()


def flatten(values: np.ndarray, n: int, member: str) -> tuple[np.ndarray, np.ndarray]:
    """The first `n` rows' `member` vectors stacked (total, dim), and each row's element count."""
    key = (member, n)
    with _FLAT_LOCK:
        hit = _FLAT.get(id(values), {}).get(key)
    if hit is not None:
        return hit
    rows = values[:n]
    counts = np.fromiter((len(r) if r else 0 for r in rows), dtype=np.int64, count=n)
    vectors = [e[member] for r in rows if r for e in r]
    elems = np.asarray(vectors, dtype=np.float32) if vectors else np.zeros((0, 0), dtype=np.float32)
    with _FLAT_LOCK:
        if id(values) not in _FLAT:
            weakref.finalize(values, _forget, id(values))
        per = _FLAT.setdefault(id(values), {})
        for stale in [k for k in per if k[0] == member]:
            del per[stale]
        per[key] = (elems, counts)
    return elems, counts


def _forget(key: int) -> None:
    with _FLAT_LOCK:
        _FLAT.pop(key, None)


def max_sim_flat(
    queries: list[np.ndarray], elems: np.ndarray, counts: np.ndarray, metric: str
) -> tuple[np.ndarray, np.ndarray]:
    has = counts > 0
    scores = np.full((len(queries), len(counts)), np.nan, dtype=np.float32)
    if not has.any():
        return scores, has
    starts = np.concatenate(([0], np.cumsum(counts[has])[:-1]))
    if metric == "MAX_SIM_COSINE":
        elems = _unit(elems)
    sq = (elems.astype(np.float64) ** 2).sum(1) if metric == "MAX_SIM_L2" else None
    for qi, q in enumerate(queries):
        q = np.asarray(q, dtype=np.float32)
        if q.shape[1] != elems.shape[1]:
            raise invalid(f"the dim ({q.shape[1]}) of the embedding list does not match the field's dim ({elems.shape[1]})")
        if metric == "MAX_SIM_L2":
            assert sq is not None
            d = (q.astype(np.float64) ** 2).sum(1)[:, None] + sq[None, :] - 2.0 * (q @ elems.T).astype(np.float64)
            best = np.minimum.reduceat(np.maximum(d, 0.0), starts, axis=1)
        else:
            s = ((_unit(q) if metric == "MAX_SIM_COSINE" else q) @ elems.T).astype(np.float64)
            best = np.maximum.reduceat(s, starts, axis=1)
        scores[qi, has] = best.sum(0)
    return scores, has


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1.0, norms)


def top_rows(scores: np.ndarray, ok: np.ndarray, k: int, lower: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per query the best k rows among `ok`: (nq, k) scores and rows, padded with -1 rows."""
    nq = scores.shape[0]
    cand = np.flatnonzero(ok)
    out_s = np.full((nq, k), np.inf if lower else -np.inf, dtype=np.float32)
    out_r = np.full((nq, k), -1, dtype=np.int64)
    if not len(cand):
        return out_s, out_r
    for qi in range(nq):
        s = scores[qi, cand]
        order = np.argsort(s if lower else -s, kind="stable")[:k]
        out_s[qi, : len(order)] = s[order]
        out_r[qi, : len(order)] = cand[order]
    return out_s, out_r
