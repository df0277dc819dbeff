"""Backup and restore throughput beside a raw copy of the same files.

    python -m bench.backup [--rows 1000000] [--dim 128] [--out bench/results/<date>-backup]

Starts `shoal run`, inserts ROWS rows (INT64 key, INT64 attribute, DIM-d float vector), flushes,
then times, all on this machine's disk:
- raw copy: every file of the collection's segments copied and fsynced (the ceiling);
- `shoal backup create` into a local directory (snapshot, SHA-256, HTTP, content-addressed
  store, fsync), and a second create with nothing new;
- `shoal backup restore` under a new name (HTTP, checksum, install);
- `shoal backup verify` (re-read and hash every file).
MB/s are of the backup's bytes (1 MB = 10^6 bytes). Writes `result.json` and prints a table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
_LISTEN = re.compile(r"Shoal listening on ([\d.]+):(\d+) \(http [\d.]+:(\d+)\)")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT / "node")}


def _start(data: Path, log: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "shoal.cli", "run", "--data", str(data), "--host", "127.0.0.1",
                                 "--port", "0", "--http-port", "0"], stdout=out, stderr=subprocess.STDOUT, env=_env())
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = _LISTEN.findall(log.read_text(errors="replace"))
        if found:
            return proc, f"http://127.0.0.1:{found[0][1]}", f"http://127.0.0.1:{found[0][2]}"
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(log.read_text(errors="replace")[-3000:])


def _cli(*args: str) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "shoal.cli", "backup", *args, "--no-progress"] if args[0] != "list"
                          else [sys.executable, "-m", "shoal.cli", "backup", *args],
                          capture_output=True, text=True, env=_env())
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    return time.perf_counter() - start, done.stdout


def _raw_copy(src: Path, dst: Path) -> tuple[float, int]:
    start = time.perf_counter()
    total = 0
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        target = dst / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        with open(target, "rb+") as f:
            os.fsync(f.fileno())
        total += path.stat().st_size
    return time.perf_counter() - start, total


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--batch", type=int, default=50_000)
    p.add_argument("--out", default=f"bench/results/{dt.date.today():%Y-%m-%d}-backup")
    args = p.parse_args(argv)
    from pymilvus import Collection, CollectionSchema, DataType, FieldSchema, connections

    work = Path(tempfile.mkdtemp(prefix="shoal-bench-backup-"))
    proc, uri, http = _start(work / "data", work / "server.log")
    result: dict[str, object] = {"rows": args.rows, "dim": args.dim, "when": dt.datetime.now(dt.UTC).isoformat(),
                                 "load": os.getloadavg()[0]}
    try:
        connections.connect("bench", uri=uri)
        schema = CollectionSchema([FieldSchema("id", DataType.INT64, is_primary=True),
                                   FieldSchema("cat", DataType.INT64),
                                   FieldSchema("vec", DataType.FLOAT_VECTOR, dim=args.dim)])
        coll = Collection("bench", schema, using="bench")
        rng = np.random.default_rng(1)
        start = time.perf_counter()
        for first in range(0, args.rows, args.batch):
            n = min(args.batch, args.rows - first)
            ids = np.arange(first, first + n, dtype=np.int64)
            coll.insert([ids, ids % 100, rng.standard_normal((n, args.dim), dtype=np.float32)])
        coll.flush()
        result["insert_s"] = round(time.perf_counter() - start, 2)
        raw_s, raw_bytes = _raw_copy(work / "data" / "segments", work / "raw")
        dest = work / "backups"
        create_s, out = _cli("create", "--uri", http, "--to", str(dest), "--collection", "bench", "--name", "one")
        manifest = json.loads((dest / "backups" / "one" / "manifest.json").read_text())
        size = int(manifest["stats"]["bytes"])
        again_s, _ = _cli("create", "--uri", http, "--to", str(dest), "--collection", "bench", "--name", "two")
        two = json.loads((dest / "backups" / "two" / "manifest.json").read_text())
        restore_s, _ = _cli("restore", "--uri", http, "--from", str(dest), "--name", "one", "--rename", "bench:copy")
        verify_s, _ = _cli("verify", "--from", str(dest), "--name", "one")
        mb = size / 1e6
        result.update({
            "backup_bytes": size, "raw_bytes": raw_bytes,
            "raw_copy_s": round(raw_s, 2), "raw_copy_mb_s": round(raw_bytes / 1e6 / raw_s, 1),
            "create_s": round(create_s, 2), "create_mb_s": round(mb / create_s, 1),
            "second_create_s": round(again_s, 2), "second_uploaded_bytes": two["stats"]["uploaded_bytes"],
            "restore_s": round(restore_s, 2), "restore_mb_s": round(mb / restore_s, 1),
            "verify_s": round(verify_s, 2), "verify_mb_s": round(mb / verify_s, 1),
        })
        result["create_vs_raw"] = round(float(result["create_mb_s"]) / float(result["raw_copy_mb_s"]), 2)  # type: ignore[arg-type]
        result["restore_vs_raw"] = round(float(result["restore_mb_s"]) / float(result["raw_copy_mb_s"]), 2)  # type: ignore[arg-type]
    finally:
        proc.terminate()
        proc.wait(120)
        shutil.rmtree(work, ignore_errors=True)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "result.json").write_text(json.dumps(result, indent=1))
    for key, value in result.items():
        print(f"{key:24} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
