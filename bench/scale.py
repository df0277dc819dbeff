"""Issue 21 at scale: ingest, index build, search, memory and restart of one large collection.

    python -m bench.scale --rows 10m --dim 128 --indexes HNSW,IVF_SQ8 --systems shoal,faiss \
        --data-root /tmp/scale-data --out bench/results/<date>-10m

Rows live in memory-mapped files (:mod:`bench.scale_data`). Each server system (``shoal``,
``milvus-lite``) gets one process and one collection: every row through pymilvus in batches
from ``--insert-threads`` clients, flush, then per index: create it, wait for describe_index to
report it finished (progress logged), load, a serial nq=1 sweep (ef / nprobe) with the echo
floor timed beside every query, memory and disk; after the first index the server is killed
(SIGKILL, then SIGTERM) and timed until a search answers over the whole collection again.
The index is dropped and the server restarted before the next index, so each index's peak
memory belongs to it. ``faiss`` builds the same index in-process with ``--threads`` threads
(the build ceiling) and runs the same sweep. Systems run one at a time. Results are written
after every phase, so a run cut short still leaves its figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import shlex
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import psutil

from bench import measure
from bench.config import TOP_K, IndexSpec, parse_size
from bench.echo import EchoProbe
from bench.machine import machine, versions
from bench.scale_data import ScaleData, open_rows, prepare
from bench.systems.milvus import COLLECTION, MilvusSystem, create_bench_collection
from bench.systems.servers import ServerProcess, dir_size_mb
from bench.workloads import recall
from shoal.index.dense import TRAIN_ROWS

INDEX_NAME = "vec_idx"
HNSW_SWEEP = (32, 64, 128, 256)
IVF_SWEEP = (8, 16, 32, 64, 128)


def log(msg: str) -> None:
    print(f"{dt.datetime.now(dt.UTC):%H:%M:%S} {msg}", flush=True)


def specs(args: argparse.Namespace) -> list[IndexSpec]:
    out = []
    for name in args.indexes:
        if name == "HNSW":
            out.append(IndexSpec("HNSW", {"M": args.hnsw_m, "efConstruction": args.ef_construction}, {"ef": 64}))
        elif name in ("IVF_SQ8", "IVF_FLAT"):
            out.append(IndexSpec(name, {"nlist": args.nlist}, {"nprobe": 16}))
        elif name == "IVF_PQ":
            out.append(IndexSpec(name, {"nlist": args.nlist, "m": args.dim // 8, "nbits": 8}, {"nprobe": 16}))
        else:
            raise SystemExit(f"bench.scale: index {name} is not supported here")
    return out


def sweep_params(spec: IndexSpec) -> list[dict[str, int]]:
    if spec.index_type == "HNSW":
        return [{"ef": v} for v in HNSW_SWEEP]
    return [{"nprobe": v} for v in IVF_SWEEP if v <= spec.build_params["nlist"]]


class Sampler:
    """Every ``period`` seconds: the watched server's RSS and the machine's available memory."""

    def __init__(self, period: float = 2.0) -> None:
        self.samples: list[dict[str, Any]] = []
        self.pid: int | None = None
        self.phase = "start"
        self._t0 = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(period,), daemon=True)
        self._thread.start()

    def _run(self, period: float) -> None:
        while not self._stop.wait(period):
            rss = float("nan")
            if self.pid is not None:
                try:
                    rss = psutil.Process(self.pid).memory_info().rss / 1e6
                except psutil.Error:
                    pass  # between a kill and the restart
            self.samples.append({"t": round(time.monotonic() - self._t0, 1), "phase": self.phase,
                                 "server_rss_mb": rss, "self_rss_mb": psutil.Process().memory_info().rss / 1e6,
                                 "available_mb": psutil.virtual_memory().available / 1e6,
                                 "load1": os.getloadavg()[0]})

    def stop(self) -> None:
        self._stop.set()

    def min_available_mb(self) -> float:
        return min((s["available_mb"] for s in self.samples), default=float("nan"))


def _insert_worker(uri: str, root: str, rows: int, dim: int, seed: int, batch: int, first: int, step: int,
                   cap_s: float, go: Any, report: Any) -> None:
    """One client process: batches ``first``, ``first + step``, ... of the rows, each reported when
    done; it connects, says it is ready and waits for ``go`` (process start is not timed)."""
    from pymilvus import MilvusClient

    data = open_rows(Path(root), rows, dim, seed)
    client = MilvusClient(uri=uri, timeout=600)
    try:
        report.put(("ready", 0))
        go.wait()
        deadline = time.monotonic() + cap_s
        for lo in range(first * batch, rows, step * batch):
            if time.monotonic() > deadline:
                raise TimeoutError("ingest passed its time cap")
            hi = min(rows, lo + batch)
            client.insert(COLLECTION, data.rows_of(lo, hi))
            report.put(("rows", hi - lo))
    except BaseException as exc:  # the parent reports it and stops
        report.put(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        client.close()
        report.put(("done", 0))


def ingest(uri: str, data: ScaleData, batch: int, procs: int, cap_s: float) -> dict[str, Any]:
    """Every row through pymilvus from ``procs`` client processes (one client's row encoding
    takes a whole core of this process's GIL; the server is not the limit)."""
    ctx = mp.get_context("spawn")  # the bench process has threads and gRPC channels: no fork
    report, go = ctx.Queue(), ctx.Event()
    workers = [ctx.Process(target=_insert_worker, args=(uri, str(data.root), data.rows, data.dim, data.seed, batch,
                                                        k, procs, cap_s, go, report), daemon=True)
               for k in range(procs)]
    for w in workers:
        w.start()
    timeline: list[tuple[float, int]] = []
    done, running, ready, error = 0, procs, 0, ""
    step = max(data.rows // 10, 1)
    t0 = time.perf_counter()
    while running:
        kind, msg = report.get(timeout=cap_s + 600)
        if kind == "ready":
            ready += 1
            if ready == procs:
                t0 = time.perf_counter()
                go.set()
        elif kind == "done":
            running -= 1
        elif kind == "error":
            error = str(msg)
            for w in workers:
                w.terminate()
            break
        else:
            done += int(msg)
            timeline.append((time.perf_counter() - t0, done))
            if done // step != (done - msg) // step:
                log(f"ingest {done:,} rows, {done / timeline[-1][0]:,.0f} rows/s")
    for w in workers:
        w.join(timeout=30)
    total = time.perf_counter() - t0
    if error:
        raise RuntimeError(f"ingest stopped at {done:,} rows: {error}")
    window = max(data.rows // 10, batch)
    rates, last_t, mark = [], 0.0, window
    for t, rows in timeline:
        while rows >= mark:
            rates.append(window / max(t - last_t, 1e-9))
            last_t, mark = t, mark + window
    return {"rows": data.rows, "seconds": total, "rows_per_s": data.rows / total, "batch": batch,
            "client_processes": procs, "window_rows": window, "window_rows_per_s": rates,
            "slowest_window_rows_per_s": min(rates) if rates else float("nan")}


def wait_index(client: Any, cap_s: float, t0: float) -> dict[str, Any]:
    """Poll describe_index until the index is finished; progress every few seconds."""
    progress = []
    last_log = 0.0
    while True:
        info = client.describe_index(COLLECTION, INDEX_NAME)
        now = time.perf_counter() - t0
        point = {"t": round(now, 1), "indexed_rows": int(info.get("indexed_rows", 0)),
                 "total_rows": int(info.get("total_rows", 0)), "state": str(info.get("state", ""))}
        progress.append(point)
        if now - last_log >= 30:
            log(f"index build {point['indexed_rows']:,} / {point['total_rows']:,} rows, {point['state']}, {now:.0f} s")
            last_log = now
        if point["state"] == "Finished":
            return {"build_s": now, "progress": progress}
        if point["state"] == "Failed":
            raise RuntimeError(f"index build failed: {info.get('index_state_fail_reason', info)}")
        if now > cap_s:
            raise TimeoutError(f"index not finished within the {cap_s:.0f} s cap ({point})")
        time.sleep(min(2.0, 0.2 + now / 50))  # short builds are timed to a fraction of a second


def index_dirs_mb(data_dir: Path) -> float:
    return sum(dir_size_mb(p) for p in data_dir.rglob("*.index") if p.is_dir())


def sweep(search_for: Callable[[dict[str, int]], measure.Searcher], spec: IndexSpec, data: ScaleData,
          budget_s: float, beside: dict[str, measure.Probe] | None) -> list[dict[str, float]]:
    points = []
    for params in sweep_params(spec):
        stats, found = measure.serial(search_for(params), data.queries, desc=f"sweep {params}",
                                      budget_s=budget_s, beside=beside)
        point = {**params, **{k: stats[k] for k in ("qps", "queries", "p50_ms", "p90_ms", "p99_ms")},
                 "recall_at_10": recall(found, data.truth)}
        if "echo_p50_ms" in stats:
            point["echo_p50_ms"] = stats["echo_p50_ms"]
        log(f"  {params}: p50 {point['p50_ms']:.2f} ms p99 {point['p99_ms']:.2f} ms "
            f"recall {point['recall_at_10']:.3f}")
        points.append(point)
    return points


def time_to_serve(server: ServerProcess, data: ScaleData, sig: int) -> dict[str, Any]:
    """Kill with ``sig``, start again on the same data; seconds until a search over every row answers."""
    from pymilvus import MilvusClient

    t0 = time.perf_counter()
    ready_s = server.restart(sig)
    client = MilvusClient(uri=server.uri, timeout=600)
    loaded_itself = True
    try:
        while True:
            try:
                count = int(client.query(COLLECTION, filter="", output_fields=["count(*)"])[0]["count(*)"])
                hits = client.search(COLLECTION, data=[data.queries[0]], limit=TOP_K, anns_field="vec")
                if count == data.rows and len(hits[0]) == TOP_K:
                    break
            except Exception as exc:
                if "not loaded" not in str(exc).lower():
                    raise
                loaded_itself = False
                client.load_collection(COLLECTION)
            if time.perf_counter() - t0 > 600:
                raise TimeoutError("not serving the whole collection 600 s after the restart")
            time.sleep(0.2)
    finally:
        client.close()
    return {"signal": signal.Signals(sig).name, "process_ready_s": ready_s,
            "serving_s": time.perf_counter() - t0, "loaded_by_itself": loaded_itself}


def run_server(name: str, data: ScaleData, args: argparse.Namespace, rec: dict[str, Any],
               save: Callable[[], None], sampler: Sampler, echo: EchoProbe) -> None:

    server = ServerProcess(name, args.workdir)
    port = args.port + (0 if name == "shoal" else 10) if args.port else 0
    sampler.phase = f"{name} start"
    server.start(port, port + 1 if port else 0)
    system = MilvusSystem(server)
    system.metric = "L2"
    try:
        sampler.pid = server.proc.pid if server.proc else None
        rec["server_start_s"] = server.start_s
        client = system._connect()
        create_bench_collection(client, data.dim)
        sampler.phase = f"{name} ingest"
        log(f"{name}: ingest {data.rows:,} rows")
        rec["ingest"] = ingest(server.uri, data, args.insert_batch, args.insert_procs, args.cap_s)
        save()
        sampler.phase = f"{name} flush"
        t0 = time.perf_counter()
        client.flush(COLLECTION)
        rec["flush_s"] = time.perf_counter() - t0
        rec["after_flush"] = server.resources()
        log(f"{name}: flushed in {rec['flush_s']:.1f} s, {rec['after_flush']}")
        save()
        for i, spec in enumerate(specs(args)):
            idx: dict[str, Any] = rec["indexes"].setdefault(spec.index_type, {"build_params": spec.build_params})
            try:
                if i:
                    sampler.phase = f"{name} drop + restart"
                    client.release_collection(COLLECTION)
                    client.drop_index(COLLECTION, INDEX_NAME)
                    server.restart(signal.SIGTERM)
                    sampler.pid = server.proc.pid if server.proc else None
                _one_index(name, server, system, client, spec, data, args, idx, save, sampler, echo, first=i == 0)
            except Exception as exc:
                idx["error"] = f"{type(exc).__name__}: {' '.join(str(exc).split())[:400]}"
                idx["traceback"] = traceback.format_exc(limit=5)[-2000:]
                log(f"{name} {spec.index_type}: {idx['error']}")
                if server.proc is None or server.proc.poll() is not None:
                    raise
            save()
    finally:
        sampler.pid = None
        rec["log_tail"] = server.log_tail(2000)
        system.teardown()


def _one_index(name: str, server: ServerProcess, system: MilvusSystem, client: Any, spec: IndexSpec,
               data: ScaleData, args: argparse.Namespace, idx: dict[str, Any], save: Callable[[], None],
               sampler: Sampler, echo: EchoProbe, first: bool) -> None:
    from pymilvus import MilvusClient

    sampler.phase = f"{name} build {spec.index_type}"
    log(f"{name}: build {spec.index_type} {spec.build_params}")
    params = MilvusClient.prepare_index_params()
    params.add_index(field_name="vec", index_type=spec.index_type, metric_type="L2", index_name=INDEX_NAME,
                     params=dict(spec.build_params))
    t0 = time.perf_counter()
    client.create_index(COLLECTION, params, sync=False)
    idx.update(wait_index(client, args.cap_s, t0))
    log(f"{name}: {spec.index_type} built in {idx['build_s']:.1f} s")
    save()
    sampler.phase = f"{name} load {spec.index_type}"
    t0 = time.perf_counter()
    client.load_collection(COLLECTION)
    idx["load_s"] = time.perf_counter() - t0
    idx["after_load"] = {**server.resources(), "index_mb": index_dirs_mb(server.data_dir)}
    log(f"{name}: loaded in {idx['load_s']:.1f} s, {idx['after_load']}")
    save()
    sampler.phase = f"{name} search {spec.index_type}"

    def search_for(p: dict[str, int]) -> measure.Searcher:
        system.tune(p)
        return system.searcher()

    # the first pass after a build reads the index files from disk where the page cache lost them
    # (a 10M HNSW is 6.5 GB): it is reported apart, and the sweep then measures a warm index
    stats, found = measure.serial(search_for(sweep_params(spec)[-1]), data.queries, desc="first pass",
                                  budget_s=args.phase_seconds * 3)
    idx["first_pass"] = {**sweep_params(spec)[-1], **{k: stats[k] for k in ("queries", "p50_ms", "p99_ms")},
                         "recall_at_10": recall(found, data.truth)}
    log(f"{name}: first pass {idx['first_pass']}")
    idx["sweep"] = sweep(search_for, spec, data, args.phase_seconds, {"echo": echo})
    idx["after_search"] = server.resources()
    save()
    if first and not args.no_restart:
        for sig in (signal.SIGKILL, signal.SIGTERM):
            sampler.phase = f"{name} restart {signal.Signals(sig).name}"
            res = time_to_serve(server, data, sig)
            sampler.pid = server.proc.pid if server.proc else None
            idx.setdefault("restart", []).append(res)
            log(f"{name}: restart after {res['signal']}: serving in {res['serving_s']:.1f} s")
            save()
        idx["after_restart"] = server.resources()


def faiss_index(spec: IndexSpec, data: ScaleData,
                progress: Callable[[int, float], None]) -> tuple[Any, float, float]:
    """The same index built in-process; returns it, training and adding seconds.
    ``progress(rows, seconds)`` after every million rows added to an IVF index (a build cut
    short still tells how far it got), once for HNSW."""
    t0 = time.perf_counter()
    if spec.index_type == "HNSW":
        index = faiss.IndexHNSWFlat(data.dim, spec.build_params["M"], faiss.METRIC_L2)
        index.hnsw.efConstruction = spec.build_params["efConstruction"]
    else:
        nlist = spec.build_params["nlist"]
        code = {"IVF_SQ8": "SQ8", "IVF_FLAT": "Flat"}.get(spec.index_type, f"PQ{spec.build_params.get('m')}")
        index = faiss.index_factory(data.dim, f"IVF{nlist},{code}", faiss.METRIC_L2)
        # Shoal trains each segment's quantizers on TRAIN_ROWS sampled rows: the same here
        rng = np.random.default_rng(0)
        pick = np.sort(rng.choice(data.rows, min(TRAIN_ROWS, data.rows), replace=False))
        faiss.extract_index_ivf(index).cp.min_points_per_centroid = 1
        index.train(np.ascontiguousarray(data.vectors[pick]))
    t1 = time.perf_counter()
    # An HNSW graph is only faiss's own when every row goes in one add(): faiss inserts one
    # call's rows level by level, and a graph grown over many calls is worse (10M x 128 in ten
    # 1M-row calls: recall@10 0.59 at ef 128, one call 0.83). IVF lists do not care how rows arrive.
    step = data.rows if spec.index_type == "HNSW" else 1_000_000
    for lo in range(0, data.rows, step):
        index.add(np.ascontiguousarray(data.vectors[lo: lo + step]))
        progress(min(data.rows, lo + step), time.perf_counter() - t0)
    return index, t1 - t0, time.perf_counter() - t1


def faiss_index_mb(index: Any) -> float:
    if isinstance(index, faiss.IndexHNSW):
        h = index.hnsw
        graph = h.neighbors.size() * 4 + h.offsets.size() * 8 + h.levels.size() * 4
        return (index.ntotal * index.d * 4 + graph) / 1e6
    ivf = faiss.extract_index_ivf(index)
    return (ivf.ntotal * (ivf.code_size + 8) + ivf.nlist * ivf.d * 4) / 1e6


def run_faiss(data: ScaleData, args: argparse.Namespace, rec: dict[str, Any], save: Callable[[], None],
              sampler: Sampler) -> None:
    for spec in specs(args):
        idx: dict[str, Any] = rec["indexes"].setdefault(spec.index_type, {"build_params": spec.build_params})
        try:
            sampler.phase = f"faiss build {spec.index_type}"
            faiss.omp_set_num_threads(args.threads)
            log(f"faiss: build {spec.index_type} {spec.build_params} with {args.threads} threads")
            def progress(rows: int, seconds: float, idx: dict[str, Any] = idx, kind: str = spec.index_type) -> None:
                idx.setdefault("add_progress", []).append({"rows": rows, "s": seconds})
                log(f"faiss {kind}: {rows:,} rows added, {seconds:.0f} s")
                save()

            index, train_s, add_s = faiss_index(spec, data, progress)
            idx.update(build_s=train_s + add_s, train_s=train_s, add_s=add_s, threads=args.threads,
                       index_mb=faiss_index_mb(index), process_rss_mb=psutil.Process().memory_info().rss / 1e6)
            log(f"faiss: {spec.index_type} built in {idx['build_s']:.1f} s")
            save()
            sampler.phase = f"faiss search {spec.index_type}"
            faiss.omp_set_num_threads(1)  # nq=1: one thread, as Shoal's searches

            def search_for(p: dict[str, int], index: Any = index) -> measure.Searcher:
                if "ef" in p:
                    index.hnsw.efSearch = p["ef"]
                else:
                    faiss.extract_index_ivf(index).nprobe = p["nprobe"]

                def search(vectors: np.ndarray, flt: Any) -> list[list[int]]:
                    _, ids = index.search(np.ascontiguousarray(vectors, dtype=np.float32), TOP_K)
                    return [[int(i) for i in row if i >= 0] for row in ids]

                return search

            idx["sweep"] = sweep(search_for, spec, data, args.phase_seconds, None)
            del index
        except Exception as exc:
            idx["error"] = f"{type(exc).__name__}: {' '.join(str(exc).split())[:400]}"
            log(f"faiss {spec.index_type}: {idx['error']}")
        save()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", default="1m", help="rows, e.g. 200k, 1m, 10m")
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--indexes", default="HNSW,IVF_SQ8")
    p.add_argument("--systems", default="shoal,faiss,milvus-lite", help="run in this order")
    p.add_argument("--queries", type=int, default=500)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--hnsw-m", type=int, default=16)
    p.add_argument("--ef-construction", type=int, default=100)
    p.add_argument("--nlist", type=int, default=0, help="IVF lists (0: 4096 from 4M rows up, else 1024)")
    p.add_argument("--threads", type=int, default=2, help="faiss build threads (Shoal builds with every CPU)")
    p.add_argument("--insert-batch", type=int, default=10_000)
    p.add_argument("--insert-procs", type=int, default=2, help="pymilvus client processes inserting at once")
    p.add_argument("--phase-seconds", type=float, default=60.0, help="time budget of each sweep point")
    p.add_argument("--cap-s", type=float, default=7200.0, help="a server's ingest or index build stops after this")
    p.add_argument("--port", type=int, default=0, help="shoal's port (+1 its HTTP port, +10 milvus-lite); 0: free")
    p.add_argument("--no-restart", action="store_true")
    p.add_argument("--data-root", default="/tmp/shoal-scale-data")
    p.add_argument("--workdir", default="/tmp/shoal-scale-servers")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    a.command = "python -m bench.scale " + " ".join(shlex.quote(x) for x in (argv if argv is not None else sys.argv[1:]))
    a.rows = parse_size(a.rows)
    a.indexes = [i.strip().upper() for i in a.indexes.split(",") if i.strip()]
    a.systems = [s.strip() for s in a.systems.split(",") if s.strip()]
    a.nlist = a.nlist or (4096 if a.rows >= 4_000_000 else 1024)
    return a


def main(argv: list[str] | None = None) -> int:
    from bench import scale_report

    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    params = {k: v for k, v in vars(args).items() if k != "command"}
    results: dict[str, Any] = {"meta": {"command": args.command, "started": dt.datetime.now(dt.UTC).isoformat(),
                                        "machine": machine(), "versions": versions(), "params": params},
                               "systems": {}, "memory": []}
    sampler = Sampler()

    def save() -> None:
        results["memory"] = sampler.samples
        results["meta"]["min_available_mb"] = sampler.min_available_mb()
        (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
        (out / "README.md").write_text(scale_report.render(results))
        scale_report.write_plots(results, out)

    sampler.phase = "data"
    log(f"data: {args.rows:,} x {args.dim} under {args.data_root}")
    data = prepare(Path(args.data_root), args.rows, args.dim, args.seed, args.queries, log)
    results["data"] = {"rows": data.rows, "dim": data.dim, "seed": data.seed, "queries": len(data.queries),
                       "raw_mb": data.raw_mb, "gen_s": data.gen_s, "truth_s": data.truth_s, "dir": str(data.root)}
    log(f"data ready (generated in {data.gen_s:.0f} s, truth in {data.truth_s:.0f} s)")
    save()
    echo = EchoProbe(args.dim * 4 + 128)
    try:
        for name in args.systems:
            rec = results["systems"].setdefault(name, {"indexes": {}})
            try:
                if name == "faiss":
                    run_faiss(data, args, rec, save, sampler)
                else:
                    run_server(name, data, args, rec, save, sampler, echo)
            except Exception as exc:
                rec["error"] = f"{type(exc).__name__}: {' '.join(str(exc).split())[:400]}"
                rec["traceback"] = traceback.format_exc(limit=6)[-3000:]
                log(f"{name}: {rec['error']}")
            save()
    finally:
        echo.close()
        results["meta"]["finished"] = dt.datetime.now(dt.UTC).isoformat()
        sampler.stop()
        save()
    log(f"results in {out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
