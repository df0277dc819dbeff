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

# A floor probe (bench.echo, bench.instant) answers the same query vectors through a server
# that does no work; run beside a system's queries it sees the same machine at the same time.
Probe = Callable[[np.ndarray], object]


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


class _Beside:
    """Times each probe once after every query of the system under test."""

    def __init__(self, probes: dict[str, Probe] | None) -> None:
        self.probes = probes or {}
        self.lat: dict[str, list[float]] = {name: [] for name in self.probes}
        self.spent_s = 0.0

    def run(self, queries: np.ndarray) -> None:
        for name, probe in self.probes.items():
            t0 = time.perf_counter()
            probe(queries)
            took = time.perf_counter() - t0
            self.lat[name].append(took * 1e3)
            self.spent_s += took

    def latency(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, lat in self.lat.items():
            lat.sort()
            out.update({f"{name}_p50_ms": percentile(lat, 50), f"{name}_p99_ms": percentile(lat, 99),
                        f"{name}_mean_ms": statistics.fmean(lat)})
        return out


def serial(search: Searcher, queries: np.ndarray, flt: Filter | None = None, desc: str = "serial",
           budget_s: float = float("inf"), beside: dict[str, Probe] | None = None
           ) -> tuple[dict[str, float], list[list[int]]]:
    """nq=1 searches one after another: QPS, p50/p90/p99 latency (ms) and the results.

    Stops early once ``budget_s`` is spent (a slow system at a large size), so the results
    cover the first queries only; recall is then computed over those. Each ``beside`` probe
    answers every query right after the system does; its latency comes back as
    ``<name>_p50_ms`` etc., and its time is not counted in the system's QPS.
    """
    warm_up = _Beside(beside)
    for q in queries[: min(5, len(queries))]:
        search(q[None, :], flt)
        warm_up.run(q[None, :])
    probes = _Beside(beside)
    lat: list[float] = []
    found: list[list[int]] = []
    t_start = time.perf_counter()
    for q in tqdm(queries, desc=desc, unit="q", leave=False):
        t0 = time.perf_counter()
        found.extend(search(q[None, :], flt))
        lat.append((time.perf_counter() - t0) * 1e3)
        probes.run(q[None, :])
        if len(lat) >= MIN_QUERIES and t0 - t_start > budget_s:
            break
    total = time.perf_counter() - t_start - probes.spent_s
    lat.sort()
    return ({"qps": len(lat) / total, "queries": float(len(lat)), "p50_ms": percentile(lat, 50), "p90_ms": percentile(lat, 90),
             "p99_ms": percentile(lat, 99), "mean_ms": statistics.fmean(lat), **probes.latency()}, found)


def batch(search: Searcher, queries: np.ndarray, nq: int, rounds: int,
          budget_s: float = float("inf"), beside: dict[str, Probe] | None = None) -> dict[str, float]:
    """Searches of ``nq`` vectors at once: queries answered per second, latency per batch.

    Each ``beside`` probe answers every batch right after the system does; its throughput
    comes back as ``batch_<name>_qps``.
    """
    probes = _Beside(beside)
    lat = []
    t_start = time.perf_counter()
    for r in tqdm(range(rounds), desc=f"batch nq={nq}", leave=False):
        lo = (r * nq) % max(1, len(queries) - nq + 1)
        t0 = time.perf_counter()
        search(queries[lo: lo + nq], None)
        lat.append((time.perf_counter() - t0) * 1e3)
        probes.run(queries[lo: lo + nq])
        if t0 - t_start > budget_s:
            break
    total = time.perf_counter() - t_start - probes.spent_s
    side = {f"batch_{name}_qps": len(ms) * nq * 1e3 / sum(ms) for name, ms in probes.lat.items() if ms}
    return {"batch_qps": len(lat) * nq / total, "batch_p50_ms": statistics.median(lat), **side}


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
