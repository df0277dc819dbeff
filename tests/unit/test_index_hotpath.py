"""The search hot path: little Python around faiss, and safe under concurrent searches."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from typing import Any

import numpy as np
import pytest

from shoal.index import build_index, validate_index_params
from shoal.schema import DataType, FieldSchema

DIM = 64
RNG = np.random.default_rng(17)
BASE = RNG.normal(size=(3000, DIM)).astype(np.float32)
QUERIES = RNG.normal(size=(64, DIM)).astype(np.float32)
FIELD = FieldSchema("v", DataType.FLOAT_VECTOR, dim=DIM)


class InstantFaiss:
    """Stands in for the faiss index to time only Shoal's own work around a search."""

    def __init__(self, k: int) -> None:
        self.result = (np.zeros((1, k), np.float32), np.arange(k, dtype=np.int64)[None, :])

    def search(self, q: np.ndarray, k: int, params: Any = None) -> tuple[np.ndarray, np.ndarray]:
        return self.result


def _calls_during(fn: Any) -> int:
    """Function calls (Python and C) made while `fn` runs: the work a search does around faiss,
    counted rather than timed so a loaded machine cannot fail it (50 on the day it was written)."""
    calls = 0

    def profile(frame: Any, event: str, arg: Any) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return calls


def test_serial_single_query_overhead_is_small() -> None:
    index = build_index(
        validate_index_params(FIELD, {"index_type": "HNSW", "M": "8", "efConstruction": "32"}), BASE
    )
    index.index = InstantFaiss(10)  # type: ignore[attr-defined]
    query = QUERIES[:1]
    scores, rows = index.search(query, 10, {"ef": "64"})
    assert rows.shape == (1, 10)
    calls = _calls_during(lambda: index.search(query, 10, {"ef": "64"}))
    assert calls <= 80, f"{calls} calls around faiss per nq=1 search"


def one_search(index: Any, queries: np.ndarray, allowed: np.ndarray, i: int) -> tuple[np.ndarray, np.ndarray]:
    return index.search(queries[i : i + 1], 5, {"nprobe": 1 + i % 4}, allowed)


@pytest.mark.parametrize("index_type", ["HNSW", "IVF_FLAT", "BIN_FLAT"])
def test_concurrent_searches_match_serial_ones(index_type: str) -> None:
    if index_type == "BIN_FLAT":
        fld = FieldSchema("b", DataType.BINARY_VECTOR, dim=DIM)
        base, queries = np.packbits(BASE > 0, axis=1), np.packbits(QUERIES > 0, axis=1)
    else:
        fld, base, queries = FIELD, BASE, QUERIES
    index = build_index(validate_index_params(fld, {"index_type": index_type, "nlist": "16"}), base)
    allowed = np.arange(len(base)) % 3 != 1
    task = partial(one_search, index, queries, allowed)
    serial = [task(i) for i in range(len(queries))]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(task, range(len(queries))))
    for (s1, r1), (s2, r2) in zip(serial, parallel, strict=True):
        assert np.array_equal(r1, r2) and np.array_equal(s1, s2)


@contextmanager
def faiss_threads(n: int) -> Iterator[None]:
    """faiss's thread count set to n for the block, then back to one per core."""
    from shoal.index import set_threads

    set_threads(n)
    try:
        yield
    finally:
        set_threads(len(os.sched_getaffinity(0)))


def test_search_lets_other_threads_run_while_faiss_works() -> None:
    """A long faiss search releases the GIL: a Python thread keeps counting meanwhile
    (were the GIL held, it would stall until the search returned)."""
    import threading

    rng = np.random.default_rng(3)
    index = build_index(validate_index_params(FIELD, {"index_type": "FLAT"}), rng.normal(size=(40_000, DIM)).astype(np.float32))
    queries = rng.normal(size=(3000, DIM)).astype(np.float32)
    with faiss_threads(1):  # one core for faiss, the other for the counting thread
        def count_for(seconds: float) -> float:
            n, end = 0, time.perf_counter() + seconds
            while time.perf_counter() < end:
                n += 1
            return n / seconds

        alone = count_for(0.1)
        done = threading.Event()
        worker = threading.Thread(target=lambda: (index.search(queries, 10), done.set()))
        start = time.perf_counter()
        worker.start()
        n = 0
        while not done.is_set():
            n += 1
        took = time.perf_counter() - start
        worker.join()
    assert took > 0.05, f"the search took {took * 1e3:.0f} ms: too short to tell"
    assert n / took > 0.25 * alone, f"counted {n / took:.0f}/s during the search vs {alone:.0f}/s alone"


def test_server_blas_policy_pins_numpy_blas_and_leaves_faiss_threads() -> None:
    """`shoal run` keeps numpy's BLAS on one thread (its spinning workers would take faiss's
    cores) without touching the OpenMP threads faiss searches and builds with."""
    import subprocess
    import sys

    code = (
        "import faiss, threadpoolctl\n"
        "from shoal.index import single_threaded_blas\n"
        "before = faiss.omp_get_max_threads()\n"
        "single_threaded_blas()\n"
        "info = {i['prefix']: i['num_threads'] for i in threadpoolctl.threadpool_info()}\n"
        "print(info['libscipy_openblas'], faiss.omp_get_max_threads() == before)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["1", "True"]


def test_one_query_runs_faiss_on_one_thread_a_batch_on_all() -> None:
    """faiss splits a one-query flat scan over its threads and loses more waking them than it
    gains, so a search of one query runs on the calling thread; a batch gets every thread."""
    import threading

    import faiss

    rng = np.random.default_rng(4)
    index = build_index(validate_index_params(FIELD, {"index_type": "FLAT"}), rng.normal(size=(2000, DIM)).astype(np.float32))
    seen: list[int] = []

    def search_and_look(nq: int) -> None:
        index.search(rng.normal(size=(nq, DIM)).astype(np.float32), 10)
        seen.append(faiss.omp_get_max_threads())

    with faiss_threads(2):
        for nq in (1, 5, 1):
            worker = threading.Thread(target=search_and_look, args=(nq,))  # a gRPC worker's own thread
            worker.start()
            worker.join()
    assert seen == [1, 2, 1]
