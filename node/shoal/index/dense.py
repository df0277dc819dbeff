"""Dense float/int8 vector indexes on faiss: FLAT, IVF_*, HNSW*, SCANN and the GPU_* types.

Maps each Milvus index kind onto a faiss index, keeping float16/bfloat16/int8 vectors in
their own precision (faiss scalar-quantizer codes QT_fp16 / QT_bf16 /
QT_8bit_direct_signed) instead of a float32 copy. COSINE is inner product over vectors
normalised at build and at query time. Filters are pushed into faiss as an
`IDSelectorBitmap`; when very few rows are allowed the allowed rows are decoded from the
index and searched exactly, so a selective filter never loses recall.

Neighbours: `params` (spec, search-param parsing), `vectors`/`exact` (layouts, exact
kernels), `gpu` (GPU builds), `base` (the VectorIndex contract); `diskann` extends this.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from shoal.errors import invalid
from shoal.index.base import VectorIndex
from shoal.index.exact import dense_exact
from shoal.index.gpu import gpu_available, train_and_add_on_gpu
from shoal.index.params import INT32_MAX, IndexSpec, get_float, get_int
from shoal.index.vectors import (
    CHUNK_ROWS,
    allowed_rows,
    check_dense,
    check_queries,
    mask_invalid,
    normalize,
    to_float32,
    worst_score,
)
from shoal.schema import DataType

Progress = Callable[[float], None]

DEFAULT_NPROBE = 8
DEFAULT_REORDER = 4  # SCANN re-ranks reorder_k = 4 * k candidates unless told otherwise
DEFAULT_REFINE_K = 2.0
DEFAULT_EF = 64  # HNSW ef when the search names none (at least k)
# Rows sampled to train quantizers: faiss k-means uses at most 256 points per centroid,
# so this covers an 8-bit PQ codebook and IVF up to nlist 256 fully.
TRAIN_ROWS = 65_536
# PRQ codebooks are trained per split and per residual step, each a k-means then an encoding
# pass over the sample: a smaller sample keeps a build at seconds, with 2**nbits centroids still
# seeing 16+ points each at the default nbits.
PRQ_TRAIN_ROWS = 4096
MIN_TRAIN_ROWS = 256  # fewer rows than this: trained index types fall back to exact codes
# Filters at most this selective are answered by an exact scan of the allowed rows (the reader
# also scores segments whose filter keeps at most EXACT_ROWS rows from the stored vectors).
EXACT_FRACTION = 0.02
EXACT_ROWS = 4096
# A filtered IVF search probes nprobe * log2(1 / share of rows kept) lists, at most this many
# times nprobe: the rarer the kept rows, the further out the nearest of them sit, but they still
# sit in the nearer lists, and probing every list to find them costs a full scan.
IVF_FILTER_PROBE_FACTOR = 8
# A filter keeping at least this share of rows is applied after an unfiltered search for
# POSTFILTER_OVERFETCH * k / share hits. That costs less than the selector search (faiss checks
# the selector at every scanned row, and the selector search must look deeper: ef / share,
# nprobe * log2(1 / share)), and for a filter unrelated to the vectors the top-k kept rows are
# almost surely among those hits; queries where they are not are scored exactly.
POSTFILTER_SHARE = 0.05
POSTFILTER_OVERFETCH = 2.0
INDEX_FILE = "index.faiss"

SQ_QTYPES = {
    "SQ4U": faiss.ScalarQuantizer.QT_4bit_uniform,
    "SQ6": faiss.ScalarQuantizer.QT_6bit,
    "SQ8": faiss.ScalarQuantizer.QT_8bit,
    "BF16": faiss.ScalarQuantizer.QT_bf16,
    "FP16": faiss.ScalarQuantizer.QT_fp16,
}
NATIVE_QTYPES = {
    DataType.FLOAT16_VECTOR: faiss.ScalarQuantizer.QT_fp16,
    DataType.BFLOAT16_VECTOR: faiss.ScalarQuantizer.QT_bf16,
    DataType.INT8_VECTOR: faiss.ScalarQuantizer.QT_8bit_direct_signed,
}


def faiss_metric(metric: str) -> int:
    """COSINE runs as L2 over unit vectors: the same order, and quantizers fit L2 better."""
    return faiss.METRIC_INNER_PRODUCT if metric == "IP" else faiss.METRIC_L2


def cosine_from_l2(scores: np.ndarray) -> np.ndarray:
    """Cosine similarity of unit vectors from their squared L2 distance."""
    return (1.0 - scores / 2.0).astype(np.float32)


def native_qtype(spec: IndexSpec) -> int | None:
    """The SQ type that stores this field's vectors losslessly (None: plain float32)."""
    if spec.dtype is DataType.INT8_VECTOR and spec.metric_type == "COSINE":
        # Normalised int8 vectors are no longer integers: keep them as float16.
        return faiss.ScalarQuantizer.QT_fp16
    return NATIVE_QTYPES.get(spec.dtype)


def flat_storage(spec: IndexSpec) -> Any:
    qt = native_qtype(spec)
    mt = faiss_metric(spec.metric_type)
    return faiss.IndexFlat(spec.dim, mt) if qt is None else faiss.IndexScalarQuantizer(spec.dim, qt, mt)


def _refine_index(spec: IndexSpec) -> Any:
    refine_type = spec.build.get("refine_type", "FP32")
    if refine_type == "FP32":
        return flat_storage(spec)
    return faiss.IndexScalarQuantizer(spec.dim, SQ_QTYPES[refine_type], faiss_metric(spec.metric_type))


def _ivf_flat(spec: IndexSpec, eff: dict[str, Any]) -> Any:
    d, mt, qt = spec.dim, faiss_metric(spec.metric_type), native_qtype(spec)
    if qt is None:
        return faiss.IndexIVFFlat(faiss.IndexFlat(d, mt), d, eff["nlist"], mt)
    return faiss.IndexIVFScalarQuantizer(faiss.IndexFlat(d, mt), d, eff["nlist"], qt, mt, False)


def _ivf_sq8(spec: IndexSpec, eff: dict[str, Any]) -> Any:
    d, mt = spec.dim, faiss_metric(spec.metric_type)
    return faiss.IndexIVFScalarQuantizer(faiss.IndexFlat(d, mt), d, eff["nlist"], faiss.ScalarQuantizer.QT_8bit, mt)


def _ivf_pq(spec: IndexSpec, eff: dict[str, Any]) -> Any:
    d, mt = spec.dim, faiss_metric(spec.metric_type)
    return faiss.IndexIVFPQ(faiss.IndexFlat(d, mt), d, eff["nlist"], int(spec.build["m"]), eff["nbits"], mt)


def _ivf_rabitq(spec: IndexSpec, eff: dict[str, Any]) -> Any:
    # RaBitQ: one bit per dimension plus two scalars a row, distances corrected by an unbiased
    # estimator; `refine` re-ranks candidates on a finer copy.
    d, mt = spec.dim, faiss_metric(spec.metric_type)
    base = faiss.IndexIVFRaBitQ(faiss.IndexFlat(d, mt), d, eff["nlist"], mt)
    if spec.build.get("refine"):
        return faiss.IndexRefine(base, _refine_index(spec))
    return base


def _scann(spec: IndexSpec, eff: dict[str, Any]) -> Any:
    # 4-bit PQ fast-scan codes (one 16-entry codebook per dimension, d/2 bytes a row),
    # candidates re-ranked on the raw vectors.
    d, mt = spec.dim, faiss_metric(spec.metric_type)
    base = faiss.IndexIVFPQFastScan(faiss.IndexFlat(d, mt), d, eff["nlist"], d, 4, mt)
    if spec.build.get("with_raw_data", True):
        return faiss.IndexRefine(base, flat_storage(spec))
    return base


def _hnsw_graph(spec: IndexSpec, eff: dict[str, Any]) -> Any:
    d, mt, b, qt = spec.dim, faiss_metric(spec.metric_type), spec.build, native_qtype(spec)
    m_links = int(b["M"])
    if spec.kind == "HNSW":
        index = faiss.IndexHNSWFlat(d, m_links, mt) if qt is None else faiss.IndexHNSWSQ(d, qt, m_links, mt)
    elif spec.kind == "HNSW_SQ":
        index = faiss.IndexHNSWSQ(d, SQ_QTYPES[b["sq_type"]], m_links, mt)
    elif spec.kind == "HNSW_PQ":
        index = faiss.IndexHNSWPQ(d, int(b["m"]), m_links, eff["nbits"], mt)  # replaced in build
    else:
        index = faiss.IndexHNSWFlat(d, m_links, mt)  # HNSW_PRQ: replaced in build
    index.hnsw.efConstruction = int(b["efConstruction"])
    if b.get("refine"):
        return faiss.IndexRefine(index, _refine_index(spec))
    return index


# The faiss index of each dense kind in the registry (`registry.INDEX_TYPES`), given its
# effective params; FLAT (and too-small trained kinds) are flat storage.
MAKERS: dict[str, Callable[[IndexSpec, dict[str, Any]], Any]] = {
    "IVF_FLAT": _ivf_flat,
    "IVF_SQ8": _ivf_sq8,
    "IVF_PQ": _ivf_pq,
    "SCANN": _scann,
    "IVF_RABITQ": _ivf_rabitq,
    "HNSW": _hnsw_graph,
    "HNSW_SQ": _hnsw_graph,
    "HNSW_PQ": _hnsw_graph,
    "HNSW_PRQ": _hnsw_graph,
}
CODED_GRAPHS = ("HNSW_PQ", "HNSW_PRQ")  # graphs built on exact vectors, then kept over codes


def make_faiss_index(spec: IndexSpec, n: int) -> tuple[Any, dict[str, Any]]:
    """An empty faiss index for `spec` sized for `n` rows, and the effective params used."""
    b, kind = spec.build, spec.kind
    eff: dict[str, Any] = {}
    if "nlist" in b:
        eff["nlist"] = max(1, min(int(b["nlist"]), n))
    if "nbits" in b:
        # k-means needs at least 2**nbits training points.
        trained_on = min(n, PRQ_TRAIN_ROWS) if kind == "HNSW_PRQ" else n
        eff["nbits"] = max(1, min(int(b["nbits"]), int(math.log2(max(trained_on, 2)))))
    if kind == "FLAT" or (n < MIN_TRAIN_ROWS and (kind in CODED_GRAPHS or "nlist" in b)):
        # Too few rows to train clusters or codebooks: a tiny segment is searched exactly.
        eff["exact_small"] = kind != "FLAT"
        return flat_storage(spec), eff
    maker = MAKERS.get(kind)
    if maker is None:
        raise invalid(f"index type {spec.index_type} is not a dense index")
    return maker(spec, eff), eff


class DenseIndex(VectorIndex):
    """A faiss index over dense float / float16 / bfloat16 / int8 vectors."""

    family = "dense"

    def __init__(self, spec: IndexSpec, index: Any, num_rows: int, eff: dict[str, Any]) -> None:
        super().__init__(spec, num_rows)
        self.index = index
        self.eff = eff
        self._cosine = spec.metric_type == "COSINE"
        self._ivf = _find_ivf(index)
        self._hnsw = _find_hnsw(index)
        self._refine = isinstance(index, faiss.IndexRefine)
        self._rabitq = spec.kind == "IVF_RABITQ"
        self._reconstruct_from = self._reconstruct_source()
        # float32 rows in one flat array: exact scores over a few rows read them in place
        self._flat = self._reconstruct_from if isinstance(self._reconstruct_from, faiss.IndexFlat) else None
        self._param_cache: dict[tuple[Any, ...], tuple[Any]] = {}

    # ----------------------------------------------------------------- build

    @classmethod
    def build(cls, spec: IndexSpec, vectors: Any, progress: Progress | None = None) -> DenseIndex:
        arr = check_dense(vectors, spec.dtype, spec.dim)
        n = len(arr)
        index, eff = make_faiss_index(spec, max(n, 1))
        cosine = spec.metric_type == "COSINE"
        if spec.kind in CODED_GRAPHS and isinstance(index, faiss.IndexRefine | faiss.IndexHNSW):
            if spec.kind == "HNSW_PQ":
                b = spec.build
                graph = hnsw_over_pq(
                    spec, arr, int(b["M"]), int(b["efConstruction"]), int(b["m"]), int(eff["nbits"]), progress
                )
            else:
                graph = hnsw_over_prq(spec, arr, eff, progress)
            if isinstance(index, faiss.IndexRefine):
                refine = _refine_index(spec)
                fill(refine, arr, cosine, None)
                index = faiss.IndexRefine(graph, refine)  # the wrapper keeps both alive
            else:
                index = graph
            return cls(spec, index, n, eff)
        index = fill(index, arr, cosine, progress, use_gpu=spec.index_type.startswith("GPU_"))
        return cls(spec, index, n, eff)

    # ----------------------------------------------------------------- search

    def _prepare_queries(self, queries: Any) -> np.ndarray:
        q = check_queries(queries, self.spec.dtype, self.spec.dim)
        return normalize(q) if self._cosine else q

    def _check_search_params(self, params: dict[str, Any], k: int) -> None:
        self._depth(params, k)
        if self._ivf is not None:
            get_int(params, "nprobe", DEFAULT_NPROBE, 1, 65536)
        if self._rabitq:
            get_int(params, "rbq_query_bits", 0, 0, 8)

    def _depth(self, params: dict[str, Any], k: int) -> int:
        """HNSW ef / CAGRA itopk_size: at least k (Milvus rejects ef < k)."""
        if self._hnsw is None:
            return k
        key = "itopk_size" if self.spec.index_type == "GPU_CAGRA" and "itopk_size" in params else "ef"
        ef = get_int(params, key, max(k, DEFAULT_EF), 1, INT32_MAX)
        assert ef is not None
        if ef < k:
            raise invalid(f"{key}({ef}) should be larger than k({k})")
        return ef

    def _search(
        self, q: np.ndarray, k: int, params: dict[str, Any], allowed: np.ndarray | None, kept: int
    ) -> tuple[np.ndarray, np.ndarray]:
        if allowed is None:
            return self._faiss_search(q, k, self._search_params(k, params, None, 1.0))
        fraction = kept / self.num_rows
        cheap_exact = self._reconstruct_from is not None and fraction <= EXACT_FRACTION
        if kept <= EXACT_ROWS or cheap_exact:
            return self._exact_allowed(q, k, allowed)
        if fraction >= POSTFILTER_SHARE:
            return self._postfiltered(q, k, params, allowed, fraction)
        return self._selected(q, k, params, allowed, fraction, kept)

    def _faiss_search(self, q: np.ndarray, k: int, sp: Any) -> tuple[np.ndarray, np.ndarray]:
        """faiss's top-k in Milvus's conventions: COSINE similarities, row -1 padding."""
        scores, labels = self.index.search(q, k, params=sp)
        if self._cosine:
            scores = cosine_from_l2(scores)
        return mask_invalid(scores, labels, self.spec.metric_type)

    def _selected(
        self, q: np.ndarray, k: int, params: dict[str, Any], allowed: np.ndarray, fraction: float, kept: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k with the filter pushed into faiss (an IDSelector checked at every row).

        A query left with fewer rows than it could have (the graph around it, or the lists it
        probed, held too few allowed rows) is scored exactly over the allowed rows.
        """
        bitmap = np.packbits(allowed, bitorder="little")
        sel = faiss.IDSelectorBitmap(bitmap)  # `bitmap` and `sel` must outlive the search
        scores, labels = self._faiss_search(q, k, self._search_params(k, params, sel, fraction))
        short = np.count_nonzero(labels >= 0, axis=1) < min(k, kept)
        return self._rescore_exactly(q, k, allowed, scores, labels, short)

    def _postfiltered(
        self, q: np.ndarray, k: int, params: dict[str, Any], allowed: np.ndarray, fraction: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k of the allowed rows among an unfiltered search's top k * overfetch / fraction."""
        wide = min(self.num_rows, math.ceil(POSTFILTER_OVERFETCH * k / fraction))
        deeper = dict(params)  # at least `wide` deep wherever the index has a depth
        if self._hnsw is not None:
            deeper["ef"] = max(self._depth(params, k), wide)
            deeper.pop("itopk_size", None)
        if self.spec.kind == "SCANN" and "reorder_k" in params:
            deeper["reorder_k"] = max(get_int(params, "reorder_k", wide, 1, INT32_MAX) or wide, wide)
        scores, labels = self._faiss_search(q, wide, self._search_params(wide, deeper, None, 1.0))
        ok = labels >= 0
        ok[ok] = allowed[labels[ok]]
        order = np.argsort(~ok, axis=1, kind="stable")[:, :k]
        scores = np.take_along_axis(scores, order, axis=1)
        labels = np.take_along_axis(labels, order, axis=1)
        dropped = ~np.take_along_axis(ok, order, axis=1)
        scores[dropped], labels[dropped] = worst_score(self.spec.metric_type), -1
        # Fewer than k allowed hits: the filter follows the data, the rows nearest these queries
        # are filtered out, and a graph or the lists around them hold few allowed rows (faiss's
        # HNSW with a selector returned a third of the true top-10 in such a test).
        return self._rescore_exactly(q, k, allowed, scores, labels, np.count_nonzero(ok, axis=1) < k)

    def _rescore_exactly(
        self, q: np.ndarray, k: int, allowed: np.ndarray, scores: np.ndarray, labels: np.ndarray, short: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """`scores` and `labels` with the `short` queries' rows replaced by the exact top-k."""
        if short.any():
            scores[short], labels[short] = self._exact_allowed(q[short], k, allowed)
        return scores, labels

    def _search_params(self, k: int, params: dict[str, Any], sel: Any, fraction: float) -> Any:
        if sel is not None:
            return self._make_search_params(k, params, sel, fraction)
        # Unfiltered searches reuse immutable parameter objects (building one costs a few us).
        key = (
            self._depth(params, k),
            params.get("nprobe"),
            params.get("reorder_k"),
            params.get("refine_k"),
            params.get("rbq_query_bits"),
            k,
        )
        cached = self._param_cache.get(key)
        if cached is None:
            if len(self._param_cache) > 256:
                self._param_cache.clear()
            cached = self._param_cache[key] = (self._make_search_params(k, params, None, 1.0),)
        return cached[0]

    def _make_search_params(self, k: int, params: dict[str, Any], sel: Any, fraction: float) -> Any:
        base: Any
        if self._hnsw is not None:
            ef = self._depth(params, k)
            if sel is not None:
                ef = int(ef / max(fraction, 0.1))
            base = faiss.SearchParametersHNSW(efSearch=ef)
        elif self._ivf is not None:
            nprobe = get_int(params, "nprobe", DEFAULT_NPROBE, 1, 65536)
            assert nprobe is not None
            if sel is not None:
                nprobe = math.ceil(nprobe * min(max(math.log2(1.0 / fraction), 1.0), IVF_FILTER_PROBE_FACTOR))
            if self._rabitq:
                base = faiss.IVFRaBitQSearchParameters()
                base.nprobe = min(nprobe, self._ivf.nlist)
                base.qb = get_int(params, "rbq_query_bits", 0, 0, 8)
            else:
                base = faiss.SearchParametersIVF(nprobe=min(nprobe, self._ivf.nlist))
        else:
            base = faiss.SearchParameters() if sel is not None else None
        if base is not None and sel is not None:
            base.sel = sel
        if not self._refine:
            return base
        factor = self._refine_factor(k, params)
        return faiss.IndexRefineSearchParameters(k_factor=factor, base_index_params=base)

    def _refine_factor(self, k: int, params: dict[str, Any]) -> float:
        if self.spec.kind == "SCANN":
            reorder = get_int(params, "reorder_k", DEFAULT_REORDER * k, 1, INT32_MAX)
            assert reorder is not None
            if reorder < k:
                raise invalid(f"reorder_k({reorder}) should be larger than k({k})")
            return reorder / k
        # Milvus defaults refine_k to 1 (re-score only); 2 buys back most of what PQ/SQ loses.
        factor = get_float(params, "refine_k", DEFAULT_REFINE_K, 1.0, float("inf"))
        assert factor is not None
        return factor

    def _exact_allowed(self, q: np.ndarray, k: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k over the allowed rows, scored on the index's own stored codes."""
        if self._reconstruct_from is None:
            # IVF without a flat copy: probe every list, the selector admits only allowed rows.
            bitmap = np.packbits(allowed, bitorder="little")
            sel = faiss.IDSelectorBitmap(bitmap)  # `bitmap` and `sel` must outlive the search
            return self._faiss_search(q, k, faiss.SearchParametersIVF(nprobe=self._ivf.nlist, sel=sel))
        rows = allowed_rows(allowed)
        metric = "IP" if self._cosine else self.spec.metric_type  # stored vectors are unit length
        if self._flat is not None:
            return mask_invalid(*knn_by_rows(self._flat, q, k, rows, metric), metric)
        block = self._decode(rows)
        scores, cols = dense_exact(block, q, k, metric)
        return scores, np.where(cols >= 0, rows[np.maximum(cols, 0)], -1)

    def _decode(self, rows: np.ndarray) -> np.ndarray:
        return self._reconstruct_from.reconstruct_batch(rows.astype(np.int64))

    def _reconstruct_source(self) -> Any:
        index = self.index
        if self._refine:
            return faiss.downcast_index(index.refine_index)
        if self._hnsw is not None:
            return faiss.downcast_index(index.storage)
        if self._ivf is not None:
            return None  # reconstructing from inverted lists needs a direct map: see _exact_allowed
        return index

    # ----------------------------------------------------------------- size & persistence

    @property
    def memory_bytes(self) -> int:
        return faiss_memory_bytes(self.index)

    def _save(self, directory: Path) -> dict[str, Any]:
        write_faiss(self.index, directory / INDEX_FILE)
        return {"eff": self.eff}

    @classmethod
    def _load(
        cls, directory: Path, spec: IndexSpec, num_rows: int, extra: dict[str, Any], mmap: bool
    ) -> DenseIndex:
        return cls(spec, read_faiss(directory / INDEX_FILE, mmap), num_rows, dict(extra.get("eff", {})))


# ---------------------------------------------------------------------------- helpers


def knn_by_rows(flat: Any, q: np.ndarray, k: int, rows: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of `q` over `rows` of a float32 flat index, scored where the rows lie (no copy)."""
    q = np.ascontiguousarray(q, dtype=np.float32)
    subset = np.ascontiguousarray(rows, dtype=np.int64)
    nq = len(q)
    scores = np.empty((nq, k), np.float32)
    labels = np.empty((nq, k), np.int64)
    knn = faiss.knn_L2sqr_by_idx if metric == "L2" else faiss.knn_inner_products_by_idx
    # ld_subset 0: every query scores the same subset
    knn(faiss.swig_ptr(q), flat.get_xb(), faiss.swig_ptr(subset), flat.d, nq, flat.ntotal, len(subset), k,
        faiss.swig_ptr(scores), faiss.swig_ptr(labels), 0)
    return scores, labels


def float_chunks(arr: np.ndarray, cosine: bool, rows: np.ndarray | None = None) -> Iterator[np.ndarray]:
    """float32 blocks of `arr` (optionally only `rows`), normalised for COSINE."""
    total = len(arr) if rows is None else len(rows)
    for start in range(0, total, CHUNK_ROWS):
        stop = min(total, start + CHUNK_ROWS)
        block = to_float32(np.asarray(arr[start:stop] if rows is None else arr[rows[start:stop]]))
        yield np.ascontiguousarray(normalize(block) if cosine else block)


def float_rows(arr: np.ndarray, cosine: bool) -> np.ndarray:
    """Every row of `arr` as one float32 matrix, normalised for COSINE: `arr` itself when it is
    one already, else a copy filled a chunk at a time."""
    if not cosine and arr.dtype == np.float32 and arr.flags.c_contiguous:
        return arr
    out = np.empty((len(arr), arr.shape[1]), np.float32)
    at = 0
    for block in float_chunks(arr, cosine):
        out[at : at + len(block)] = block
        at += len(block)
    return out


def fill(index: Any, arr: np.ndarray, cosine: bool, progress: Progress | None, use_gpu: bool = False) -> Any:
    """Train (on a sample) and add every row of `arr` (a graph in one call, other indexes a chunk
    at a time), reporting progress 0..1.

    Returns the filled index: `index` itself, or its CPU copy after a GPU build.
    """
    n = len(arr)
    report = progress or (lambda _f: None)
    report(0.0)
    if n == 0:
        report(1.0)
        return index
    sample = None
    if not index.is_trained:
        rng = np.random.default_rng(0)
        pick = np.sort(rng.choice(n, TRAIN_ROWS, replace=False)) if n > TRAIN_ROWS else None
        sample = np.concatenate(list(float_chunks(arr, cosine, pick)))
    if use_gpu and gpu_available() and not isinstance(index, faiss.IndexHNSW):
        try:
            index = train_and_add_on_gpu(index, sample, float_chunks(arr, cosine))
            report(1.0)
            return index
        except RuntimeError:
            pass  # this index layout has no GPU implementation: build it on the CPU
    if sample is not None:
        _quiet_training(index)
        index.train(sample)
    report(0.2)
    if _find_hnsw(index) is not None:
        # faiss inserts the rows of one add() level by level; a graph grown over many calls is
        # worse (1M x 768 HNSW_SQ, recall@100 at ef 200: 0.916 from 16k-row calls, 0.947 from one)
        index.add(float_rows(arr, cosine))
        report(1.0)
        return index
    done = 0
    for block in float_chunks(arr, cosine):
        index.add(block)
        done += len(block)
        report(0.2 + 0.8 * done / n)
    return index


def _quiet_training(index: Any) -> None:
    """Let k-means run on few points without faiss printing a warning per codebook."""
    parts = [index]
    if isinstance(index, faiss.IndexRefine):
        parts = [faiss.downcast_index(index.base_index), faiss.downcast_index(index.refine_index)]
    for part in parts:
        for holder in (part, getattr(part, "pq", None)):
            cp = getattr(holder, "cp", None)
            if cp is not None:
                cp.min_points_per_centroid = 1


def _prq_codes(spec: IndexSpec, eff: dict[str, Any]) -> Any:
    """Untrained product residual quantizer codes: `m` splits, each `nrq` residual codebooks.

    Each split's codes are chosen greedily (beam 1) and its codebook tables are skipped: faiss's
    default beam of 5 and its refinement made a 64-dimension build take minutes; greedy keeps
    what the residual steps add (top-10 recall against exact search in the tests).
    """
    b = spec.build
    codes = faiss.IndexProductResidualQuantizer(
        spec.dim, int(b["m"]), int(b["nrq"]), int(eff["nbits"]), faiss_metric(spec.metric_type)
    )
    for i in range(codes.prq.nsplits):
        rq = faiss.downcast_AdditiveQuantizer(codes.prq.subquantizer(i))
        rq.max_beam_size = 1
        rq.train_type = faiss.ResidualQuantizer.Skip_codebook_tables
        rq.cp.min_points_per_centroid = 1
    return codes


def _graph_over(spec: IndexSpec, arr: np.ndarray, links: int, ef_construction: int, report: Progress) -> Any:
    """The HNSW graph of `arr` built on exact distances (a transient float32 copy)."""
    graph = faiss.IndexHNSWFlat(spec.dim, links, faiss_metric(spec.metric_type))
    graph.hnsw.efConstruction = ef_construction
    fill(graph, arr, spec.metric_type == "COSINE", report)
    return graph


def _keep_codes(out: Any, graph: Any, codes: Any) -> Any:
    """`out` holding `graph`'s links over `codes`; the graph's float32 copy is then dropped."""
    out.d, out.metric_type, out.ntotal, out.is_trained = graph.d, graph.metric_type, graph.ntotal, True
    out.hnsw = graph.hnsw  # a copy of the links
    out.storage = codes
    codes.this.disown()
    out.own_fields = True
    return out


def hnsw_over_pq(
    spec: IndexSpec,
    arr: np.ndarray,
    links: int,
    ef_construction: int,
    pq_m: int,
    nbits: int,
    progress: Progress | None,
) -> Any:
    """An HNSW graph built on exact distances that keeps only PQ codes afterwards.

    A graph built on PQ distances is poor (especially for IP); building on the float32
    vectors (a transient copy) and then swapping the storage for PQ codes keeps the graph
    quality at the memory cost of the codes.
    """
    report = progress or (lambda _f: None)
    graph = _graph_over(spec, arr, links, ef_construction, lambda f: report(0.7 * f))
    codes = faiss.IndexPQ(spec.dim, pq_m, nbits, faiss_metric(spec.metric_type))
    fill(codes, arr, spec.metric_type == "COSINE", lambda f: report(0.7 + 0.3 * f))
    return _keep_codes(faiss.IndexHNSWPQ(), graph, codes)


def hnsw_over_prq(spec: IndexSpec, arr: np.ndarray, eff: dict[str, Any], progress: Progress | None) -> Any:
    """HNSW_PRQ: as `hnsw_over_pq`, keeping product residual quantizer codes."""
    report = progress or (lambda _f: None)
    b = spec.build
    graph = _graph_over(spec, arr, int(b["M"]), int(b["efConstruction"]), lambda f: report(0.6 * f))
    codes = _prq_codes(spec, eff)
    cosine, n = spec.metric_type == "COSINE", len(arr)
    if n > PRQ_TRAIN_ROWS:
        pick = np.sort(np.random.default_rng(0).choice(n, PRQ_TRAIN_ROWS, replace=False))
        codes.train(np.concatenate(list(float_chunks(arr, cosine, pick))))
    fill(codes, arr, cosine, lambda f: report(0.6 + 0.4 * f))
    return _keep_codes(faiss.IndexHNSW(spec.dim, int(b["M"]), graph.metric_type), graph, codes)


def _find_ivf(index: Any) -> Any:
    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:
        return None


def _find_hnsw(index: Any) -> Any:
    base = faiss.downcast_index(index.base_index) if isinstance(index, faiss.IndexRefine) else index
    return base if isinstance(base, faiss.IndexHNSW) else None


def faiss_memory_bytes(index: Any) -> int:
    """Approximate resident size of a faiss index: codes, ids, graph links, centroids."""
    if isinstance(index, faiss.IndexRefine):
        return faiss_memory_bytes(faiss.downcast_index(index.base_index)) + faiss_memory_bytes(
            faiss.downcast_index(index.refine_index)
        )
    n = int(index.ntotal)
    if isinstance(index, faiss.IndexHNSW):
        links = int(index.hnsw.neighbors.size()) * 4
        return links + faiss_memory_bytes(faiss.downcast_index(index.storage))
    ivf = _find_ivf(index)
    if ivf is not None:
        code_size = int(ivf.code_size) or max(1, ivf.d // 4)
        return n * (code_size + 8) + ivf.nlist * ivf.d * 4
    return n * int(index.sa_code_size())


def write_faiss(index: Any, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    faiss.write_index(index, str(tmp))
    tmp.replace(path)


def read_faiss(path: Path, mmap: bool) -> Any:
    if mmap:
        try:
            # MMAP_IFC maps the flat code arrays (FLAT/HNSW storage, refine vectors) too.
            flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY
            return faiss.read_index(str(path), flags)
        except RuntimeError:
            pass  # not every faiss index type can be memory-mapped
    return faiss.read_index(str(path))
