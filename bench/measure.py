"""Timing loops shared by every system: serial, batch and concurrent search.

Pure measurement: each takes a searcher callable and queries, returns numbers.
Neighbours: :mod:`bench.runner` chooses what to measure; the systems provide searchers.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable

import numpy as np
from tqdm import tqdm

from bench.systems.base import Searcher
from bench.workloads import Filter


def percentile(sorted_ms: list[float], p: float) -> float:
    if not sorted_ms:
        return float("nan")
    return sorted_ms[min(len(sorted_ms) - 1, int(round(p / 100 * (len(sorted_ms) - 1))))]


def serial(search: Searcher, queries: np.ndarray, flt: Filter | None = None,
           desc: str = "serial") -> tuple[dict[str, float], list[list[int]]]:
    """nq=1 searches one after another: QPS, p50/p90/p99 latency (ms) and the results."""
    for q in queries[: min(5, len(queries))]:
        search(q[None, :], flt)  # warm-up
    lat: list[float] = []
    found: list[list[int]] = []
    t_start = time.perf_counter()
    for q in tqdm(queries, desc=desc, unit="q", leave=False):
        t0 = time.perf_counter()
        found.extend(search(q[None, :], flt))
        lat.append((time.perf_counter() - t0) * 1e3)
    total = time.perf_counter() - t_start
    lat.sort()
    return ({"qps": len(queries) / total, "p50_ms": percentile(lat, 50), "p90_ms": percentile(lat, 90),
             "p99_ms": percentile(lat, 99), "mean_ms": statistics.fmean(lat)}, found)


def batch(search: Searcher, queries: np.ndarray, nq: int, rounds: int) -> dict[str, float]:
    """Searches of ``nq`` vectors at once: queries answered per second, latency per batch."""
    lat = []
    t_start = time.perf_counter()
    for r in tqdm(range(rounds), desc=f"batch nq={nq}", leave=False):
        lo = (r * nq) % max(1, len(queries) - nq + 1)
        t0 = time.perf_counter()
        search(queries[lo: lo + nq], None)
        lat.append((time.perf_counter() - t0) * 1e3)
    total = time.perf_counter() - t_start
    return {"batch_qps": rounds * nq / total, "batch_p50_ms": statistics.median(lat)}


def concurrent(make_searcher: Callable[[], Searcher], queries: np.ndarray, threads: int,
               total_queries: int) -> float:
    """QPS of ``threads`` client threads (each with its own searcher) sharing ``total_queries``."""
    searchers = [make_searcher() for _ in range(threads)]
    for s in searchers:
        s(queries[:1], None)  # connect and warm up outside the timing
    counter = iter(range(total_queries))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work(s: Searcher) -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            try:
                s(queries[i % len(queries)][None, :], None)
            except BaseException as exc:  # surfaced below so the phase records it
                errors.append(exc)
                return

    pool = [threading.Thread(target=work, args=(s,)) for s in searchers]
    t0 = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return total_queries / elapsed
