"""Brute-force search: growing and unindexed segments, FLAT-like fallbacks, ground truth.

`search_exact` scores every (allowed) row with the same conventions as the indexes:
L2 squared distance, IP, COSINE similarity, HAMMING bit count, JACCARD distance, sparse IP.
Dense rows are converted to float32 one chunk at a time, so float16/bfloat16/int8 columns
(also memory-mapped ones) are read in their stored precision.

`range_search_exact` and `ExactIndex` put the same brute force behind the `VectorIndex`
interface, so growing segments get Milvus range search too.

Neighbours: `vectors` (layouts, top-k), `binary` and `sparse` (their exact kernels),
`base` (the interface); `dense`/`diskann` use `dense_exact` for selective filters and
re-ranking.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from shoal.errors import invalid
from shoal.index.base import VectorIndex
from shoal.index.binary import binary_exact
from shoal.index.params import BINARY_METRICS, IndexSpec, check_topk
from shoal.index.sparse import SparseRows, sparse_exact
from shoal.index.vectors import (
    CHUNK_ROWS,
    allowed_rows,
    check_allowed,
    empty_results,
    merge_topk,
    normalize,
    sparse_rows,
    to_float32,
    topk_rows,
)
from shoal.schema import DataType

DENSE_EXACT_METRICS = ("L2", "IP", "COSINE")
# L2 top-k is chosen on `|q|^2 + |x|^2 - 2 q.x` (one matrix product), whose float32 rounding
# grows with the norms: a vector's distance to itself came out near 1e-6, and neighbours
# closer than that swapped places. The best k + L2_TIE_MARGIN candidates are therefore scored
# again from their differences, which is exact in float32, and the best k of those returned.
L2_TIE_MARGIN = 16
RESCORE_FLOATS = 1 << 22  # float32 values gathered at once while re-scoring (16 MB)


def l2_by_differences(base: np.ndarray, queries: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """Squared L2 (nq, m) of each float32 query to its own candidate rows of `base` (any stored
    layout), summed from differences; -1 candidates score +inf."""
    nq, m = cand.shape
    out = np.full((nq, m), np.inf, np.float32)
    if m == 0:
        return out
    step = max(1, RESCORE_FLOATS // (m * max(1, queries.shape[1])))
    for lo in range(0, nq, step):
        c = cand[lo : lo + step]
        block = to_float32(np.asarray(base[np.maximum(c, 0).ravel()])).reshape(len(c), m, -1)
        diff = block - queries[lo : lo + step, None, :]
        out[lo : lo + step] = np.where(c >= 0, np.einsum("qmd,qmd->qm", diff, diff), np.inf)
    return out


def rescore_l2(base: np.ndarray, queries: np.ndarray, cand: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The best `k` of each query's candidate rows by exact squared L2, sorted."""
    if cand.shape[1] == 0:
        return empty_results(len(cand), k, "L2")
    s, cols = topk_rows(l2_by_differences(base, queries, cand), k, "L2")
    rows = np.where(cols >= 0, np.take_along_axis(cand, np.maximum(cols, 0), axis=1), -1)
    s[rows < 0] = np.inf
    return s, rows


def dense_scores(block: np.ndarray, queries: np.ndarray, metric: str) -> np.ndarray:
    """Scores (nq, m) of float32 `queries` against one float32 block (COSINE: queries normalised).

    L2 here is the fast matrix-product form, good for choosing candidates; see `rescore_l2`."""
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
    want = min(k + L2_TIE_MARGIN, total) if metric == "L2" else k
    best = empty_results(len(queries), want, metric)
    for start in range(0, total, CHUNK_ROWS):
        stop = min(total, start + CHUNK_ROWS)
        ids = np.arange(start, stop) if rows is None else rows[start:stop]
        block = to_float32(np.asarray(base[start:stop] if rows is None else base[ids]))
        s, cols = topk_rows(dense_scores(block, queries, metric).astype(np.float32), want, metric)
        found = np.where(cols >= 0, ids[np.maximum(cols, 0)], -1)
        best = (s, found) if start == 0 else merge_topk(best, (s, found), want, metric)
    if metric == "L2":
        return rescore_l2(base, queries, best[1], k)
    return best


def search_exact(
    vectors: Any, queries: Any, k: int, metric_type: str, allowed: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force top-k in any column layout; scores (nq, k) float32 and rows (nq, k) int64."""
    return _exact(vectors, queries, check_topk(k), metric_type, allowed)


def range_search_exact(
    vectors: Any,
    queries: Any,
    radius: float,
    range_filter: float | None,
    metric_type: str,
    allowed: np.ndarray | None = None,
    limit: int = 10,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Brute-force Milvus range search (see `VectorIndex.range_search`): scores, rows, lims."""
    return ExactIndex(vectors, metric_type).range_search(queries, radius, range_filter, None, allowed, limit)


class ExactIndex(VectorIndex):
    """A column searched by brute force behind the VectorIndex interface (growing segments).

    Nothing is built or persisted; vectors are read in place (a SparseRows may be passed
    for sparse columns so that repeated searches skip the dict-to-CSR conversion).
    """

    family = "exact"

    def __init__(self, vectors: Any, metric_type: str) -> None:
        metric = metric_type.upper()
        if _is_sparse(vectors):
            self.vectors: Any = SparseRows.from_items(vectors)
            dtype, dim = DataType.SPARSE_FLOAT_VECTOR, 0
        else:
            self.vectors = np.asarray(vectors)
            if self.vectors.ndim != 2:
                raise invalid(f"vectors should be a 2-d array, got shape {self.vectors.shape}")
            dtype, dim = _dense_type(self.vectors.dtype, metric), self.vectors.shape[1]
            if dtype is DataType.BINARY_VECTOR:
                dim *= 8
        super().__init__(IndexSpec("FLAT", "FLAT", "FLAT (exact)", metric, dtype, dim), len(self.vectors))

    @property
    def memory_bytes(self) -> int:
        return 0

    def _prepare_queries(self, queries: Any) -> Any:
        if self.spec.dtype is DataType.SPARSE_FLOAT_VECTOR:
            return sparse_rows(queries)
        q = np.asarray(queries)
        return q.reshape(1, -1) if q.ndim == 1 else q

    def _search(
        self, queries: Any, k: int, params: dict[str, Any], allowed: np.ndarray | None, kept: int
    ) -> tuple[np.ndarray, np.ndarray]:
        return _exact(self.vectors, queries, k, self.spec.metric_type, allowed)

    def _save(self, directory: Path) -> dict[str, Any]:
        raise invalid("brute-force search keeps no index files")

    @classmethod
    def _load(
        cls, directory: Path, spec: IndexSpec, num_rows: int, extra: dict[str, Any], mmap: bool
    ) -> ExactIndex:
        raise invalid("brute-force search keeps no index files")


def _dense_type(dtype: np.dtype, metric: str) -> DataType:
    if metric in BINARY_METRICS:
        return DataType.BINARY_VECTOR
    return {
        np.dtype(np.float16): DataType.FLOAT16_VECTOR,
        np.dtype(np.uint16): DataType.BFLOAT16_VECTOR,
        np.dtype(np.int8): DataType.INT8_VECTOR,
    }.get(np.dtype(dtype), DataType.FLOAT_VECTOR)


def _exact(
    vectors: Any, queries: Any, k: int, metric_type: str, allowed: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    metric = metric_type.upper()
    if _is_sparse(vectors):
        if metric != "IP":
            raise invalid(f"metric type {metric_type} not supported for sparse vectors, supported: ['IP']")
        rows = SparseRows.from_items(vectors)
        return sparse_exact(rows, queries, k, check_allowed(allowed, len(rows)))
    base = np.asarray(vectors)
    if base.ndim != 2:
        raise invalid(f"vectors should be a 2-d array, got shape {base.shape}")
    mask = check_allowed(allowed, len(base))
    rows = None if mask is None else allowed_rows(mask)
    if metric in BINARY_METRICS:
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
    if isinstance(vectors, SparseRows):
        return True
    if isinstance(vectors, np.ndarray):
        return vectors.dtype == object
    return isinstance(vectors, list) and (not vectors or isinstance(vectors[0], dict))


__all__ = ["search_exact", "range_search_exact", "ExactIndex", "dense_exact", "dense_scores", "rescore_l2"]
