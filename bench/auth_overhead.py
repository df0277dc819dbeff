"""What authorization costs a search: serial search p50 with `--auth` on and off.

    python -m bench.auth_overhead [--rows 20000] [--dim 128] [--searches 400] [--rounds 3]

Starts `shoal run` twice on free ports (auth off, auth on), loads the same collection
(FLAT, so the index does not vary), then alternates rounds of serial single-vector
searches between the two servers so machine noise falls on both. Prints each round's p50
and the ratio of the medians. Not part of CI: a number for the notes.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from pymilvus import MilvusClient

_LISTEN = re.compile(r"Shoal listening on [\d.]+:(\d+)")


def _start(data: Path, auth: bool) -> tuple[subprocess.Popen[bytes], int]:
    log = data.with_suffix(".log")
    cmd = [sys.executable, "-m", "shoal.cli", "run", "--data", str(data), "--host", "127.0.0.1",
           "--port", "0", "--http-port", "0", *(["--auth"] if auth else [])]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = _LISTEN.search(log.read_text(errors="replace"))
        if found:
            return proc, int(found.group(1))
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(log.read_text())


def _load(client: MilvusClient, vectors: np.ndarray) -> None:
    client.create_collection("bench", dimension=vectors.shape[1], index_type="FLAT", metric_type="L2")
    for start in range(0, len(vectors), 5000):
        chunk = vectors[start:start + 5000]
        client.insert("bench", [{"id": start + i, "vector": v} for i, v in enumerate(chunk.tolist())])
    client.flush("bench")


def _p50_ms(client: MilvusClient, queries: np.ndarray) -> float:
    times = []
    for q in queries.tolist():
        t = time.perf_counter()
        client.search("bench", [q], limit=10)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=20_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--searches", type=int, default=400)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    rng = np.random.default_rng(7)
    vectors = rng.random((args.rows, args.dim), dtype=np.float32)
    queries = rng.random((args.searches, args.dim), dtype=np.float32)
    with tempfile.TemporaryDirectory(prefix="shoal-auth-bench-") as tmp:
        off, off_port = _start(Path(tmp) / "off", auth=False)
        on, on_port = _start(Path(tmp) / "on", auth=True)
        try:
            clients = {
                "off": MilvusClient(uri=f"http://127.0.0.1:{off_port}"),
                "on": MilvusClient(uri=f"http://127.0.0.1:{on_port}", token="root:Milvus"),
            }
            for c in clients.values():
                _load(c, vectors)
                _p50_ms(c, queries[:50])  # warm up
            p50: dict[str, list[float]] = {"off": [], "on": []}
            for r in range(args.rounds):
                for mode in ("off", "on") if r % 2 == 0 else ("on", "off"):
                    p50[mode].append(_p50_ms(clients[mode], queries))
                print(f"round {r + 1}: p50 off {p50['off'][-1]:.3f} ms, on {p50['on'][-1]:.3f} ms", flush=True)
            ratio = statistics.median(p50["on"]) / statistics.median(p50["off"])
            print(f"serial search p50, auth on / off: x{ratio:.3f} "
                  f"({statistics.median(p50['on']):.3f} / {statistics.median(p50['off']):.3f} ms)")
        finally:
            for proc in (off, on):
                proc.terminate()
                proc.wait(60)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
