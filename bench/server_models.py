"""Which serving model suits a Python search handler: gRPC's thread pool, grpc.aio or two processes, measured.

    python -m bench.server_models --clients 16 --seconds 10 --rounds 2 --work-us 0,60,200 --out bench/results/<dir>

Each model serves Connect and Search as `bench.instant` does (made-up hits), but every search
first spends `--work-us` microseconds in Python (dictionary reads: the kind of work Shoal's
handler does) and then runs one single-thread faiss HNSW search over 20,000 × 64 vectors, which
lets go of the GIL as Shoal's searches do. Models:

- `threads`: `grpc.server` with a 10-thread pool (how `shoal run` and `bench.instant` serve);
- `aio`: `grpc.aio.server`, the handler run on the event loop's one thread;
- `2procs`: two `threads` processes listening on the same port (`SO_REUSEPORT`: the kernel
  spreads the clients' connections over them), each with its own GIL.

The same `--clients` pymilvus processes as `bench.concurrency` (its `phase`) search each model in
turn; the report gives q/s, p99 and the server's CPU time per search for every (model, work).
Issue 21 asked whether grpc.aio, or several serving processes, would cut Shoal's server CPU per
search under many clients.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from concurrent import futures
from pathlib import Path
from typing import Any

import faiss
import grpc
import numpy as np

from bench.concurrency import phase
from bench.instant import _connect, _search, milvus_handlers
from bench.machine import machine, versions
from bench.systems.servers import free_port
from shoal.server import KEEPALIVE_POLICY

MODELS = ("threads", "aio", "2procs")
PROCESSES = {"2procs": 2}
DIM = 64


class Work:
    """`us` microseconds of Python, then one faiss HNSW search (GIL released inside)."""

    def __init__(self, us: float) -> None:
        faiss.omp_set_num_threads(1)
        rng = np.random.default_rng(0)
        self.index = faiss.IndexHNSWFlat(DIM, 16)
        self.index.add(rng.standard_normal((20_000, DIM)).astype(np.float32))
        self.query = rng.standard_normal((1, DIM)).astype(np.float32)
        self.table = {i: str(i) for i in range(100)}
        self.loops = 0
        if us > 0:
            t0 = time.perf_counter()
            self._python(20_000)
            per_loop = (time.perf_counter() - t0) / 20_000
            self.loops = max(1, round(us * 1e-6 / per_loop))

    def _python(self, loops: int) -> int:
        total, table = 0, self.table
        for i in range(loops):
            total += len(table[i % 100])
        return total

    def __call__(self) -> None:
        self._python(self.loops)
        self.index.search(self.query, 10)


def serve(model: str, work_us: float, port: int) -> None:
    work = Work(work_us)
    if model in ("threads", "2procs"):
        def search(request: Any, context: Any) -> Any:
            work()
            return _search(request, context)

        reuse = [("grpc.so_reuseport", 1 if model in PROCESSES else 0)]
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=10), options=[*KEEPALIVE_POLICY, *reuse])
        server.add_generic_rpc_handlers((milvus_handlers(search),))
        server.add_insecure_port(f"127.0.0.1:{port}")
        server.start()
        server.wait_for_termination()
        return

    async def asearch(request: Any, context: Any) -> Any:
        work()
        return _search(request, context)

    async def aconnect(request: Any, context: Any) -> Any:
        return _connect(request, context)

    async def main() -> None:
        server = grpc.aio.server(options=KEEPALIVE_POLICY)
        server.add_generic_rpc_handlers((milvus_handlers(asearch, aconnect),))
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()

    asyncio.run(main())


def measure(args: argparse.Namespace) -> dict[str, Any]:
    runs = []
    works = [float(w) for w in args.work_us.split(",")]
    models = [m for m in args.models.split(",") if m]
    unknown = set(models) - set(MODELS)
    if unknown:
        raise SystemExit(f"unknown models {sorted(unknown)}: choose from {', '.join(MODELS)}")
    for _ in range(args.rounds):
        for work in works:
            for model in models:
                port = free_port()
                procs = [subprocess.Popen([sys.executable, "-m", "bench.server_models", "--serve", model,
                                           "--work-us", str(work), "--port", str(port)])
                         for _ in range(PROCESSES.get(model, 1))]
                try:
                    time.sleep(3)
                    r = phase(f"http://127.0.0.1:{port}", [p.pid for p in procs], args.clients, DIM, args.seconds, 64)
                finally:
                    for proc in procs:
                        proc.terminate()
                        proc.wait(10)
                runs.append({"model": model, "work_us": work, **r, "load_avg": os.getloadavg()[0]})
                print(json.dumps(runs[-1]), flush=True)
    mean = {}
    for work in works:
        for model in models:
            own = [r for r in runs if r["model"] == model and r["work_us"] == work]
            mean[f"{model}/{work:g}"] = {k: round(float(np.mean([r[k] for r in own])), 3)
                                         for k in ("qps", "p99_ms", "server_cpu_ms_per_search")}
    return {"args": vars(args), "machine": machine(), "versions": versions(), "runs": runs, "mean": mean}


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.server_models", description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--work-us", default="0,60,200", help="Python microseconds per search, comma-separated")
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated, from " + ", ".join(MODELS))
    ap.add_argument("--out", default="")
    ap.add_argument("--serve", choices=MODELS, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve, float(args.work_us), args.port)
        return
    report = measure(args)
    text = json.dumps(report, indent=2)
    print(json.dumps(report["mean"], indent=2))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "server_models.json").write_text(text + "\n")


if __name__ == "__main__":
    main()
