"""A VectorDBBench custom dataset (its Parquet layout) from the synthetic workload's generator.

    python -m bench.vdbbench_data --rows 1m --dim 768 --metric COSINE --queries 1000 --k 100 --out DIR

VectorDBBench's `PerformanceCustomDataset` reads `train.parquet` (`id`, `emb`), `test.parquet`
(`id`, `emb`) and `neighbors.parquet` (`id`, `neighbors_id`: the exact top-k train ids of each
test query). The rows are :class:`bench.workloads.MixtureOfGaussians` rows (the same generator
as every other bench workload), written one chunk at a time; the exact top-k comes from
:func:`bench.scale_data.chunked_ground_truth`, so neither step holds more than a chunk of rows
beside the queries. For COSINE the rows are stored unit-length, so the L2 top-k is the cosine
top-k. The public Cohere 1M set of the published Milvus figure cannot be downloaded here; this
set has its size, dimension, metric and query count.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench.config import parse_size
from bench.scale_data import chunked_ground_truth, n_clusters
from bench.workloads import CHUNK, MixtureOfGaussians

GT_CHUNK = 200_000  # rows per exact-search step: 600 MB of float32 at 768 dimensions


def _table(ids: np.ndarray, vectors: np.ndarray) -> pa.Table:
    emb = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), type=pa.float32()), vectors.shape[1])
    # VectorDBBench reads `emb` as a list column; a plain list type keeps every reader happy.
    return pa.table({"id": pa.array(ids, type=pa.int64()), "emb": emb.cast(pa.list_(pa.float32()))})


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)).astype(np.float32)


class _Rows:
    """Rows lo..hi of the generator, as float32 (the chunked ground truth slices it)."""

    def __init__(self, gen: MixtureOfGaussians, rows: int, dim: int, cosine: bool) -> None:
        self.gen, self.rows, self.shape, self.cosine = gen, rows, (rows, dim), cosine

    def __len__(self) -> int:
        return self.rows

    def __getitem__(self, s: slice) -> np.ndarray:
        lo, hi, _ = s.indices(self.rows)
        v = self.gen.take(lo, hi)[0]
        return unit(v) if self.cosine else v


def write_dataset(out: Path, rows: int, dim: int, n_queries: int, k: int, seed: int, metric: str = "L2",
                  log=print) -> dict:
    """Write the three Parquet files under ``out``; returns what was written and how long it took."""
    out.mkdir(parents=True, exist_ok=True)
    gen = MixtureOfGaussians(dim, n_clusters(rows), seed)
    rows_of = _Rows(gen, rows, dim, metric == "COSINE")
    t0 = time.perf_counter()
    with pq.ParquetWriter(out / "train.parquet", _table(np.zeros(1, np.int64), np.zeros((1, dim), np.float32)).schema) as w:
        for lo in range(0, rows, CHUNK):
            hi = min(rows, lo + CHUNK)
            w.write_table(_table(np.arange(lo, hi), rows_of[lo:hi]))
            if lo % (10 * CHUNK) == 0:
                log(f"train.parquet: {hi:,} / {rows:,} rows")
    queries = gen.take(0, n_queries, stream=2)[0]
    if metric == "COSINE":
        queries = unit(queries)
    pq.write_table(_table(np.arange(n_queries), queries), out / "test.parquet")
    gen_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    truth = chunked_ground_truth(rows_of, queries, k=k, chunk=GT_CHUNK)
    truth_s = time.perf_counter() - t0
    neighbors = pa.table({"id": pa.array(np.arange(n_queries), type=pa.int64()),
                          "neighbors_id": pa.array(list(truth), type=pa.list_(pa.int64()))})
    pq.write_table(neighbors, out / "neighbors.parquet")
    info = {"rows": rows, "dim": dim, "queries": n_queries, "k": k, "seed": seed, "metric": metric,
            "generator": "bench.workloads.MixtureOfGaussians", "clusters": n_clusters(rows),
            "gen_s": round(gen_s, 1), "truth_s": round(truth_s, 1)}
    (out / "dataset.json").write_text(json.dumps(info, indent=1))
    return info


def add_dataset_args(p: argparse.ArgumentParser) -> None:
    """The options naming a dataset (shared with :mod:`bench.vdbbench`)."""
    p.add_argument("--rows", default="1m")
    p.add_argument("--dim", type=int, default=768)
    p.add_argument("--metric", choices=("L2", "COSINE"), default="COSINE")
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--k", type=int, default=100)
    p.add_argument("--seed", type=int, default=42)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.vdbbench_data", description=__doc__.split("\n\n")[0])
    add_dataset_args(p)
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    info = write_dataset(Path(a.out), parse_size(a.rows), a.dim, a.queries, a.k, a.seed, a.metric)
    print(json.dumps(info))


if __name__ == "__main__":
    main()
