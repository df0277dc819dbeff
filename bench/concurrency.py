"""Many clients at once: q/s, p99 and server CPU per search, Shoal beside the instant server.

    python -m bench.concurrency --rows 100000 --dim 64 --clients 16 --seconds 20 --out bench/results/<dir>

`--clients` separate client processes (pymilvus `MilvusClient.search`, nq=1, top 10) search
for `--seconds` against a `shoal run` holding `--rows` × `--dim` vectors under HNSW (M 16,
efConstruction 100, searched at ef 64), then the same clients against `bench.instant` (the
concurrency floor: what pymilvus and gRPC alone allow on this machine). Server CPU per search
is the server process's user + system time over the phase divided by the searches answered
(with the system share and the context switches per search beside it).
The order is instant, shoal, instant, shoal, so a busy spell on a shared machine falls on both.

`--shoal NAME=COMMAND` (repeatable) serves the same data from several Shoal builds (each its
own `shoal` command, e.g. a checkout of main beside a branch), every phase taking them in turn:
instant, NAME1, NAME2, instant, NAME1, NAME2. `--batch-seconds S` adds a batch phase per build
(one client, nq=100, top 10) beside in-process faiss HNSW built with the same parameters.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from bench.machine import machine, versions
from bench.plots import write_concurrency_plot
from bench.systems.servers import free_port, server_for

K = 10


def _client(uri: str, dim: int, seconds: float, ef: int, ready: Any, start: Any, out: Any) -> None:
    from pymilvus import MilvusClient

    client = MilvusClient(uri=uri, timeout=60)
    rng = np.random.default_rng(os.getpid())
    queries = rng.standard_normal((256, dim)).astype(np.float32)
    params = {"metric_type": "L2", "params": {"ef": ef}}
    for i in range(10):  # warm the channel
        client.search("bench", data=[queries[i]], limit=K, anns_field="vec", search_params=params)
    ready.put(os.getpid())
    start.wait()
    lat = []
    stop = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < stop:
        t0 = time.perf_counter()
        client.search("bench", data=[queries[i % 256]], limit=K, anns_field="vec", search_params=params)
        lat.append(time.perf_counter() - t0)
        i += 1
    client.close()
    out.put(lat)


def _ctx_switches(pid: int) -> int:
    """Voluntary + involuntary context switches of every thread of `pid` (psutil counts the main
    thread's only)."""
    total = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue  # a thread that ended meanwhile
        for line in text.splitlines():
            if "ctxt_switches:" in line:
                total += int(line.split()[1])
    return total


def phase(uri: str, pid: int | list[int], clients: int, dim: int, seconds: float, ef: int) -> dict[str, float]:
    """`clients` processes searching `uri` for `seconds`; the server's CPU is that of `pid` (or of
    every process in the list: several serving processes on one port)."""
    ctx = mp.get_context("spawn")
    ready, start, out = ctx.Queue(), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_client, args=(uri, dim, seconds, ef, ready, start, out)) for _ in range(clients)]
    for p in procs:
        p.start()
    for _ in procs:  # every client connected and warm before the clock starts
        ready.get(timeout=600)
    pids = pid if isinstance(pid, list) else [pid]
    servers = [psutil.Process(p) for p in pids]
    times0, switches0 = [s.cpu_times() for s in servers], sum(_ctx_switches(p) for p in pids)
    t0 = time.perf_counter()
    start.set()
    lats = [out.get(timeout=seconds + 300) for _ in procs]
    wall = time.perf_counter() - t0
    times, switches = [s.cpu_times() for s in servers], sum(_ctx_switches(p) for p in pids)
    user = sum(t.user - t0.user for t, t0 in zip(times, times0, strict=True))
    system = sum(t.system - t0.system for t, t0 in zip(times, times0, strict=True))
    cpu = user + system
    for p in procs:
        p.join(60)
    all_lat = np.concatenate([np.array(x) for x in lats])
    return {
        "qps": round(len(all_lat) / wall, 1),
        "p50_ms": round(float(np.percentile(all_lat, 50)) * 1e3, 2),
        "p99_ms": round(float(np.percentile(all_lat, 99)) * 1e3, 2),
        "server_cpu_ms_per_search": round(cpu / len(all_lat) * 1e3, 3),
        "server_system_share": round(system / cpu, 3) if cpu else 0.0,
        # context switches of the server's threads per search: GIL and thread-pool hand-offs
        "server_ctx_switches_per_search": round((switches - switches0) / len(all_lat), 2),
        "searches": int(len(all_lat)),
    }


def batch_phase(uri: str, dim: int, seconds: float, ef: int) -> dict[str, float]:
    """One pymilvus client searching nq=100 batches for `seconds`: queries per second."""
    from pymilvus import MilvusClient

    client = MilvusClient(uri=uri, timeout=60)
    queries = np.random.default_rng(7).standard_normal((1000, dim)).astype(np.float32)
    params = {"metric_type": "L2", "params": {"ef": ef}}
    client.search("bench", data=queries[:100], limit=K, anns_field="vec", search_params=params)
    done, i = 0, 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        lo = (i % 10) * 100
        client.search("bench", data=queries[lo : lo + 100], limit=K, anns_field="vec", search_params=params)
        done, i = done + 100, i + 1
    wall = time.perf_counter() - t0
    client.close()
    return {"qps": round(done / wall, 1), "batches": i}


def faiss_batch_phase(rows: int, dim: int, seconds: float, ef: int) -> dict[str, float]:
    """In-process faiss HNSW (M 16, efConstruction 100) over the same vectors, nq=100 batches."""
    import faiss

    data = np.random.default_rng(42).standard_normal((rows, dim)).astype(np.float32)
    index = faiss.IndexHNSWFlat(dim, 16)
    index.hnsw.efConstruction = 100
    index.add(data)
    sp = faiss.SearchParametersHNSW()
    sp.efSearch = ef
    queries = np.random.default_rng(7).standard_normal((1000, dim)).astype(np.float32)
    done, i = 0, 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        lo = (i % 10) * 100
        index.search(queries[lo : lo + 100], K, params=sp)
        done, i = done + 100, i + 1
    return {"qps": round(done / (time.perf_counter() - t0), 1), "batches": i}


def load_shoal(uri: str, rows: int, dim: int) -> None:
    from pymilvus import DataType, MilvusClient

    client = MilvusClient(uri=uri, timeout=600)
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=dim)
    client.create_collection("bench", schema=schema)
    data = np.random.default_rng(42).standard_normal((rows, dim)).astype(np.float32)
    for lo in range(0, rows, 10_000):
        client.insert("bench", [{"id": lo + i, "vec": v} for i, v in enumerate(data[lo : lo + 10_000])])
    client.flush("bench")
    index = client.prepare_index_params()
    index.add_index("vec", index_type="HNSW", metric_type="L2", params={"M": 16, "efConstruction": 100})
    client.create_index("bench", index)
    deadline = time.monotonic() + 1800
    while client.describe_index("bench", "vec")["pending_index_rows"] and time.monotonic() < deadline:
        time.sleep(1)
    client.load_collection("bench")
    client.close()


def _builds(specs: list[str]) -> list[tuple[str, str]]:
    """`NAME=COMMAND` pairs; none given: the `shoal` of this environment, named shoal."""
    out = []
    for spec in specs:
        name, sep, command = spec.partition("=")
        if not sep or not name or not command:
            raise SystemExit(f"--shoal takes NAME=COMMAND, got {spec!r}")
        out.append((name, command))
    return out or [("shoal", "")]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.concurrency")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--ef", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--shoal", action="append", default=[], metavar="NAME=COMMAND")
    ap.add_argument("--batch-seconds", type=float, default=0.0)
    ap.add_argument("--out", default="")
    args = ap.parse_args(argv)
    builds = _builds(args.shoal)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    port = free_port()
    instant = subprocess.Popen([sys.executable, "-m", "bench.instant", "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    runs: list[dict[str, Any]] = []
    load_s: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="shoal-conc-") as work:
        servers = []
        try:
            for name, command in builds:
                saved = os.environ.get("SHOAL_BENCH_SHOAL")
                if command:
                    os.environ["SHOAL_BENCH_SHOAL"] = command
                try:
                    server = server_for("shoal", work)
                    servers.append((name, server))
                    server.start()
                finally:
                    if saved is None:
                        os.environ.pop("SHOAL_BENCH_SHOAL", None)
                    else:
                        os.environ["SHOAL_BENCH_SHOAL"] = saved
                assert server.proc is not None
                t0 = time.perf_counter()
                load_shoal(server.uri, args.rows, args.dim)
                load_s[name] = round(time.perf_counter() - t0, 1)
            targets = [("instant", f"http://127.0.0.1:{port}", instant.pid)]
            targets += [(name, server.uri, server.proc.pid) for name, server in servers if server.proc is not None]
            for _ in range(args.rounds):
                for system, uri, pid in targets:
                    r = phase(uri, pid, args.clients, args.dim, args.seconds, args.ef)
                    runs.append({"system": system, **r, "load_avg": os.getloadavg()[0]})
                    print(json.dumps(runs[-1]), flush=True)
            batches: list[dict[str, Any]] = []
            if args.batch_seconds > 0:
                for _ in range(args.rounds):
                    batches.append({"system": "faiss", **faiss_batch_phase(args.rows, args.dim, args.batch_seconds,
                                                                             args.ef), "load_avg": os.getloadavg()[0]})
                    print(json.dumps(batches[-1]), flush=True)
                    for name, server in servers:
                        batches.append({"system": name, **batch_phase(server.uri, args.dim, args.batch_seconds, args.ef),
                                        "load_avg": os.getloadavg()[0]})
                        print(json.dumps(batches[-1]), flush=True)
        finally:
            for _, server in servers:
                server.stop()
            instant.terminate()
            instant.wait(10)
    systems = ["instant"] + [name for name, _ in builds]
    mean = {s: {k: float(np.mean([r[k] for r in runs if r["system"] == s])) for k in runs[0] if k != "system"}
            for s in systems}
    summaries = {}
    for name, _ in builds:
        summaries[name] = {
            "qps_ratio": round(mean[name]["qps"] / mean["instant"]["qps"], 2),
            "cpu_per_search_ratio": round(
                mean[name]["server_cpu_ms_per_search"] / mean["instant"]["server_cpu_ms_per_search"], 2),
            f"{name}_p99_ms": round(mean[name]["p99_ms"], 2),
        }
        if batches:
            faiss_qps = float(np.mean([b["qps"] for b in batches if b["system"] == "faiss"]))
            own = float(np.mean([b["qps"] for b in batches if b["system"] == name]))
            summaries[name]["batch_qps_vs_faiss"] = round(own / faiss_qps, 2)
    summary = summaries[builds[0][0]] if len(builds) == 1 else summaries
    report = {"started": started, "args": vars(args), "machine": machine(), "versions": versions(),
              "load_s": load_s if len(builds) > 1 else load_s[builds[0][0]], "runs": runs, "batches": batches,
              "mean": mean, "summary": summary}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "concurrency.json").write_text(text + "\n")
        write_concurrency_plot(report, out)


if __name__ == "__main__":
    main()
