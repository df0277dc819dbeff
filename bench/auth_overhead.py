"""What authorization costs a search: serial search p50 with `--auth` on and off.

    python -m bench.auth_overhead [--rows 20000] [--dim 128] [--searches 400] [--rounds 3]

Starts `shoal run` twice on free ports (auth off, auth on), loads the same collection
(FLAT, so the index does not vary), then searches as a user holding a role with a
Search grant (root would skip the privilege check) and sends each query to both servers back to back
(which goes first alternates), so machine noise falls on both alike. Prints each
round's p50 and the ratio of the p50s over all rounds. Not part of CI: a number for the notes.
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
    deadline = time.monotonic() + 600  # time only finished indexes: a build in flight skews one side
    while time.monotonic() < deadline:
        info = client.describe_index("bench", "vector")
        if info.get("state") == "Finished" and int(info.get("indexed_rows", 0)) >= len(vectors):
            return
        time.sleep(1)
    raise RuntimeError(f"the index did not finish: {info}")


def _timed(client: MilvusClient, q: list[float]) -> float:
    t = time.perf_counter()
    client.search("bench", [q], limit=10)
    return time.perf_counter() - t


def _paired(clients: dict[str, MilvusClient], queries: np.ndarray) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"off": [], "on": []}
    for i, q in enumerate(queries.tolist()):
        for mode in ("off", "on") if i % 2 == 0 else ("on", "off"):
            times[mode].append(_timed(clients[mode], q))
    return times


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
        procs = [_start(Path(tmp) / "off", auth=False), _start(Path(tmp) / "on", auth=True)]
        off_port, on_port = procs[0][1], procs[1][1]
        try:
            clients = {
                "off": MilvusClient(uri=f"http://127.0.0.1:{off_port}"),
                "on": MilvusClient(uri=f"http://127.0.0.1:{on_port}", token="root:Milvus"),
            }
            for c in clients.values():
                _load(c, vectors)
            # search as a user whose privilege comes from a role's grant, not as root (who skips the check)
            root = clients["on"]
            root.create_user("bench", "bench-password")
            root.create_role("searcher")
            root.grant_role("bench", "searcher")
            root.grant_privilege("searcher", "Collection", "Search", "bench")
            clients["on"] = MilvusClient(uri=f"http://127.0.0.1:{on_port}", token="bench:bench-password")
            _paired(clients, queries[:50])  # warm up
            every: dict[str, list[float]] = {"off": [], "on": []}
            for r in range(args.rounds):
                times = _paired(clients, queries)
                for mode in every:
                    every[mode] += times[mode]
                off, on = (statistics.median(times[m]) * 1000 for m in ("off", "on"))
                print(f"round {r + 1}: p50 off {off:.3f} ms, on {on:.3f} ms", flush=True)
            off, on = (statistics.median(every[m]) * 1000 for m in ("off", "on"))
            print(f"serial search p50, auth on / off: x{on / off:.3f} ({on:.3f} / {off:.3f} ms)")
        finally:
            for proc, _ in procs:
                proc.terminate()
                proc.wait(60)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
