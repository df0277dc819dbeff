"""Brute-force search: growing and unindexed segments, FLAT-like fallbacks, ground truth.

`search_exact` scores every (allowed) row with the same conventions as the indexes:
L2 squared distance, IP, COSINE similarity, HAMMING bit count, JACCARD distance, sparse IP.
Dense rows are converted to float32 one chunk at a time, so float16/bfloat16/int8 columns
(also memory-mapped ones) are read in their stored precision.

Neighbours: `vectors` (layouts, top-k), `binary` and `sparse` (their exact kernels);
`dense` uses `dense_exact` for selective filters and refinement.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shoal.errors import invalid
from shoal.index.binary import binary_exact
from shoal.index.params import check_topk
from shoal.index.sparse import sparse_exact
from shoal.index.vectors import (
    CHUNK_ROWS,
    check_allowed,
    descending,
    empty_results,
    merge_topk,
    normalize,
    to_float32,
    topk_rows,
)

DENSE_EXACT_METRICS = ("L2", "IP", "COSINE")


def dense_scores(block: np.ndarray, queries: np.ndarray, metric: str) -> np.ndarray:
    """Scores (nq, m) of float32 `queries` against one float32 block (COSINE: queries normalised)."""
    dots = queries @ block.T
    if metric == "IP":
        return dots
    if metric == "COSINE":
        norms = np.linalg.norm(block, axis=1)
        norms[norms == 0] = 1.0
        return dots / norms
    q2 = np.einsum("ij,ij->i", queries, queries)[:, None]
    x2 = np.einsum("ij,ij->i", block, block)[None, :]
    return np.maximum(q2 + x2 - 2.0 * dots, 0.0)


def dense_exact(
    base: np.ndarray, queries: np.ndarray, k: int, metric: str, rows: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of float32 `queries` over `base` (stored layout), optionally only `rows`."""
    if metric == "COSINE":
        queries = normalize(queries)
    total = len(base) if rows is None else len(rows)
    best = empty_results(len(queries), k, metric)
    for start in range(0, total, CHUNK_ROWS):
        stop = min(total, start + CHUNK_ROWS)
        ids = np.arange(start, stop) if rows is None else rows[start:stop]
        block = to_float32(np.asarray(base[start:stop] if rows is None else base[ids]))
        s, cols = topk_rows(dense_scores(block, queries, metric).astype(np.float32), k, metric)
        found = np.where(cols >= 0, ids[np.maximum(cols, 0)], -1)
        best = (s, found) if start == 0 else merge_topk(best, (s, found), k, metric)
    return best


def search_exact(
    vectors: Any, queries: Any, k: int, metric_type: str, allowed: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force top-k in any column layout; scores (nq, k) float32 and rows (nq, k) int64."""
    k = check_topk(k)
    metric = metric_type.upper()
    if _is_sparse(vectors):
        if metric != "IP":
            raise invalid(f"metric type {metric_type} not supported for sparse vectors, supported: ['IP']")
        n = len(vectors)
        return sparse_exact(vectors, queries, k, check_allowed(allowed, n))
    base = np.asarray(vectors)
    if base.ndim != 2:
        raise invalid(f"vectors should be a 2-d array, got shape {base.shape}")
    mask = check_allowed(allowed, len(base))
    rows = None if mask is None else np.flatnonzero(mask)
    if metric in ("HAMMING", "JACCARD"):
        q = np.asarray(queries, dtype=np.uint8)
        q = q.reshape(1, -1) if q.ndim == 1 else q
        if base.dtype != np.uint8 or q.shape[1:] != base.shape[1:]:
            raise invalid(f"binary vectors and queries should be uint8 of width {base.shape[1]}")
        return binary_exact(base, q, k, metric, rows)
    if metric not in DENSE_EXACT_METRICS:
        raise invalid(f"metric type {metric_type} not supported for dense vectors")
    q = np.asarray(queries)
    if q.dtype == np.uint16 and base.dtype == np.uint16:
        q = to_float32(q)
    q = q.reshape(1, -1) if q.ndim == 1 else q
    if q.ndim != 2 or q.shape[1] != base.shape[1]:
        raise invalid(f"query vectors should have dim {base.shape[1]}, got shape {q.shape}")
    return dense_exact(base, np.ascontiguousarray(q, dtype=np.float32), k, metric, rows)


def _is_sparse(vectors: Any) -> bool:
    if isinstance(vectors, np.ndarray):
        return vectors.dtype == object
    return isinstance(vectors, list) and (not vectors or isinstance(vectors[0], dict))


__all__ = ["search_exact", "dense_exact", "dense_scores", "descending"]
