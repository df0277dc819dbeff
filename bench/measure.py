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


def round_trips(call: Callable[[int], object], rounds: int, warmup: int = 50) -> dict[str, float]:
    """Latency in ms of ``call(i)`` for i in 0..rounds-1, after ``min(warmup, rounds)`` untimed
    calls (connection, thread pools): p50, p99 and mean."""
    for i in range(min(warmup, rounds)):
        call(i)
    lat = []
    for i in range(rounds):
        t0 = time.perf_counter()
        call(i)
        lat.append((time.perf_counter() - t0) * 1e3)
    lat.sort()
    return {"p50_ms": statistics.median(lat), "p99_ms": percentile(lat, 99), "mean_ms": statistics.fmean(lat)}


MIN_QUERIES = 20  # a time budget never cuts a loop below this many queries


def serial(search: Searcher, queries: np.ndarray, flt: Filter | None = None, desc: str = "serial",
           budget_s: float = float("inf")) -> tuple[dict[str, float], list[list[int]]]:
    """nq=1 searches one after another: QPS, p50/p90/p99 latency (ms) and the results.

    Stops early once ``budget_s`` is spent (a slow system at a large size), so the results
    cover the first queries only; recall is then computed over those.
    """
    for q in queries[: min(5, len(queries))]:
        search(q[None, :], flt)  # warm-up
    lat: list[float] = []
    found: list[list[int]] = []
    t_start = time.perf_counter()
    for q in tqdm(queries, desc=desc, unit="q", leave=False):
        t0 = time.perf_counter()
        found.extend(search(q[None, :], flt))
        lat.append((time.perf_counter() - t0) * 1e3)
        if len(lat) >= MIN_QUERIES and t0 - t_start > budget_s:
            break
    total = time.perf_counter() - t_start
    lat.sort()
    return ({"qps": len(lat) / total, "queries": float(len(lat)), "p50_ms": percentile(lat, 50), "p90_ms": percentile(lat, 90),
             "p99_ms": percentile(lat, 99), "mean_ms": statistics.fmean(lat)}, found)


def batch(search: Searcher, queries: np.ndarray, nq: int, rounds: int,
          budget_s: float = float("inf")) -> dict[str, float]:
    """Searches of ``nq`` vectors at once: queries answered per second, latency per batch."""
    lat = []
    t_start = time.perf_counter()
    for r in tqdm(range(rounds), desc=f"batch nq={nq}", leave=False):
        lo = (r * nq) % max(1, len(queries) - nq + 1)
        t0 = time.perf_counter()
        search(queries[lo: lo + nq], None)
        lat.append((time.perf_counter() - t0) * 1e3)
        if t0 - t_start > budget_s:
            break
    total = time.perf_counter() - t_start
    return {"batch_qps": len(lat) * nq / total, "batch_p50_ms": statistics.median(lat)}


def concurrent(make_searcher: Callable[[], Searcher], queries: np.ndarray, threads: int,
               total_queries: int, budget_s: float = float("inf")) -> float:
    """QPS of ``threads`` client threads (each with its own searcher) sharing ``total_queries``.

    Threads stop taking new queries once ``budget_s`` is spent.
    """
    searchers = [make_searcher() for _ in range(threads)]
    for s in searchers:
        s(queries[:1], None)  # connect and warm up outside the timing
    counter = iter(range(total_queries))
    lock = threading.Lock()
    errors: list[BaseException] = []
    done = [0]
    deadline = [float("inf")]

    def work(s: Searcher) -> None:
        while True:
            with lock:
                i = next(counter, None)
                if i is not None and i >= MIN_QUERIES and time.perf_counter() > deadline[0]:
                    i = None
            if i is None:
                return
            try:
                s(queries[i % len(queries)][None, :], None)
            except BaseException as exc:  # surfaced below so the phase records it
                errors.append(exc)
                return
            with lock:
                done[0] += 1

    pool = [threading.Thread(target=work, args=(s,)) for s in searchers]
    t0 = time.perf_counter()
    deadline[0] = t0 + budget_s
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return done[0] / elapsed
