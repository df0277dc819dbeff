"""Many clients at once: q/s, p99 and server CPU per search, Shoal beside the instant server.

    python -m bench.concurrency --rows 100000 --dim 64 --clients 16 --seconds 20 --out bench/results/<dir>

`--clients` separate client processes (pymilvus `MilvusClient.search`, nq=1, top 10) search
for `--seconds` against a `shoal run` holding `--rows` × `--dim` vectors under HNSW (M 16,
efConstruction 100, searched at ef 64), then the same clients against `bench.instant` (the
concurrency floor: what pymilvus and gRPC alone allow on this machine). Server CPU per search
is the server process's user + system time over the phase divided by the searches answered.
The order is instant, shoal, instant, shoal, so a busy spell on a shared machine falls on both.
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


def phase(uri: str, pid: int, clients: int, dim: int, seconds: float, ef: int) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    ready, start, out = ctx.Queue(), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_client, args=(uri, dim, seconds, ef, ready, start, out)) for _ in range(clients)]
    for p in procs:
        p.start()
    for _ in procs:  # every client connected and warm before the clock starts
        ready.get(timeout=600)
    server = psutil.Process(pid)
    cpu0 = sum(server.cpu_times()[:2])
    t0 = time.perf_counter()
    start.set()
    lats = [out.get(timeout=seconds + 300) for _ in procs]
    wall = time.perf_counter() - t0
    cpu = sum(server.cpu_times()[:2]) - cpu0
    for p in procs:
        p.join(60)
    all_lat = np.concatenate([np.array(x) for x in lats])
    return {
        "qps": round(len(all_lat) / wall, 1),
        "p50_ms": round(float(np.percentile(all_lat, 50)) * 1e3, 2),
        "p99_ms": round(float(np.percentile(all_lat, 99)) * 1e3, 2),
        "server_cpu_ms_per_search": round(cpu / len(all_lat) * 1e3, 3),
        "searches": int(len(all_lat)),
    }


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


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.concurrency")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--ef", type=int, default=64)
    ap.add_argument("--out", default="")
    args = ap.parse_args(argv)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    port = free_port()
    instant = subprocess.Popen([sys.executable, "-m", "bench.instant", "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="shoal-conc-") as work:
        shoal = server_for("shoal", work)
        shoal.start()
        try:
            assert shoal.proc is not None
            t0 = time.perf_counter()
            load_shoal(shoal.uri, args.rows, args.dim)
            load_s = time.perf_counter() - t0
            for _ in range(2):
                for system, uri, pid in (("instant", f"http://127.0.0.1:{port}", instant.pid),
                                         ("shoal", shoal.uri, shoal.proc.pid)):
                    r = phase(uri, pid, args.clients, args.dim, args.seconds, args.ef)
                    runs.append({"system": system, **r, "load_avg": os.getloadavg()[0]})
                    print(json.dumps(runs[-1]), flush=True)
        finally:
            shoal.stop()
            instant.terminate()
            instant.wait(10)
    mean = {s: {k: float(np.mean([r[k] for r in runs if r["system"] == s])) for k in runs[0] if k != "system"}
            for s in ("instant", "shoal")}
    summary = {
        "qps_ratio": round(mean["shoal"]["qps"] / mean["instant"]["qps"], 2),
        "cpu_per_search_ratio": round(
            mean["shoal"]["server_cpu_ms_per_search"] / mean["instant"]["server_cpu_ms_per_search"], 2),
        "shoal_p99_ms": round(mean["shoal"]["p99_ms"], 2),
    }
    report = {"started": started, "args": vars(args), "machine": machine(), "versions": versions(),
              "load_s": round(load_s, 1), "runs": runs, "mean": mean, "summary": summary}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "concurrency.json").write_text(text + "\n")


if __name__ == "__main__":
    main()
