"""Runs every phase for one system x workload x index and records numbers or the error.

A phase that fails (unsupported index, server crash, wrong answer shape) is recorded as
``errors[phase]`` and the run goes on. Neighbours: :mod:`bench.measure` (timing loops),
:mod:`bench.systems` (what is measured), :mod:`bench.cli` (what to run).
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from tqdm import tqdm

from bench import measure
from bench.config import CONCURRENCY, BenchConfig, IndexSpec, sweep_values
from bench.measure import Probe
from bench.systems.base import Searcher, System
from bench.workloads import Workload, extra_rows, recall

PHASES = ("load", "serial", "batch", "concurrent", "filtered", "filter_only", "sweep", "scalar_index",
          "resources")
STREAM_PHASES = ("stream_load", "streaming")
LIMIT = 100


def _error(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"


def _phase(record: dict[str, Any], phase: str, fn: Callable[[], dict[str, float]]) -> None:
    try:
        record["metrics"].update(fn())
    except Exception as exc:
        record["errors"][phase] = _error(exc)
        record.setdefault("tracebacks", {})[phase] = traceback.format_exc(limit=4)[-2000:]


def run_index(system: System, w: Workload, spec: IndexSpec, cfg: BenchConfig,
              beside: dict[str, Probe] | None = None) -> dict[str, Any]:
    """All phases of :data:`PHASES` for one freshly loaded collection.

    ``beside``: floor probes (``echo``, ``instant``) timed after each serial query, and the
    ``instant`` one after each batch, so the floors are measured next to this system.
    """
    record: dict[str, Any] = {"workload": w.name, "system": system.name, "index": spec.index_type,
                              "build_params": spec.build_params, "search_params": spec.search_params,
                              "rows": w.n, "dim": w.dim, "metric": w.metric, "metrics": {}, "errors": {}}
    try:
        _phase(record, "load", lambda: system.setup(w, spec, cfg.insert_batch))
        if "load" in record["errors"]:
            for phase in PHASES[1:]:
                record["errors"][phase] = "skipped: load failed"
            return record
        _phase(record, "resources", lambda: {f"after_load_{k}": v for k, v in system.resources().items()})
        search = system.searcher()

        def serial() -> dict[str, float]:
            stats, found = measure.serial(search, w.queries, desc=f"{system.name} serial",
                                          budget_s=cfg.phase_budget_s, beside=beside)
            out = {f"serial_{k}": v for k, v in stats.items()}
            out["recall_at_10"] = recall(found, w.ground_truth)
            return out

        _phase(record, "serial", serial)
        batch_beside = {k: v for k, v in (beside or {}).items() if k == "instant"}
        _phase(record, "batch", lambda: measure.batch(search, w.queries, cfg.batch_nq, cfg.batch_rounds,
                                                          cfg.phase_budget_s, batch_beside))

        def concurrent() -> dict[str, float]:
            return {f"conc{t}_qps": measure.concurrent(system.searcher, w.queries, t, cfg.concurrent_queries,
                                                       cfg.phase_budget_s)
                    for t in tqdm(CONCURRENCY, desc="concurrent", unit="level", leave=False)}

        _phase(record, "concurrent", concurrent)

        _phase(record, "filtered", lambda: _filtered(search, w, cfg))
        _phase(record, "filter_only", lambda: _filter_only(system, w, cfg))

        def sweep() -> dict[str, float]:
            points = []
            queries, truth = w.queries[: cfg.sweep_queries], w.ground_truth[: cfg.sweep_queries]
            try:
                for params in sweep_values(spec):
                    system.tune(params)
                    stats, found = measure.serial(system.searcher(), queries, desc=f"sweep {params}",
                                                  budget_s=cfg.phase_budget_s / 4)
                    points.append({**params, "qps": stats["qps"], "p50_ms": stats["p50_ms"],
                                   "recall_at_10": recall(found, truth)})
            finally:
                system.tune(spec.search_params)
            record["sweep"] = points
            return {"sweep_points": float(len(points))}

        _phase(record, "sweep", sweep)
        if not system.in_process:  # faiss's filters are precomputed masks: nothing to index
            _phase(record, "scalar_index", lambda: _with_scalar_index(system, search, w, cfg))
        _phase(record, "resources", lambda: system.resources())
    finally:
        try:
            system.teardown()
        except Exception as exc:
            record["errors"]["teardown"] = _error(exc)
    return record


def _filtered(search: Searcher, w: Workload, cfg: BenchConfig, prefix: str = "") -> dict[str, float]:
    """1 % and 50 % filtered search: QPS, p50 and recall against the filtered ground truth."""
    out: dict[str, float] = {}
    for f in w.filters:
        truth = w.filtered_truth[f.name]
        stats, found = measure.serial(search, w.queries[: len(truth)], f, desc=f"{prefix}filter {f.name}",
                                      budget_s=cfg.phase_budget_s)
        key = prefix + ("filt1" if f.name == "1%" else "filt50")
        out[f"{key}_qps"] = stats["qps"]
        out[f"{key}_p50_ms"] = stats["p50_ms"]
        out[f"{key}_recall"] = recall(found, truth)
    return out


def _filter_only(system: System, w: Workload, cfg: BenchConfig, prefix: str = "") -> dict[str, float]:
    """Filter-only query (``cat == 7`` with a limit) and ``count(*)`` of ``cat < 50``."""
    eq, half = w.filters
    want_rows = min(LIMIT, int(eq.mask.sum()))
    n = cfg.filter_only_queries
    t0 = time.perf_counter()
    rows = [system.query_filter(eq, LIMIT) for _ in range(n)]
    t1 = time.perf_counter()
    counts = [system.count(half) for _ in range(n)]
    t2 = time.perf_counter()
    return {f"{prefix}query_eq_qps": n / (t1 - t0), f"{prefix}query_eq_ok": float(all(r == want_rows for r in rows)),
            f"{prefix}count_qps": n / (t2 - t1),
            f"{prefix}count_ok": float(all(c == int(half.mask.sum()) for c in counts))}


def _with_scalar_index(system: System, search: Searcher, w: Workload, cfg: BenchConfig) -> dict[str, float]:
    """The filter phases again after an INVERTED index on ``cat`` (the one scalar index type
    milvus-lite builds), keys prefixed ``sidx_``."""
    out = {"sidx_build_s": system.index_scalar("cat")}
    out.update(_filtered(search, w, cfg, "sidx_"))
    out.update(_filter_only(system, w, cfg, "sidx_"))
    return out


def run_streaming(system: System, w: Workload, spec: IndexSpec, cfg: BenchConfig) -> dict[str, Any]:
    """Serial searches while a writer inserts new rows and deletes as many old ones."""
    record: dict[str, Any] = {"workload": w.name, "system": system.name, "index": spec.index_type,
                              "rows": w.n, "dim": w.dim, "metrics": {}, "errors": {}}
    try:
        _phase(record, "stream_load", lambda: {"load_s": system.setup(w, spec, cfg.insert_batch)["load_s"]})
        if "stream_load" in record["errors"]:
            record["errors"]["streaming"] = "skipped: load failed"
            return record

        def streaming() -> dict[str, float]:
            search = system.searcher()
            idle, _ = measure.serial(search, w.queries, desc=f"{system.name} idle")
            b = cfg.stream_batch_rows
            batches = [extra_rows(w, w.n + i * b, w.n + (i + 1) * b) for i in range(cfg.stream_batches)]
            write_error: list[BaseException] = []
            done = threading.Event()
            write_time = [0.0]

            def writer() -> None:
                t0 = time.perf_counter()
                try:
                    for i in range(cfg.stream_batches):
                        system.insert(batches[i])
                        system.delete(list(range(i * b, (i + 1) * b)))
                except BaseException as exc:  # reported as the phase's error
                    write_error.append(exc)
                finally:
                    write_time[0] = time.perf_counter() - t0
                    done.set()

            thread = threading.Thread(target=writer)
            lat: list[float] = []
            thread.start()
            i = 0
            t_start = time.perf_counter()
            while not done.is_set():
                q = w.queries[i % len(w.queries)]
                t0 = time.perf_counter()
                search(q[None, :], None)
                lat.append((time.perf_counter() - t0) * 1e3)
                i += 1
            elapsed = time.perf_counter() - t_start
            thread.join()
            if write_error:
                raise write_error[0]
            lat.sort()
            count = system.count_all()  # type: ignore[attr-defined]
            return {"idle_p50_ms": idle["p50_ms"], "idle_p99_ms": idle["p99_ms"],
                    "stream_p50_ms": measure.percentile(lat, 50), "stream_p99_ms": measure.percentile(lat, 99),
                    "stream_search_qps": len(lat) / elapsed if elapsed else float("nan"),
                    "stream_searches": float(len(lat)),
                    "stream_write_rows_per_s": 2 * b * cfg.stream_batches / write_time[0],
                    "stream_count_ok": float(count == w.n)}

        _phase(record, "streaming", streaming)
    finally:
        try:
            system.teardown()
        except Exception as exc:
            record["errors"]["teardown"] = _error(exc)
    return record
