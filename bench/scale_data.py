"""Disk-backed synthetic data for :mod:`bench.scale`: rows in memory-mapped files, exact top-k
computed over streaming chunks, so neither the harness nor the ground truth holds every row.

The rows are the synthetic workload's (:class:`bench.workloads.MixtureOfGaussians`, same seed
and cluster count), written chunk by chunk; the files and the ground truth are cached under
``<root>/mog-<rows>-<dim>d-s<seed>/`` and reused by a later run with the same key.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from bench.config import TOP_K
from bench.workloads import CHUNK, TAGS, MixtureOfGaussians

GT_CHUNK = 1_000_000  # rows per exact-search step of the ground truth


@dataclass
class ScaleData:
    """Rows ``0..rows-1`` (primary key = row number) as memory maps, queries and their exact top-k."""

    root: Path
    rows: int
    dim: int
    seed: int
    vectors: np.ndarray  # np.memmap, float32 (rows, dim)
    cat: np.ndarray  # np.memmap, int64 (rows,)
    queries: np.ndarray
    truth: np.ndarray  # (queries, TOP_K) row numbers
    gen_s: float = 0.0
    truth_s: float = 0.0

    @property
    def raw_mb(self) -> float:
        return self.rows * self.dim * 4 / 1e6

    def rows_of(self, lo: int, hi: int) -> list[dict]:
        """Rows ``lo..hi`` as pymilvus row dicts, the schema of :mod:`bench.systems.milvus`."""
        vecs = np.asarray(self.vectors[lo:hi])
        cats = self.cat[lo:hi].tolist()
        return [{"id": lo + j, "vec": vecs[j], "cat": cats[j], "tag": TAGS[(lo + j) % len(TAGS)]}
                for j in range(hi - lo)]


def n_clusters(rows: int) -> int:
    """The synthetic workload's cluster count for this many rows."""
    return max(16, min(1024, rows // 1000))


def merge_top_k(dist_a: np.ndarray, ids_a: np.ndarray, dist_b: np.ndarray, ids_b: np.ndarray,
                k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k smallest distances per query of two partial answers (-1 ids carry +inf)."""
    dist = np.concatenate([dist_a, dist_b], axis=1)
    ids = np.concatenate([ids_a, ids_b], axis=1)
    dist = np.where(ids < 0, np.inf, dist)
    order = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(dist, order, 1), np.take_along_axis(ids, order, 1)


def chunked_ground_truth(vectors: np.ndarray, queries: np.ndarray, k: int = TOP_K,
                         chunk: int = GT_CHUNK) -> np.ndarray:
    """Exact L2 top-k row numbers over ``vectors`` read ``chunk`` rows at a time (faiss IndexFlatL2)."""
    nq = len(queries)
    best_d = np.full((nq, 0), np.inf, dtype=np.float32)
    best_i = np.full((nq, 0), -1, dtype=np.int64)
    q = np.ascontiguousarray(queries, dtype=np.float32)
    for lo in range(0, len(vectors), chunk):
        part = np.ascontiguousarray(vectors[lo: lo + chunk], dtype=np.float32)
        index = faiss.IndexFlatL2(part.shape[1])
        index.add(part)
        d, i = index.search(q, min(k, len(part)))
        best_d, best_i = merge_top_k(best_d, best_i, d, np.where(i < 0, -1, i + lo), k)
    return best_i


def open_rows(root: Path, rows: int, dim: int, seed: int) -> ScaleData:
    """The rows :func:`prepare` wrote under ``root`` (its own directory), read-only, without queries."""
    vectors = np.memmap(root / "vectors.f32", dtype=np.float32, mode="r", shape=(rows, dim))
    cat = np.memmap(root / "cat.i64", dtype=np.int64, mode="r", shape=(rows,))
    empty = np.zeros((0, dim), dtype=np.float32)
    return ScaleData(root, rows, dim, seed, vectors, cat, empty, np.zeros((0, TOP_K), dtype=np.int64))


def prepare(root: Path, rows: int, dim: int, seed: int, n_queries: int, log=print) -> ScaleData:
    """Generate (or reuse) the rows, the queries and their exact top-k under ``root``."""
    where = root / f"mog-{rows}-{dim}d-s{seed}"
    where.mkdir(parents=True, exist_ok=True)
    done = where / "done.json"
    gen = MixtureOfGaussians(dim, n_clusters(rows), seed)
    info = json.loads(done.read_text()) if done.exists() else {}
    mode = "r" if info else "w+"
    vectors = np.memmap(where / "vectors.f32", dtype=np.float32, mode=mode, shape=(rows, dim))
    cat = np.memmap(where / "cat.i64", dtype=np.int64, mode=mode, shape=(rows,))
    gen_s = float(info.get("gen_s", 0.0))
    if not info:
        t0 = time.perf_counter()
        for lo in range(0, rows, CHUNK):
            hi = min(rows, lo + CHUNK)
            v, c = gen.take(lo, hi)
            vectors[lo:hi], cat[lo:hi] = v, c
            if lo % (10 * CHUNK) == 0:
                log(f"data: {hi:,} / {rows:,} rows")
        vectors.flush()
        cat.flush()
        gen_s = time.perf_counter() - t0
        done.write_text(json.dumps({"gen_s": gen_s}))
        vectors = np.memmap(where / "vectors.f32", dtype=np.float32, mode="r", shape=(rows, dim))
        cat = np.memmap(where / "cat.i64", dtype=np.int64, mode="r", shape=(rows,))
    queries, _ = gen.take(0, n_queries, stream=2)
    gt_path = where / f"truth-{n_queries}.npy"
    gt_info = gt_path.with_suffix(".json")
    if gt_path.exists():
        truth = np.load(gt_path)
        truth_s = float(json.loads(gt_info.read_text())["truth_s"]) if gt_info.exists() else float("nan")
    else:
        t0 = time.perf_counter()
        truth = chunked_ground_truth(vectors, queries)
        truth_s = time.perf_counter() - t0
        np.save(gt_path, truth)
        gt_info.write_text(json.dumps({"truth_s": truth_s}))
    return ScaleData(where, rows, dim, seed, vectors, cat, queries, truth, gen_s, truth_s)
