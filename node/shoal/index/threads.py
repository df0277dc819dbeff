"""How many OpenMP threads faiss may use, per call.

OpenMP's thread count is per calling thread, so each search sets it for its own (gRPC worker)
thread. A single query runs on one thread: faiss splits a one-query flat scan across threads,
and waking them costs more than they save (measured: 100k x 128 FLAT, nq=1, 1.7 ms on one
thread, 2.9 ms on two); HNSW and IVF search one query on one thread anyway.

The default is the CPUs this process may really use: its affinity, capped by a cgroup CPU
quota (a Kubernetes CPU limit), which `os.cpu_count()` does not see. OpenMP threads beyond
the quota only get the pod throttled.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import faiss

_threads = 1
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_idle_helpers = threading.Semaphore(0)  # pool threads not working for another query right now
T = TypeVar("T")
R = TypeVar("R")

_CGROUP = Path("/sys/fs/cgroup")


def quota_cpus(quota: str, period: str) -> int | None:
    """CPUs a CFS quota allows, rounded up; None for no quota.

    cgroup v2 writes both in `cpu.max` ("max 100000", "150000 100000"); cgroup v1 in
    `cpu.cfs_quota_us` (-1 for none) and `cpu.cfs_period_us`.
    """
    quota, period = quota.strip(), period.strip()
    if quota in ("max", "-1", ""):
        return None
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    if q <= 0 or p <= 0:
        return None
    return max(1, math.ceil(q / p))


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def cgroup_cpus(root: Path = _CGROUP) -> int | None:
    """The CPU limit of the cgroup at `root` (v2 or v1 layout); None when there is none."""
    v2 = _read(root / "cpu.max")
    if v2 is not None:
        parts = v2.split()
        return quota_cpus(parts[0], parts[1]) if len(parts) == 2 else None
    quota, period = _read(root / "cpu" / "cpu.cfs_quota_us"), _read(root / "cpu" / "cpu.cfs_period_us")
    if quota is None or period is None:
        return None
    return quota_cpus(quota, period)


def available_cpus() -> int:
    """CPUs this process may use: its affinity, capped by its cgroup's CPU quota."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    limit = cgroup_cpus()
    return max(1, min(cpus, limit) if limit else cpus)


def set_threads(n: int) -> None:
    """OpenMP threads faiss may use for one batched search or build."""
    global _threads, _pool, _idle_helpers
    _threads = max(1, int(n))
    faiss.omp_set_num_threads(_threads)
    with _pool_lock:
        old, _pool = _pool, None
        _idle_helpers = threading.Semaphore(_threads - 1)
    if old is not None:
        old.shutdown(wait=False)


def threads_for_queries(nq: int) -> None:
    """Give the calling thread's next faiss call one thread for one query, all of them for a batch."""
    faiss.omp_set_num_threads(1 if nq <= 1 else _threads)


def threads_for_builds(n: int) -> int:
    """Give the calling thread's index builds `n` threads (0: as many as batched searches);
    returns the count faiss now reports for this thread."""
    faiss.omp_set_num_threads(max(1, int(n)) if n > 0 else _threads)
    return int(faiss.omp_get_max_threads())


def fan_out(fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """`[fn(x) for x in items]`, spread over the batched-search thread count: the pieces of one
    small query (a segment each), each searched on one thread. faiss releases the GIL while it
    searches, so the pieces overlap; the caller works through the pieces beside the pool's threads.

    Only idle pool threads join in: when other queries keep them busy (many clients at once,
    every core already searching), the caller takes every piece itself rather than queue them.
    """
    global _pool
    if _threads <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(_threads - 1, "shoal-fan-out")
        pool, idle = _pool, _idle_helpers
    wanted = min(_threads, len(items)) - 1
    joined = 0
    while joined < wanted and idle.acquire(blocking=False):
        joined += 1
    results: list[R | None] = [None] * len(items)
    pending = list(range(len(items) - 1, -1, -1))  # list.pop is atomic: each piece is taken once

    def drain() -> None:
        faiss.omp_set_num_threads(1)
        while True:
            try:
                i = pending.pop()
            except IndexError:
                return
            try:
                results[i] = fn(items[i])
            except BaseException:
                pending.clear()  # the call fails: the other threads stop taking pieces
                raise

    def help_out() -> None:
        try:
            drain()
        finally:
            idle.release()

    helpers = [pool.submit(help_out) for _ in range(joined)]
    try:
        drain()
    finally:
        for helper in helpers:
            helper.result()
    return results  # type: ignore[return-value]
