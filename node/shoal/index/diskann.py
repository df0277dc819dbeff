"""DISKANN: a graph over compressed PQ codes in memory, full vectors on disk for re-ranking.

Like Milvus's DiskANN, only the compressed codes and the graph stay in memory (a faiss
HNSW graph over PQ codes, out-degree from `max_degree`); the full-precision vectors are the
saved `raw.npy`, memory-mapped after a reload. A search walks the graph for
`search_list` candidates, then re-ranks them exactly against the raw vectors.

Neighbours: extends `dense.DenseIndex` (filters, persistence of the faiss part);
`exact` for the re-ranking kernel.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from shoal.errors import invalid
from shoal.index.base import save_npy
from shoal.index.dense import (
    INDEX_FILE,
    MIN_TRAIN_ROWS,
    DenseIndex,
    fill,
    flat_storage,
    hnsw_over_pq,
    read_faiss,
    write_faiss,
)
from shoal.index.exact import dense_exact, dense_scores, rescore_l2
from shoal.index.params import INT32_MAX, IndexSpec, get_int
from shoal.index.vectors import check_dense, mask_invalid, to_float32, topk_rows
from shoal.storage.npy import load_npy

RAW_FILE = "raw.npy"
DEFAULT_SEARCH_LIST = 32


class DiskAnnIndex(DenseIndex):
    family = "diskann"

    def __init__(self, spec: IndexSpec, index: Any, raw: np.ndarray, eff: dict[str, Any]) -> None:
        self.raw = raw
        super().__init__(spec, index, len(raw), eff)

    @classmethod
    def build(
        cls, spec: IndexSpec, vectors: Any, progress: Callable[[float], None] | None = None
    ) -> DiskAnnIndex:
        raw = check_dense(vectors, spec.dtype, spec.dim)
        n = len(raw)
        links = max(2, min(256, int(spec.build["max_degree"]) // 2))
        nbits = max(1, min(8, int(np.log2(max(n, 2)))))
        ef_construction = int(spec.build["search_list_size"])
        if n < MIN_TRAIN_ROWS:
            # Too few rows for PQ codebooks: a tiny segment keeps exact codes (and is exact).
            index = flat_storage(spec)
            fill(index, raw, spec.metric_type == "COSINE", progress)
        else:
            index = hnsw_over_pq(spec, raw, links, ef_construction, int(spec.build["pq_m"]), nbits, progress)
        return cls(spec, index, raw, {"nbits": nbits, "M": links})

    def _depth(self, params: dict[str, Any], k: int) -> int:
        search_list = get_int(params, "search_list", max(k, DEFAULT_SEARCH_LIST), 1, INT32_MAX)
        assert search_list is not None
        if search_list < k:
            raise invalid(f"search_list({search_list}) should be larger than k({k})")
        return search_list

    def _search(
        self, q: np.ndarray, k: int, params: dict[str, Any], allowed: np.ndarray | None, kept: int
    ) -> tuple[np.ndarray, np.ndarray]:
        _, cand = DenseIndex._search(self, q, self._depth(params, k), params, allowed, kept)
        return self._rerank(q, cand, k)

    def _rerank(self, q: np.ndarray, cand: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact scores of each query's candidates against the raw vectors, best k."""
        metric = "IP" if self._cosine else self.spec.metric_type
        if metric == "L2":
            return mask_invalid(*rescore_l2(self.raw, q, cand, k), metric)
        out_s = np.empty((len(q), k), np.float32)
        out_r = np.empty((len(q), k), np.int64)
        for i in range(len(q)):
            ids = cand[i][cand[i] >= 0]
            ids = np.sort(ids)
            block = to_float32(np.asarray(self.raw[ids]))
            if self._cosine:
                norms = np.linalg.norm(block, axis=1, keepdims=True)
                norms[norms == 0] = 1.0
                block = block / norms
            s, cols = topk_rows(dense_scores(block, q[i : i + 1], metric).astype(np.float32), k, metric)
            out_s[i], out_r[i] = s[0], np.where(cols[0] >= 0, ids[np.maximum(cols[0], 0)], -1)
        return mask_invalid(out_s, out_r, self.spec.metric_type)

    def _exact_rows(self, q: np.ndarray, k: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return dense_exact(self.raw, q, k, self.spec.metric_type, rows)

    @property
    def memory_bytes(self) -> int:
        raw = 0 if isinstance(self.raw, np.memmap) else self.raw.nbytes
        return super().memory_bytes + raw

    def _save(self, directory: Path) -> dict[str, Any]:
        write_faiss(self.index, directory / INDEX_FILE)
        save_npy(directory / RAW_FILE, self.raw)
        self.raw = load_npy(directory / RAW_FILE, mmap_mode="r")  # from now on served from disk
        return {"eff": self.eff}

    @classmethod
    def _load(
        cls, directory: Path, spec: IndexSpec, num_rows: int, extra: dict[str, Any], mmap: bool
    ) -> DiskAnnIndex:
        raw = load_npy(directory / RAW_FILE, mmap_mode="r" if mmap else None)
        return cls(spec, read_faiss(directory / INDEX_FILE, mmap), raw, dict(extra.get("eff", {})))
