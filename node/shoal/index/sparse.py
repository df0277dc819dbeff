"""Sparse float vectors: SPARSE_INVERTED_INDEX / SPARSE_WAND (metric IP) and exact search.

Rows are kept as CSR arrays (`SparseRows`); the index adds the inverted view (per
dimension: posting rows and values). A query sums the posting lists of its own dimensions,
so cost follows the postings touched, not the segment size. Only rows sharing at least one
dimension with the query are hits (their IP is > 0 for positive values). SPARSE_WAND
answers identically (WAND is a pruning strategy, not a different result).
`drop_ratio_build` drops each row's smallest values at build; `drop_ratio_search` the
query's smallest values at search.

BM25 (metric BM25, rows are term counts from a BM25 function): a search carries
`params["_bm25"]` = `Bm25Context` (k1, b and the collection-wide average document length);
query values are the terms' idf times their count, and a row's value of a term becomes
tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avgdl)), len being the row's term count.

Neighbours: `base` (VectorIndex contract), `vectors` (CSR conversion, top-k); `exact`
calls `sparse_exact` for unindexed segments.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shoal.errors import invalid
from shoal.index.base import VectorIndex, save_npy
from shoal.index.params import IndexSpec, get_float
from shoal.index.vectors import check_allowed, empty_results, sparse_rows, to_csr
from shoal.storage.npy import load_npy

BM25_KEY = "_bm25"


@dataclass(frozen=True)
class Bm25Context:
    """The collection-wide part of BM25 scoring, the same for every segment of one search."""

    k1: float
    b: float
    avgdl: float


def bm25_values(tf: np.ndarray, doc_len: np.ndarray, ctx: Bm25Context) -> np.ndarray:
    """Each posting's BM25 term weight (before the query's idf)."""
    norm = ctx.k1 * (1.0 - ctx.b + ctx.b * doc_len / max(ctx.avgdl, 1e-9))
    return tf * (ctx.k1 + 1.0) / (tf + norm)


FILES = ("indptr", "indices", "values", "terms", "term_ptr", "post_rows", "post_vals")


@dataclass
class SparseRows:
    """CSR layout of n sparse rows: row i is indices/values[indptr[i]:indptr[i+1]]."""

    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray

    @classmethod
    def from_items(cls, items: Any) -> SparseRows:
        if isinstance(items, SparseRows):
            return items
        return cls(*to_csr(sparse_rows(list(items))))

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def row_ids(self) -> np.ndarray:
        return np.repeat(np.arange(len(self), dtype=np.int64), np.diff(self.indptr))

    def doc_lengths(self) -> np.ndarray:
        """Each row's sum of values: its token count when the rows are BM25 term counts."""
        return np.bincount(self.row_ids(), weights=self.values, minlength=len(self)).astype(np.float64)


def drop_smallest(rows: SparseRows, ratio: float) -> SparseRows:
    """Drop the `ratio` smallest-magnitude values of every row."""
    if ratio <= 0 or len(rows.values) == 0:
        return rows
    row_of = rows.row_ids()
    order = np.lexsort((np.abs(rows.values), row_of))  # by row, then magnitude ascending
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order)) - rows.indptr[row_of[order]]
    lengths = np.diff(rows.indptr)
    keep = rank >= np.floor(lengths[row_of] * ratio).astype(np.int64)
    counts = np.bincount(row_of[keep], minlength=len(rows))
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return SparseRows(indptr, rows.indices[keep], rows.values[keep])


def _query_terms(query: Mapping[int, float], drop_ratio: float) -> tuple[np.ndarray, np.ndarray]:
    q = SparseRows.from_items([query])
    if drop_ratio > 0 and len(q.values):
        q = drop_smallest(q, drop_ratio)
    return q.indices, q.values


def _top(cands: np.ndarray, sums: np.ndarray, k: int, out_s: np.ndarray, out_r: np.ndarray, i: int) -> None:
    if len(cands) > k:
        part = np.argpartition(-sums, k - 1)[:k]
        cands, sums = cands[part], sums[part]
    order = np.lexsort((cands, -sums))
    out_r[i, : len(order)] = cands[order]
    out_s[i, : len(order)] = sums[order]


def sparse_exact(
    vectors: Any,
    queries: Any,
    k: int,
    allowed: np.ndarray | None = None,
    drop_ratio: float = 0.0,
    bm25: Bm25Context | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact sparse IP top-k by a scan of the CSR rows (no inverted index needed)."""
    rows = SparseRows.from_items(vectors)
    items = sparse_rows(queries)
    out_s, out_r = empty_results(len(items), k, "IP")
    mask = check_allowed(allowed, len(rows))
    row_of = rows.row_ids()
    values = rows.values
    if bm25 is not None:
        values = bm25_values(values, rows.doc_lengths()[row_of], bm25)
    for i, query in enumerate(items):
        terms, weights = _query_terms(query, drop_ratio)
        if len(terms) == 0 or len(rows.indices) == 0:
            continue
        pos = np.minimum(np.searchsorted(terms, rows.indices), len(terms) - 1)
        hit = terms[pos] == rows.indices
        if mask is not None:
            hit &= mask[row_of]
        if not hit.any():
            continue
        touched, inverse = np.unique(row_of[hit], return_inverse=True)
        sums = np.bincount(inverse, weights=values[hit] * weights[pos[hit]]).astype(np.float32)
        _top(touched, sums, k, out_s, out_r, i)
    return out_s, out_r


class SparseIndex(VectorIndex):
    """SPARSE_INVERTED_INDEX / SPARSE_WAND: posting lists per dimension over CSR rows."""

    family = "sparse"

    def __init__(self, spec: IndexSpec, arrays: dict[str, np.ndarray]) -> None:
        super().__init__(spec, len(arrays["indptr"]) - 1)
        self.arrays = arrays
        self._doc_len: np.ndarray | None = None

    def doc_lengths(self) -> np.ndarray:
        """Per row, its token count (BM25 rows are term counts); computed once."""
        if self._doc_len is None:
            a = self.arrays
            self._doc_len = SparseRows(np.asarray(a["indptr"]), np.asarray(a["indices"]), np.asarray(a["values"])).doc_lengths()
        return self._doc_len

    def term_stats(self, terms: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """How many rows (of `rows`, a mask; None = all) hold each of `terms` (BM25 document frequencies)."""
        a = self.arrays
        if not len(a["terms"]):
            return np.zeros(len(terms), np.int64)
        pos = np.searchsorted(a["terms"], terms)
        pos_ok = np.minimum(pos, len(a["terms"]) - 1)
        found = (pos < len(a["terms"])) & (a["terms"][pos_ok] == terms)
        lo, hi = a["term_ptr"][pos_ok], a["term_ptr"][pos_ok + 1]
        if rows is None:
            return np.where(found, hi - lo, 0)
        return np.array(
            [int(np.count_nonzero(rows[a["post_rows"][b:e]])) if ok else 0 for ok, b, e in zip(found, lo, hi, strict=True)],
            dtype=np.int64,
        )

    @classmethod
    def build(
        cls, spec: IndexSpec, vectors: Any, progress: Callable[[float], None] | None = None
    ) -> SparseIndex:
        report = progress or (lambda _f: None)
        report(0.0)
        rows = drop_smallest(SparseRows.from_items(vectors), float(spec.build.get("drop_ratio_build", 0.0)))
        report(0.5)
        order = np.argsort(rows.indices, kind="stable")
        sorted_terms = rows.indices[order]
        terms, starts = np.unique(sorted_terms, return_index=True)
        term_ptr = np.append(starts, len(sorted_terms)).astype(np.int64)
        arrays = {
            "indptr": rows.indptr,
            "indices": rows.indices,
            "values": rows.values,
            "terms": terms.astype(np.uint32),
            "term_ptr": term_ptr,
            "post_rows": rows.row_ids()[order].astype(np.int32 if len(rows) < 2**31 else np.int64),
            "post_vals": rows.values[order],
        }
        report(1.0)
        return cls(spec, arrays)

    def _prepare_queries(self, queries: Any) -> list[Mapping[int, float]]:
        items = sparse_rows(queries)
        for item in items:
            if any(float(v) < 0 for v in item.values()):
                raise invalid("sparse query values should be non-negative")
        return items

    def _check_search_params(self, params: dict[str, Any], k: int) -> None:
        get_float(params, "drop_ratio_search", 0.0, 0.0, 1.0, hi_open=True)

    def _search(
        self, queries: list[Mapping[int, float]], k: int, params: dict[str, Any], allowed: np.ndarray | None,
        kept: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        drop = float(get_float(params, "drop_ratio_search", 0.0, 0.0, 1.0, hi_open=True) or 0.0)
        a = self.arrays
        bm25: Bm25Context | None = params.get(BM25_KEY)
        doc_len = self.doc_lengths() if bm25 is not None else None
        out_s, out_r = empty_results(len(queries), k, "IP")
        for i, query in enumerate(queries):
            q_terms, q_weights = _query_terms(query, drop)
            pos = np.searchsorted(a["terms"], q_terms)
            pos_ok = np.minimum(pos, max(len(a["terms"]) - 1, 0))
            found = (pos < len(a["terms"])) & (a["terms"][pos_ok] == q_terms) if len(a["terms"]) else pos < 0
            if not found.any():
                continue
            lo, hi = a["term_ptr"][pos[found]], a["term_ptr"][pos[found] + 1]
            spans = [slice(s, e) for s, e in zip(lo, hi, strict=True)]
            post_rows = np.concatenate([a["post_rows"][sp] for sp in spans])
            if doc_len is not None:
                contrib = np.concatenate(
                    [
                        bm25_values(a["post_vals"][sp], doc_len[a["post_rows"][sp]], bm25) * w  # type: ignore[arg-type]
                        for sp, w in zip(spans, q_weights[found], strict=True)
                    ]
                )
            else:
                contrib = np.concatenate(
                    [a["post_vals"][sp] * w for sp, w in zip(spans, q_weights[found], strict=True)]
                )
            if allowed is not None:
                ok = allowed[post_rows]
                post_rows, contrib = post_rows[ok], contrib[ok]
            if len(post_rows) == 0:
                continue
            touched, inverse = np.unique(post_rows, return_inverse=True)
            sums = np.bincount(inverse, weights=contrib).astype(np.float32)
            _top(touched.astype(np.int64), sums, k, out_s, out_r, i)
        return out_s, out_r

    @property
    def memory_bytes(self) -> int:
        return sum(0 if isinstance(v, np.memmap) else v.nbytes for v in self.arrays.values())

    def _save(self, directory: Path) -> dict[str, Any]:
        for name in FILES:
            save_npy(directory / f"sparse_{name}.npy", self.arrays[name])
        return {}

    @classmethod
    def _load(
        cls, directory: Path, spec: IndexSpec, num_rows: int, extra: dict[str, Any], mmap: bool
    ) -> SparseIndex:
        mode = "r" if mmap else None
        return cls(spec, {name: load_npy(directory / f"sparse_{name}.npy", mmap_mode=mode) for name in FILES})
