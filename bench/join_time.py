"""How long a query node joining a cluster takes to serve a flushed collection: in this version a
query node holds every sealed segment, so this is what a join (or a replacement after a leave)
costs, per GB and per million rows.

    python -m bench.join_time [--rows 200000] [--dim 128] [--batch 5000] [--share]

Starts `shoal cluster run` (one broker, one query node) on free ports, inserts and flushes the
rows (FLAT: no index to build or fetch), then `shoal cluster scale --query-nodes 2` (it returns
once the new node registered: segments fetched from S3 into its cache, memory-mapped, the WAL
tail replayed). Reports the seconds, the bytes the new node fetched (its segment cache) and the
seconds per GB and per million rows. Not part of CI: a figure for the notes.

`--share` runs share mode (`segment_placement: share`, segments of rows / 8): the new node then
registers without loading the segments the share document gives the old node (it loads what no
share names and then its own share), and the figure is also the rebalancing: from the scale call
until the two nodes serve disjoint shares (the old node released the moved segments), with the
rows each serves and the seconds per GB moved. `--json PATH` also writes the share-mode figures
there (with the load average at the scale call and when the shares settled).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from pymilvus import DataType, MilvusClient

from bench.cluster import _CLUSTER, _start, stop_all
from shoal.cluster.rpc import RpcClient
from shoal.cluster.supervisor import admin_call


def _bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--batch", type=int, default=5000)
    p.add_argument("--share", action="store_true", help="segment_placement share: time the rebalancing")
    p.add_argument("--json", type=Path, help="with --share: write the figures to this file")
    args = p.parse_args(argv)
    if args.share:
        os.environ.update(SHOAL_SEGMENT_PLACEMENT="share", SHOAL_SEGMENT_MAX_ROWS=str(max(1, args.rows // 8)))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally below: stop the cluster
    vectors = np.random.default_rng(7).random((args.rows, args.dim), dtype=np.float32)
    with tempfile.TemporaryDirectory(prefix="shoal-join-bench-") as tmp:
        data = Path(tmp) / "cluster"
        proc, port = _start([sys.executable, "-m", "shoal.cli", "cluster", "run", "--data", str(data), "--port", "0",
                             "--http-port", "0"], Path(tmp) / "cluster.log", _CLUSTER, 600)
        try:
            client = MilvusClient(uri=f"http://127.0.0.1:{port}", timeout=300)
            schema = client.create_schema(auto_id=False)
            schema.add_field("id", DataType.INT64, is_primary=True)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=args.dim)
            params = client.prepare_index_params()
            params.add_index("vector", index_type="FLAT", metric_type="L2")
            client.create_collection("join", schema=schema, index_params=params)
            for at in range(0, args.rows, args.batch):
                chunk = vectors[at:at + args.batch]
                client.insert("join", [{"id": at + i, "vector": v} for i, v in enumerate(chunk.tolist())])
            client.flush("join")
            load_at_scale = os.getloadavg()
            started = time.monotonic()
            answer = admin_call(data, "POST", "/scale?role=query&count=2")
            seconds = time.monotonic() - started
            (name,) = answer["steps"][0]["added"]
            if args.share:
                result = _rebalanced(data, started, seconds, args.rows, args.dim)
                startup, cache = _startup(data, name), _bytes(data / "roles" / name / "segment-cache")
                print(f"{name} at start: {startup}; its segment cache holds {cache / 1e6:.1f} MB")
                if result is None:
                    return 1
                if args.json:
                    result.update(new_node_startup=startup, new_node_cache_bytes=cache,
                                  settle_s_per_cache_gb=result["settled_s"] / (cache / 1e9),
                                  load_average_at_scale=load_at_scale)
                    args.json.write_text(json.dumps(result, indent=2) + "\n")
                return 0
            startup = _startup(data, name)
            fetched = _bytes(data / "roles" / name / "segment-cache")
            count = client.query("join", filter="", output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"]
            assert count == args.rows, count
            gb, mrows = fetched / 1e9, args.rows / 1e6
            print(f"{args.rows} rows x {args.dim} dim: {name} served {seconds:.1f} s after the scale call; "
                  f"fetched {fetched / 1e6:.1f} MB from S3 ({startup}); "
                  f"{seconds / gb:.0f} s per GB, {seconds / mrows:.0f} s per million rows")
            client.close()
        finally:
            stop_all([proc])
    return 0


def _startup(data: Path, name: str) -> dict[str, int]:
    """What the node's start-up loaded (segments from S3, records replayed)."""
    grpc_port = {p["name"]: p for p in admin_call(data, "GET", "/status")["processes"]}[name]["ports"]["grpc"]
    node = RpcClient(f"127.0.0.1:{grpc_port}")
    try:
        return node.call("startup", timeout=60)
    finally:
        node.close()


def _rebalanced(data: Path, started: float, joined_s: float, rows: int, dim: int) -> dict | None:
    """Share mode: wait until both nodes serve a share and no sealed segment is held twice; the figures,
    or None if that took over 30 minutes."""
    while time.monotonic() - started < 1800:
        status = admin_call(data, "GET", "/status")
        served = (status["shares"].get("default.join") or [{}])[0]
        held = [h["default.join"]["sealed_rows"] for h in status["holdings"].values() if "default.join" in h]
        if len(served) == 2 and all(served.values()) and sum(held) == rows and len(held) == 2:
            seconds = time.monotonic() - started
            moved = min(served.values()) * dim * 4 / 1e9
            print(f"{rows} rows x {dim} dim, share mode: the new node registered {joined_s:.1f} s after the scale "
                  f"call, the shares settled at {seconds:.1f} s; rows served per node {served}; "
                  f"{moved * 1e3:.0f} MB of vectors moved: {seconds / max(moved, 1e-9):.0f} s per GB moved")
            return {"rows": rows, "dim": dim, "joined_s": joined_s, "settled_s": seconds, "served": served,
                    "vector_bytes_moved": round(moved * 1e9), "load_average_settled": os.getloadavg()}
        time.sleep(0.5)
    print("the shares did not settle within 30 minutes")
    return None


if __name__ == "__main__":
    raise SystemExit(main())
