"""Insert rows/s through pymilvus with the WAL fsynced before every acknowledgement
(`wal_fsync: always`) and in the background (`batch`), on one machine in one run.

    python -m bench.wal_fsync --seconds 20 --out bench/results/<dir>

Each policy gets a fresh `shoal run` (the policy set through `SHOAL_WAL_FSYNC`) and is measured
twice, in the order always, batch, batch, always, so a busy spell on a shared machine falls on
both. Per policy and batch size: rows/s and the p50/p99 latency of one insert call, with one
client and with 4 client threads (their appends share fsyncs: group commit).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.machine import machine, versions
from bench.systems.servers import server_for

POLICIES = ("always", "batch", "batch", "always")
SHAPES = ((100, 1), (100, 4), (5000, 1))  # (rows per insert, client threads)


def _insert_loop(uri: str, name: str, rows: int, seconds: float, first_id: int, out: list[float]) -> None:
    from pymilvus import MilvusClient

    client = MilvusClient(uri=uri)
    rng = np.random.default_rng(first_id)
    vecs = rng.random((rows, 128), dtype=np.float32)
    next_id = first_id
    stop = time.perf_counter() + seconds
    while time.perf_counter() < stop:
        data = [{"id": next_id + i, "vec": v} for i, v in enumerate(vecs)]
        t0 = time.perf_counter()
        client.insert(name, data)
        out.append(time.perf_counter() - t0)
        next_id += rows
    client.close()


def measure(policy: str, seconds: float, workdir: str) -> list[dict[str, Any]]:
    from pymilvus import DataType, MilvusClient

    os.environ["SHOAL_WAL_FSYNC"] = policy
    server = server_for("shoal", workdir)
    server.start()
    results = []
    try:
        client = MilvusClient(uri=server.uri)
        for n, (rows, threads) in enumerate(SHAPES):
            name = f"w{n}"
            schema = client.create_schema()
            schema.add_field("id", DataType.INT64, is_primary=True)
            schema.add_field("vec", DataType.FLOAT_VECTOR, dim=128)
            client.create_collection(name, schema=schema)
            lat: list[list[float]] = [[] for _ in range(threads)]
            workers = [
                threading.Thread(target=_insert_loop, args=(server.uri, name, rows, seconds, t * 10**9, lat[t]))
                for t in range(threads)
            ]
            t0 = time.perf_counter()
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            wall = time.perf_counter() - t0
            all_lat = np.array([x for part in lat for x in part])
            results.append({
                "policy": policy, "rows_per_insert": rows, "threads": threads, "inserts": len(all_lat),
                "rows_per_s": round(len(all_lat) * rows / wall, 1),
                "p50_ms": round(float(np.percentile(all_lat, 50)) * 1e3, 2),
                "p99_ms": round(float(np.percentile(all_lat, 99)) * 1e3, 2),
            })
        client.close()
    finally:
        server.stop()
        os.environ.pop("SHOAL_WAL_FSYNC", None)
    return results


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.wal_fsync")
    ap.add_argument("--seconds", type=float, default=20.0, help="per policy, batch size and repeat")
    ap.add_argument("--out", default="")
    args = ap.parse_args(argv)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with tempfile.TemporaryDirectory(prefix="shoal-fsync-") as work:
        runs = [r for policy in POLICIES for r in measure(policy, args.seconds, work)]
    summary = []
    for rows, threads in SHAPES:
        per = {}
        for policy in ("always", "batch"):
            mine = [r for r in runs if r["policy"] == policy and r["rows_per_insert"] == rows and r["threads"] == threads]
            per[policy] = {
                "rows_per_s": round(float(np.mean([r["rows_per_s"] for r in mine])), 1),
                "p50_ms": round(float(np.mean([r["p50_ms"] for r in mine])), 2),
            }
        ratio = per["always"]["rows_per_s"] / per["batch"]["rows_per_s"]
        summary.append({"rows_per_insert": rows, "threads": threads, **per, "always_over_batch": round(ratio, 2)})
    report = {
        "started": started, "machine": machine(), "versions": versions(), "load_avg": os.getloadavg(),
        "runs": runs, "summary": summary,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "wal_fsync.json").write_text(text + "\n")


if __name__ == "__main__":
    main()
