"""Vector indexes of sealed segments, and exact search for everything else.

The engine's whole view of this package:

    spec = validate_index_params(field, params)      # Milvus create_index checks -> IndexSpec
    idx = build_index(spec, vectors, progress)       # VectorIndex over rows 0..n-1
    scores, rows = idx.search(queries, k, params, allowed)
    scores, rows, lims = idx.range_search(queries, radius, range_filter, params, allowed, limit)
    idx.save(dir); idx = load_index(dir, mmap=True)
    scores, rows = search_exact(vectors, queries, k, metric_type, allowed)
    scores, rows, lims = range_search_exact(vectors, queries, radius, range_filter, metric_type, allowed, limit)

Modules: `registry` (one record per index type, validation), `params` (value parsers, IndexSpec), `vectors` (layouts, top-k helpers), `exact`
(brute force), `base` (VectorIndex contract), `dense` (faiss FLAT/IVF/HNSW/SCANN/GPU),
`diskann`, `binary`, `sparse`, `gpu`, `factory`. Imports only `shoal.errors`,
`shoal.schema`, numpy and faiss.
"""

from __future__ import annotations

import os

# Threads that wait for OpenMP work must sleep, not spin: on a few shared cores spinning
# faiss threads slow every other thread (measured: PQ training 4x slower). Only effective
# when this package is what first loads faiss.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import faiss  # noqa: E402, F401  (loaded here, after the wait policy is set)

from shoal.index.base import VectorIndex  # noqa: E402
from shoal.index.dense import EXACT_ROWS
from shoal.index.exact import ExactIndex, range_search_exact, search_exact
from shoal.index.factory import build_index, load_index
from shoal.index.params import IndexSpec
from shoal.index.registry import validate_index_params
from shoal.index.sparse import SparseRows
from shoal.index.threads import available_cpus, set_threads, threads_for_builds
from shoal.index.vectors import allowed_rows, range_filter_hits


def single_threaded_blas() -> None:
    """Keep numpy's BLAS (exact scoring of small filtered sets, growing segments) on the
    calling thread, for the whole process.

    faiss's OpenMP threads do the parallel work; BLAS worker threads spin after every call
    and take their cores (measured in one process at 1M rows: faiss reconstruct + numpy exact
    top-10 over 10,000 rows 7.4 ms with numpy's default BLAS threads, 0.5 ms with one).
    Process-wide, so only the `shoal run` server applies it, not an embedding application.
    """
    from threadpoolctl import ThreadpoolController

    # numpy's own OpenBLAS only: faiss's OpenMP OpenBLAS shares faiss's thread count
    ThreadpoolController().select(prefix="libscipy_openblas").limit(limits=1)


set_threads(available_cpus())


__all__ = [
    "EXACT_ROWS",
    "IndexSpec",
    "VectorIndex",
    "SparseRows",
    "validate_index_params",
    "build_index",
    "load_index",
    "search_exact",
    "range_search_exact",
    "ExactIndex",
    "range_filter_hits",
    "allowed_rows",
    "set_threads",
    "threads_for_builds",
    "available_cpus",
    "single_threaded_blas",
]
