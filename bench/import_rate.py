"""Bulk import rows/s (Parquet and NumPy, files written by pymilvus's LocalBulkWriter) beside
insert rows/s through pymilvus, on one `shoal run` process, and milvus-lite where it can import.

    python -m bench.import_rate --rows 1000000 --dim 128 --out bench/results/<dir>

Each system gets a fresh server and collection per measurement. Import time runs from the
`do_bulk_insert` call to the job's Completed state (progress is sampled along the way and
written out); insert time covers `MilvusClient.insert` in 10,000-row batches. File writing is
timed apart and not counted.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.systems.servers import server_for

BATCH = 10_000


def _schema(dim: int) -> Any:
    from pymilvus import DataType, MilvusClient

    schema = MilvusClient.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("cat", DataType.INT64)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=dim)
    return schema


def _create(client: Any, name: str, dim: int) -> None:
    index = client.prepare_index_params()
    index.add_index("vec", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=_schema(dim), index_params=index)


def _data(rows: int, dim: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = np.arange(rows, dtype=np.int64)
    return ids, ids % 100, rng.random((rows, dim), dtype=np.float32)


def write_files(kind: str, rows: int, dim: int, where: Path) -> tuple[list[str], float]:
    """The files LocalBulkWriter writes, built column-wise through its own buffer class (the
    writer's row-by-row append validates every value in Python and would dominate the run)."""
    from pymilvus.bulk_writer import BulkFileType, LocalBulkWriter

    ids, cats, vecs = _data(rows, dim)
    t0 = time.perf_counter()
    file_type = BulkFileType.PARQUET if kind == "parquet" else BulkFileType.NUMPY
    with LocalBulkWriter(schema=_schema(dim), local_path=str(where), file_type=file_type,
                         chunk_size=1 << 40) as writer:
        buf = writer._buffer  # same files as append_row would produce, filled in bulk
        buf._buffer["id"] = ids.tolist()
        buf._buffer["cat"] = cats.tolist()
        buf._buffer["vec"] = list(vecs)
        writer._buffer_row_count = rows
        writer._buffer_size = vecs.nbytes + 16 * rows
        writer.commit()
        files = writer.batch_files
    assert len(files) == 1
    return files[0], time.perf_counter() - t0


def measure_import(system: str, files: list[str], rows: int, dim: int, workdir: str) -> dict[str, Any]:
    from pymilvus import MilvusClient, connections

    server = server_for(system, workdir)
    server.start()
    try:
        client = MilvusClient(uri=server.uri)
        _create(client, "imp", dim)
        connections.connect(alias="bench", uri=server.uri)
        try:
            return _run_import(system, files, client)
        finally:
            connections.disconnect("bench")
    finally:
        server.stop()


def _run_import(system: str, files: list[str], client: Any) -> dict[str, Any]:
    from pymilvus import utility
    from pymilvus.client.types import BulkInsertState

    samples = []
    t0 = time.perf_counter()
    try:
        task = utility.do_bulk_insert("imp", files=files, using="bench")
    except Exception as e:  # milvus-lite answers UNIMPLEMENTED
        return {"system": system, "error": str(e)[:200]}
    while True:
        state = utility.get_bulk_insert_state(task, using="bench")
        samples.append((round(time.perf_counter() - t0, 3), state.infos.get("progress_percent"), state.row_count))
        if state.state in (BulkInsertState.ImportCompleted, BulkInsertState.ImportFailed):
            break
        time.sleep(0.25)
    elapsed = time.perf_counter() - t0
    count = client.query("imp", filter="", output_fields=["count(*)"])[0]["count(*)"]
    return {"system": system, "state": state.state_name, "seconds": round(elapsed, 3), "rows": count,
            "rows_per_s": round(count / elapsed), "progress": samples, "reason": state.failed_reason}


def measure_insert(system: str, rows: int, dim: int, workdir: str) -> dict[str, Any]:
    from pymilvus import MilvusClient

    ids, cats, vecs = _data(rows, dim)
    server = server_for(system, workdir)
    server.start()
    try:
        client = MilvusClient(uri=server.uri)
        _create(client, "ins", dim)
        batches = [[{"id": int(i), "cat": int(c), "vec": v} for i, c, v in
                    zip(ids[s:s + BATCH], cats[s:s + BATCH], vecs[s:s + BATCH], strict=True)]
                   for s in range(0, rows, BATCH)]
        t0 = time.perf_counter()
        for batch in batches:
            client.insert("ins", batch)
        elapsed = time.perf_counter() - t0
        return {"system": system, "seconds": round(elapsed, 3), "rows": rows, "rows_per_s": round(rows / elapsed)}
    finally:
        server.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--systems", default="shoal,milvus-lite")
    p.add_argument("--insert-systems", default="shoal", help="systems whose pymilvus insert is timed too")
    p.add_argument("--out", default="")
    args = p.parse_args()
    out: dict[str, Any] = {"rows": args.rows, "dim": args.dim, "results": []}
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        files = {}
        for kind in ("parquet", "numpy"):
            files[kind], secs = write_files(kind, args.rows, args.dim, Path(tmp) / kind)
            out[f"write_{kind}_s"] = round(secs, 3)
        for system in args.systems.split(","):
            for kind in ("parquet", "numpy"):
                res = measure_import(system, files[kind], args.rows, args.dim, tmp)
                res["format"] = kind
                out["results"].append(res)
                print(json.dumps({k: v for k, v in res.items() if k != "progress"}), flush=True)
            if system not in args.insert_systems.split(","):
                continue
            res = measure_insert(system, args.rows, args.dim, tmp)
            res["format"] = "insert (pymilvus, 10k-row batches)"
            out["results"].append(res)
            print(json.dumps(res), flush=True)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "import.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
