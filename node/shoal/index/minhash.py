"""MINHASH_LSH: locality-sensitive hashing over MinHash signatures (metric MHJACCARD).

A signature of H 32-bit minima is cut into `mh_lsh_band` bands of r = H // band minima
(a remainder is left out of the banding); each band's minima hash to one 64-bit key. Rows
whose key equals the query's in at least one band are the candidates (probability
1 - (1 - J^r)^band for Jaccard J), and the candidates are ranked by MHJACCARD (the
fraction of equal minima, 1.0 = the same signature) over the raw signatures, which are
kept beside the band tables (`with_raw_data` is accepted; the signatures are always kept).
Fewer than k candidates give fewer than k hits, as LSH does.

Neighbours: `base` (VectorIndex contract), `text.minhash` (MHJACCARD kernel), `vectors`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from shoal.errors import invalid
from shoal.index.base import VectorIndex, save_npy
from shoal.index.params import IndexSpec, get_bool, get_int
from shoal.index.vectors import check_dense, empty_results, topk_rows
from shoal.storage.npy import load_npy
from shoal.text.minhash import mh_jaccard

CODES_FILE = "codes.npy"
_MIX = np.random.default_rng(0x5EED).integers(1, 1 << 63, 4096, dtype=np.uint64) * np.uint64(2) + np.uint64(1)


def band_keys(codes: np.ndarray, bands: int) -> np.ndarray:
    """(bands, n) uint64 keys of the bands of packed signatures `codes` (n, 4 * H)."""
    words = np.ascontiguousarray(codes).view("<u4").astype(np.uint64)
    r = words.shape[1] // bands
    keys = np.zeros((bands, len(words)), np.uint64)
    with np.errstate(over="ignore"):
        for band in range(bands):
            acc = np.full(len(words), np.uint64(band + 1))
            for j in range(r):
                acc = acc * _MIX[j % len(_MIX)] + words[:, band * r + j]
                acc ^= acc >> np.uint64(29)
            keys[band] = acc
    return keys


class MinHashLSHIndex(VectorIndex):
    """MINHASH_LSH over MinHash signatures (BINARY_VECTOR of dim 32 * num_hashes)."""

    family = "minhash"

    def __init__(self, spec: IndexSpec, codes: np.ndarray) -> None:
        super().__init__(spec, len(codes))
        self.codes = codes
        hashes = spec.dim // 32
        self.bands = max(1, min(int(spec.build.get("mh_lsh_band") or 1), hashes))
        keys = band_keys(codes, self.bands)
        self.order = np.argsort(keys, axis=1, kind="stable")
        self.sorted_keys = np.take_along_axis(keys, self.order, axis=1)

    @classmethod
    def build(
        cls, spec: IndexSpec, vectors: Any, progress: Callable[[float], None] | None = None
    ) -> MinHashLSHIndex:
        report = progress or (lambda _f: None)
        report(0.0)
        codes = np.ascontiguousarray(check_dense(vectors, spec.dtype, spec.dim // 8))
        index = cls(spec, codes)
        report(1.0)
        return index

    def _prepare_queries(self, queries: Any) -> np.ndarray:
        return np.ascontiguousarray(check_dense(queries, self.spec.dtype, self.spec.dim // 8, "queries"))

    def _check_search_params(self, params: dict[str, Any], k: int) -> None:
        get_bool(params, "mh_search_with_jaccard", False)
        get_int(params, "refine_k", None, 1, 1 << 31)

    def candidates(self, query: np.ndarray) -> np.ndarray:
        """Rows sharing at least one band key with `query` (one packed signature)."""
        keys = band_keys(query.reshape(1, -1), self.bands)[:, 0]
        found = []
        for band, key in enumerate(keys):
            row = self.sorted_keys[band]
            lo, hi = np.searchsorted(row, key, "left"), np.searchsorted(row, key, "right")
            if hi > lo:
                found.append(self.order[band, lo:hi])
        return np.unique(np.concatenate(found)) if found else np.zeros(0, np.int64)

    def _search(
        self, q: np.ndarray, k: int, params: dict[str, Any], allowed: np.ndarray | None, kept: int
    ) -> tuple[np.ndarray, np.ndarray]:
        metric = self.spec.metric_type
        out_s, out_r = empty_results(len(q), k, metric)
        for i, query in enumerate(q):
            rows = self.candidates(query)
            if allowed is not None and len(rows):
                rows = rows[allowed[rows]]
            if not len(rows):
                continue
            s, cols = topk_rows(mh_jaccard(query.reshape(1, -1), np.asarray(self.codes[rows])), k, metric)
            out_s[i], out_r[i] = s[0], np.where(cols[0] >= 0, rows[np.maximum(cols[0], 0)], -1)
        return out_s, out_r

    def range_search(self, *args: Any, **kwargs: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise invalid("MINHASH_LSH does not support range search")

    @property
    def memory_bytes(self) -> int:
        own = 0 if isinstance(self.codes, np.memmap) else self.codes.nbytes
        return own + self.sorted_keys.nbytes + self.order.nbytes

    def _save(self, directory: Path) -> dict[str, Any]:
        save_npy(directory / CODES_FILE, self.codes)
        return {}

    @classmethod
    def _load(
        cls, directory: Path, spec: IndexSpec, num_rows: int, extra: dict[str, Any], mmap: bool
    ) -> MinHashLSHIndex:
        return cls(spec, load_npy(directory / CODES_FILE, mmap_mode="r" if mmap else None))
