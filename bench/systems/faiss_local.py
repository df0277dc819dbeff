"""In-process faiss with the same index type and parameters: the ceiling.

No process boundary, no protocol, no Python-side row handling beyond numpy. Filters are
pushed into the index as an ``IDSelectorBitmap`` (what a good server should also do).
Neighbours: :mod:`bench.runner` treats it like any other :class:`~bench.systems.base.System`.
"""

from __future__ import annotations

import dataclasses
import threading
import time

import faiss
import numpy as np

from bench.config import TOP_K, IndexSpec
from bench.systems.base import Searcher
from bench.workloads import Filter, Workload


def factory_string(index: IndexSpec) -> str:
    p = index.build_params
    if index.index_type == "FLAT":
        return "Flat"
    if index.index_type == "IVF_FLAT":
        return f"IVF{p['nlist']},Flat"
    if index.index_type == "IVF_SQ8":
        return f"IVF{p['nlist']},SQ8"
    if index.index_type == "IVF_PQ":
        return f"IVF{p['nlist']},PQ{p['m']}x{p['nbits']}"
    if index.index_type == "HNSW":
        return f"HNSW{p['M']},Flat"
    raise ValueError(f"faiss: no mapping for {index.index_type}")


class FaissSystem:
    """One faiss index in this process; ids are the workload's primary keys."""

    name = "faiss"
    in_process = True

    def __init__(self) -> None:
        self.index: faiss.Index | None = None
        self.spec: IndexSpec | None = None
        self.cat: np.ndarray | None = None
        self.alive: np.ndarray | None = None
        self._selectors: dict[str, tuple[faiss.IDSelector, np.ndarray]] = {}
        self._lock = threading.Lock()
        self._threads = faiss.omp_get_max_threads()

    def setup(self, workload: Workload, index: IndexSpec, batch: int) -> dict[str, float]:
        metric = faiss.METRIC_INNER_PRODUCT if workload.metric == "IP" else faiss.METRIC_L2
        self.spec = index
        t0 = time.perf_counter()
        inner = faiss.index_factory(workload.dim, factory_string(index), metric)
        if index.index_type == "HNSW":
            faiss.downcast_index(inner).hnsw.efConstruction = index.build_params["efConstruction"]
        inner.train(workload.vectors)
        t1 = time.perf_counter()
        base = inner if index.index_type.startswith("IVF") else faiss.IndexIDMap2(inner)
        ids = np.arange(workload.n, dtype=np.int64)
        base.add_with_ids(workload.vectors, ids)
        t2 = time.perf_counter()
        self.index, self._inner = base, inner
        self.cat = workload.cat.copy()
        self.alive = np.ones(workload.n, dtype=bool)
        self._apply_search_params()
        return {"insert_s": t2 - t1, "index_s": t1 - t0, "load_s": t2 - t0,
                "insert_rows_per_s": workload.n / max(t2 - t1, 1e-9)}

    def _apply_search_params(self) -> None:
        assert self.spec is not None
        sp = self.spec.search_params
        inner = faiss.downcast_index(self._inner)
        if "nprobe" in sp:
            faiss.extract_index_ivf(inner).nprobe = sp["nprobe"]
        if "ef" in sp:
            inner.hnsw.efSearch = sp["ef"]

    def _params(self, flt: Filter) -> faiss.SearchParameters:
        assert self.spec is not None
        if flt.name not in self._selectors:
            bits = np.packbits(flt.mask, bitorder="little")
            self._selectors[flt.name] = (faiss.IDSelectorBitmap(len(flt.mask), faiss.swig_ptr(bits)), bits)
        sel = self._selectors[flt.name][0]
        sp = self.spec.search_params
        if "nprobe" in sp:
            return faiss.SearchParametersIVF(sel=sel, nprobe=sp["nprobe"])
        if "ef" in sp:
            return faiss.SearchParametersHNSW(sel=sel, efSearch=sp["ef"])
        return faiss.SearchParameters(sel=sel)

    def searcher(self) -> Searcher:
        def search(vectors: np.ndarray, flt: Filter | None) -> list[list[int]]:
            assert self.index is not None
            q = np.ascontiguousarray(vectors, dtype=np.float32)
            with self._lock:
                # one query gains nothing from OpenMP and loses a lot on a busy machine
                faiss.omp_set_num_threads(1 if len(q) == 1 else self._threads)
                if flt is None:
                    _, ids = self.index.search(q, TOP_K)
                else:
                    _, ids = self.index.search(q, TOP_K, params=self._params(flt))
            return [[int(i) for i in row if i >= 0] for row in ids]

        return search

    def tune(self, search_params: dict[str, int]) -> None:
        assert self.spec is not None
        self.spec = dataclasses.replace(self.spec, search_params=dict(search_params))
        with self._lock:
            self._apply_search_params()

    def query_filter(self, expr: Filter, limit: int) -> int:
        assert self.alive is not None
        return len(np.flatnonzero(expr.mask & self.alive[: len(expr.mask)])[:limit])

    def count(self, expr: Filter) -> int:
        assert self.alive is not None
        return int(np.count_nonzero(expr.mask & self.alive[: len(expr.mask)]))

    def count_all(self) -> int:
        assert self.index is not None
        return int(self.index.ntotal)

    def index_scalar(self, field: str) -> float:
        raise NotImplementedError("faiss holds no scalar columns: its filters are precomputed masks")

    def insert(self, rows: list[dict]) -> None:
        assert self.index is not None
        vecs = np.stack([r["vec"] for r in rows]).astype(np.float32)
        ids = np.array([r["id"] for r in rows], dtype=np.int64)
        with self._lock:
            self.index.add_with_ids(vecs, ids)

    def delete(self, ids: list[int]) -> None:
        assert self.index is not None and self.alive is not None
        with self._lock:
            self.index.remove_ids(np.array(ids, dtype=np.int64))
        known = [i for i in ids if i < len(self.alive)]
        self.alive[known] = False

    def resources(self) -> dict[str, float]:
        if self.index is None:
            return {}
        return {"index_mb": faiss.serialize_index(self.index).nbytes / 1e6}

    def teardown(self) -> None:
        self.index = None
        self._selectors.clear()
