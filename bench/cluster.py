"""What the cluster costs: the same workload through `shoal cluster run`'s proxy and a standalone
`shoal run`, in one run on one machine.

    python -m bench.cluster [--rows 20000] [--dim 128] [--batch 1000] [--searches 300] [--rounds 3]
                            [--index HNSW|FLAT|IVF_FLAT]

Starts both on free ports, inserts the same rows into each (timed: rows/s, batches of
`--batch`), flushes, waits for the index, then sends each query to both back to back (which
goes first alternates, so machine noise falls on both alike) and reports serial search p50 and
insert rows/s as ratios cluster / standalone. Not part of CI: a number for the notes.
"""

from __future__ import annotations

import argparse
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from pymilvus import DataType, MilvusClient

_STANDALONE = re.compile(r"Shoal listening on [\d.]+:(\d+)")
_CLUSTER = re.compile(r"Shoal cluster listening on [\d.]+:(\d+)")
INDEX_PARAMS = {"HNSW": ({"M": 16, "efConstruction": 200}, {"ef": 64}), "FLAT": ({}, {}),
                "IVF_FLAT": ({"nlist": 128}, {"nprobe": 16})}


def _start(cmd: list[str], log: Path, ready: re.Pattern[str], timeout_s: float) -> tuple[subprocess.Popen[bytes], int]:
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = ready.search(log.read_text(errors="replace"))
        if found:
            return proc, int(found.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(log.read_text(errors="replace")[-3000:])


def _insert(client: MilvusClient, vectors: np.ndarray, batch: int, index: str) -> float:
    """Create, insert (timed), flush, index; returns insert rows/s."""
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=vectors.shape[1])
    params = client.prepare_index_params()
    params.add_index("vector", index_type=index, metric_type="L2", params=INDEX_PARAMS[index][0])
    client.create_collection("bench", schema=schema, index_params=params, consistency_level="Bounded")
    rows = [{"id": i, "vector": v} for i, v in enumerate(vectors.tolist())]
    start = time.perf_counter()
    for at in range(0, len(rows), batch):
        client.insert("bench", rows[at:at + batch])
    elapsed = time.perf_counter() - start
    client.flush("bench")
    deadline = time.monotonic() + 900  # time only finished indexes: a build in flight skews one side
    while time.monotonic() < deadline:
        info = client.describe_index("bench", "vector")
        if info.get("state") == "Finished" and int(info.get("indexed_rows", 0)) >= len(vectors):
            break
        if info.get("state") == "Finished" and int(info.get("total_rows", 0)) == 0:
            # The cluster's proxy does not report index progress yet: FLAT needs no build; for
            # the others the first rounds may search a build in flight (say so with the figures).
            print("note: index progress not reported; not waiting for the build", flush=True)
            break
        time.sleep(1)
    count = client.query("bench", filter="", output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"]
    if count != len(vectors):
        raise RuntimeError(f"expected {len(vectors)} rows, found {count}")
    return len(vectors) / elapsed


def _paired(clients: dict[str, MilvusClient], queries: np.ndarray, index: str, level: str) -> dict[str, list[float]]:
    """Serial searches, each sent to both back to back; `level` "" uses the collection's own."""
    times: dict[str, list[float]] = {name: [] for name in clients}
    order = list(clients)
    params = INDEX_PARAMS[index][1]
    extra = {"consistency_level": level} if level else {}
    for i, q in enumerate(queries.tolist()):
        for name in order if i % 2 == 0 else order[::-1]:
            t = time.perf_counter()
            clients[name].search("bench", [q], limit=10, search_params={"params": params}, **extra)
            times[name].append(time.perf_counter() - t)
    return times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=20_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--searches", type=int, default=300)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--index", choices=sorted(INDEX_PARAMS), default="HNSW")
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally below: stop both servers
    rng = np.random.default_rng(7)
    vectors = rng.random((args.rows, args.dim), dtype=np.float32)
    queries = rng.random((args.searches, args.dim), dtype=np.float32)
    with tempfile.TemporaryDirectory(prefix="shoal-cluster-bench-") as tmp:
        base = Path(tmp)
        procs = [
            _start([sys.executable, "-m", "shoal.cli", "run", "--data", str(base / "standalone"), "--host",
                    "127.0.0.1", "--port", "0", "--http-port", "0"], base / "standalone.log", _STANDALONE, 120),
            _start([sys.executable, "-m", "shoal.cli", "cluster", "run", "--data", str(base / "cluster"), "--port", "0",
                    "--http-port", "0"], base / "cluster.log", _CLUSTER, 600),
        ]
        try:
            clients = {name: MilvusClient(uri=f"http://127.0.0.1:{port}", timeout=120)
                       for name, (_, port) in zip(("standalone", "cluster"), procs, strict=True)}
            rate = {name: _insert(c, vectors, args.batch, args.index) for name, c in clients.items()}
            _paired(clients, queries[:30], args.index, "")  # warm up
            # the collection is Bounded (pymilvus's default); Strong also asks the owner's position
            levels = {"default (Bounded)": "", "Strong": "Strong"}
            every = {(level, name): [] for level in levels for name in clients}
            for r in range(args.rounds):
                for level, value in levels.items():
                    times = _paired(clients, queries, args.index, value)
                    for name in clients:
                        every[level, name] += times[name]
                    p50 = {name: statistics.median(t) * 1000 for name, t in times.items()}
                    print(f"round {r + 1}, {level}: p50 standalone {p50['standalone']:.3f} ms, "
                          f"cluster {p50['cluster']:.3f} ms", flush=True)
            print(f"{args.rows} x {args.dim} {args.index}, batches of {args.batch}")
            for level in levels:
                p50 = {name: statistics.median(every[level, name]) * 1000 for name in clients}
                print(f"serial search p50 {level}, cluster / standalone: x{p50['cluster'] / p50['standalone']:.2f} "
                      f"({p50['cluster']:.3f} / {p50['standalone']:.3f} ms)")
            print(f"insert rows/s, cluster / standalone: x{rate['cluster'] / rate['standalone']:.2f} "
                  f"({rate['cluster']:.0f} / {rate['standalone']:.0f})")
        finally:
            stop_all([proc for proc, _ in procs])
    return 0


def stop_all(procs: list[subprocess.Popen]) -> None:
    """SIGTERM every server, then wait for each (SIGKILL after 120 s)."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    raise SystemExit(main())
