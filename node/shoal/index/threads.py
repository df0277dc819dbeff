"""How many OpenMP threads faiss may use, per call.

OpenMP's thread count is per calling thread, so each search sets it for its own (gRPC worker)
thread. A single query runs on one thread: faiss splits a one-query flat scan across threads,
and waking them costs more than they save (measured: 100k x 128 FLAT, nq=1, 1.7 ms on one
thread, 2.9 ms on two); HNSW and IVF search one query on one thread anyway.
"""

from __future__ import annotations

import faiss

_threads = 1


def set_threads(n: int) -> None:
    """OpenMP threads faiss may use for one batched search or build."""
    global _threads
    _threads = max(1, int(n))
    faiss.omp_set_num_threads(_threads)


def threads_for_queries(nq: int) -> None:
    """Give the calling thread's next faiss call one thread for one query, all of them for a batch."""
    faiss.omp_set_num_threads(1 if nq <= 1 else _threads)
