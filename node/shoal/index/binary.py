"""Binary vector indexes: BIN_FLAT and BIN_IVF_FLAT with HAMMING and JACCARD (and on BIN_FLAT
MHJACCARD, SUBSTRUCTURE and SUPERSTRUCTURE).

Vectors are packed bits (uint8, dim/8 bytes per row). HAMMING (bit count, ascending) goes
through faiss `IndexBinaryFlat` / `IndexBinaryIVF`; JACCARD (1 - |a&b| / |a|b|, ascending)
and filtered BIN_IVF_FLAT searches use the exact numpy popcount kernel `binary_exact`
over the raw codes, which are kept beside the index (memory-mapped after a reload).

Neighbours: `base` (VectorIndex contract), `vectors` (layouts, top-k); `exact` reuses
`binary_exact` for unindexed segments.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from shoal.index.base import VectorIndex, save_npy
from shoal.index.params import STRUCTURE_METRICS, IndexSpec, get_int
from shoal.index.vectors import allowed_rows, check_dense, empty_results, mask_invalid, merge_topk, topk_rows
from shoal.storage.npy import load_npy
from shoal.text.minhash import mh_jaccard

CODES_FILE = "codes.npy"
INDEX_FILE = "index.faiss"
DEFAULT_NPROBE = 8
MIN_TRAIN_ROWS = 256
EXACT_FRACTION = 0.02
XOR_BUDGET = 1 << 24  # bytes of XOR scratch per chunk


def _words(a: np.ndarray) -> np.ndarray:
    """Packed codes viewed as the widest unsigned words that tile a row."""
    width = a.shape[1]
    for size, dtype in ((8, np.uint64), (4, np.uint32)):
        if width % size == 0:
            return np.ascontiguousarray(a).view(dtype)
    return a


def binary_scores(block: np.ndarray, queries: np.ndarray, metric: str) -> np.ndarray:
    """HAMMING counts or JACCARD distances (nq, m) of packed `queries` against `block`."""
    if metric == "MHJACCARD":
        return mh_jaccard(queries, block)
    qw, bw = _words(queries), _words(block)
    if metric in STRUCTURE_METRICS:
        # Milvus's structure metrics are a match or not: 0 when the query's bits all lie in the
        # row (SUBSTRUCTURE) or the row's bits all lie in the query (SUPERSTRUCTURE), else none
        both = qw[:, None, :] & bw[None, :, :]
        inside = qw[:, None, :] if metric == "SUBSTRUCTURE" else np.broadcast_to(bw[None, :, :], both.shape)
        return np.where((both == inside).all(axis=2), np.float32(0), np.float32(np.inf))
    diff = np.bitwise_count(qw[:, None, :] ^ bw[None, :, :]).sum(axis=2, dtype=np.int64)
    if metric == "HAMMING":
        return diff.astype(np.float32)
    union = np.bitwise_count(qw[:, None, :] | bw[None, :, :]).sum(axis=2, dtype=np.int64)
    out = np.zeros(diff.shape, np.float32)
    nz = union > 0
    out[nz] = diff[nz] / union[nz]  # |a^b| / |a|b| = 1 - |a&b| / |a|b|
    return out


def binary_exact(
    base: np.ndarray, queries: np.ndarray, k: int, metric: str, rows: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k over packed binary rows (optionally only `rows`)."""
    total = len(base) if rows is None else len(rows)
    best = empty_results(len(queries), k, metric)
    step = max(1, XOR_BUDGET // max(1, len(queries) * base.shape[1]))
    for start in range(0, total, step):
        stop = min(total, start + step)
        ids = np.arange(start, stop) if rows is None else rows[start:stop]
        block = np.asarray(base[start:stop] if rows is None else base[ids])
        s, cols = topk_rows(binary_scores(block, queries, metric), k, metric)
        found = np.where((cols >= 0) & np.isfinite(s), ids[np.maximum(cols, 0)], -1)
        best = (s, found) if start == 0 else merge_topk(best, (s, found), k, metric)
    return best


class BinaryIndex(VectorIndex):
    """BIN_FLAT / BIN_IVF_FLAT over packed binary vectors."""

    family = "binary"

    def __init__(self, spec: IndexSpec, codes: np.ndarray, index: Any | None, eff: dict[str, Any]) -> None:
        super().__init__(spec, len(codes))
        self.codes = codes
        self.index = index
        self.eff = eff

    @classmethod
    def build(
        cls, spec: IndexSpec, vectors: Any, progress: Callable[[float], None] | None = None
    ) -> BinaryIndex:
        report = progress or (lambda _f: None)
        report(0.0)
        codes = np.ascontiguousarray(check_dense(vectors, spec.dtype, spec.dim // 8))
        n = len(codes)
        eff: dict[str, Any] = {}
        index = None
        if spec.metric_type == "HAMMING":
            if spec.kind == "BIN_IVF_FLAT" and n >= MIN_TRAIN_ROWS:
                nlist = max(1, min(int(spec.build["nlist"]), n))
                eff["nlist"] = nlist
                index = faiss.IndexBinaryIVF(faiss.IndexBinaryFlat(spec.dim), spec.dim, nlist)
                index.cp.min_points_per_centroid = 1  # small segments train fine; no warning spam
                index.train(codes)
            else:
                index = faiss.IndexBinaryFlat(spec.dim)
            report(0.3)
            if n:
                index.add(codes)
        report(1.0)
        return cls(spec, codes, index, eff)

    def _prepare_queries(self, queries: Any) -> np.ndarray:
        return np.ascontiguousarray(check_dense(queries, self.spec.dtype, self.spec.dim // 8, "queries"))

    def _check_search_params(self, params: dict[str, Any], k: int) -> None:
        get_int(params, "nprobe", DEFAULT_NPROBE, 1, 65536)

    def _search(
        self, q: np.ndarray, k: int, params: dict[str, Any], allowed: np.ndarray | None, kept: int
    ) -> tuple[np.ndarray, np.ndarray]:
        metric = self.spec.metric_type
        rows = None if allowed is None else allowed_rows(allowed)
        if self.index is None:
            return binary_exact(self.codes, q, k, metric, rows)
        if isinstance(self.index, faiss.IndexBinaryIVF):
            if rows is not None:  # faiss binary IVF takes no selector
                return binary_exact(self.codes, q, k, metric, rows)
            nprobe = min(int(get_int(params, "nprobe", DEFAULT_NPROBE, 1, 65536) or 1), self.index.nlist)
            dist, labels = self.index.search(q, k, params=faiss.SearchParametersIVF(nprobe=nprobe))
        elif rows is not None and len(rows) <= EXACT_FRACTION * self.num_rows:
            return binary_exact(self.codes, q, k, metric, rows)
        elif rows is not None:
            bitmap = np.packbits(allowed, bitorder="little")
            sel = faiss.IDSelectorBitmap(bitmap)  # `bitmap` and `sel` must outlive the search
            dist, labels = self.index.search(q, k, params=faiss.SearchParameters(sel=sel))
        else:
            dist, labels = self.index.search(q, k)
        return mask_invalid(dist.astype(np.float32), labels, metric)

    @property
    def memory_bytes(self) -> int:
        own = 0 if isinstance(self.codes, np.memmap) else self.codes.nbytes
        if self.index is None:
            return own
        return own + int(self.index.ntotal) * (self.index.code_size + (8 if self.eff.get("nlist") else 0))

    def _save(self, directory: Path) -> dict[str, Any]:
        save_npy(directory / CODES_FILE, self.codes)
        if self.index is not None:
            tmp = directory / (INDEX_FILE + ".tmp")
            faiss.write_index_binary(self.index, str(tmp))
            tmp.replace(directory / INDEX_FILE)
        return {"eff": self.eff, "has_index": self.index is not None}

    @classmethod
    def _load(
        cls, directory: Path, spec: IndexSpec, num_rows: int, extra: dict[str, Any], mmap: bool
    ) -> BinaryIndex:
        codes = load_npy(directory / CODES_FILE, mmap_mode="r" if mmap else None)
        index = faiss.read_index_binary(str(directory / INDEX_FILE)) if extra.get("has_index") else None
        return cls(spec, codes, index, dict(extra.get("eff", {})))
