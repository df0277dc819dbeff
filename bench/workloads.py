"""Deterministic workloads: vectors, scalar columns, queries and exact ground truth.

Synthetic data is a mixture of Gaussians generated chunk by chunk from a seed, so any
row range can be regenerated (the streaming phase asks for rows beyond the loaded ones).
Every row has an INT64 ``cat`` (uniform 0..99: ``cat == 7`` keeps 1 %, ``cat < 50`` keeps
50 %) and a VARCHAR ``tag``. Ground truth comes from faiss ``IndexFlat`` (exact).
Neighbours: :mod:`bench.corpus` (real embeddings), the systems (which load a workload).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import faiss
import numpy as np

from bench.config import TOP_K

CHUNK = 100_000
TAGS = ("red", "green", "blue", "amber", "violet")


@dataclass(frozen=True)
class Filter:
    """A filter as a Milvus expression and as the boolean mask it must select."""

    name: str
    expr: str
    mask: np.ndarray


@dataclass
class Workload:
    """Rows to load (primary key = row number), queries and their exact answers."""

    name: str
    metric: str  # "L2" or "IP" (IP on normalised vectors = cosine)
    vectors: np.ndarray
    cat: np.ndarray
    tags: list[str]
    queries: np.ndarray
    ground_truth: np.ndarray = field(init=False)
    filters: list[Filter] = field(init=False)
    filtered_truth: dict[str, np.ndarray] = field(init=False)
    seed: int = 0
    n_clusters: int = 0

    @property
    def n(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def rows(self, lo: int, hi: int) -> list[dict]:
        """Rows ``lo..hi`` as pymilvus row dicts (the same rows every system gets)."""
        return [
            {"id": i, "vec": self.vectors[i], "cat": int(self.cat[i]), "tag": self.tags[i]}
            for i in range(lo, hi)
        ]


def exact_neighbours(base: np.ndarray, queries: np.ndarray, metric: str, k: int = TOP_K) -> np.ndarray:
    """Row numbers of the exact top-k of each query (faiss IndexFlat)."""
    index = faiss.IndexFlatIP(base.shape[1]) if metric == "IP" else faiss.IndexFlatL2(base.shape[1])
    index.add(base)
    _, ids = index.search(queries, min(k, base.shape[0]))
    return ids


def _finish(w: Workload, filtered_queries: int) -> Workload:
    w.ground_truth = exact_neighbours(w.vectors, w.queries, w.metric)
    w.filters = [Filter("1%", "cat == 7", w.cat == 7), Filter("50%", "cat < 50", w.cat < 50)]
    w.filtered_truth = {}
    for f in w.filters:
        ids = np.flatnonzero(f.mask)
        local = exact_neighbours(w.vectors[ids], w.queries[:filtered_queries], w.metric)
        w.filtered_truth[f.name] = np.where(local >= 0, ids[np.maximum(local, 0)], -1)
    return w


class MixtureOfGaussians:
    """Clustered float vectors: row i depends only on (seed, dim, i)."""

    def __init__(self, dim: int, n_clusters: int, seed: int) -> None:
        self.dim, self.seed = dim, seed
        rng = np.random.default_rng([seed, dim, 0])
        self.centers = rng.normal(size=(n_clusters, dim)).astype(np.float32)
        self.spread = rng.uniform(0.15, 0.45, size=n_clusters).astype(np.float32)

    def _chunk(self, c: int, stream: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, self.dim, stream, c])
        which = rng.integers(0, len(self.centers), size=CHUNK)
        noise = rng.normal(size=(CHUNK, self.dim)).astype(np.float32)
        vecs = self.centers[which] + noise * self.spread[which, None]
        cats = rng.integers(0, 100, size=CHUNK)
        return vecs.astype(np.float32), cats.astype(np.int64)

    def take(self, lo: int, hi: int, stream: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Vectors and cat values of rows lo..hi of one stream (1 = data, 2 = queries)."""
        parts_v, parts_c = [], []
        for c in range(lo // CHUNK, (hi - 1) // CHUNK + 1):
            v, cat = self._chunk(c, stream)
            a, b = max(lo, c * CHUNK) - c * CHUNK, min(hi, (c + 1) * CHUNK) - c * CHUNK
            parts_v.append(v[a:b])
            parts_c.append(cat[a:b])
        return np.concatenate(parts_v), np.concatenate(parts_c)


def synthetic(n: int, dim: int, n_queries: int, filtered_queries: int, seed: int) -> Workload:
    """Mixture-of-Gaussians workload of n rows at ``dim`` dimensions, L2 metric."""
    n_clusters = max(16, min(1024, n // 1000))
    gen = MixtureOfGaussians(dim, n_clusters, seed)
    vectors, cat = gen.take(0, n)
    queries, _ = gen.take(0, n_queries, stream=2)
    tags = [TAGS[i % len(TAGS)] for i in range(n)]
    w = Workload(f"synthetic-{_size_label(n)}-{dim}d", "L2", vectors, cat, tags, queries, seed=seed,
                 n_clusters=n_clusters)
    return _finish(w, filtered_queries)


def extra_rows(w: Workload, lo: int, hi: int) -> list[dict]:
    """Rows beyond the loaded ones (primary keys lo..hi) for the streaming phase."""
    gen = MixtureOfGaussians(w.dim, w.n_clusters, w.seed)
    vecs, cats = gen.take(lo, hi, stream=3)
    return [{"id": lo + j, "vec": vecs[j], "cat": int(cats[j]), "tag": TAGS[(lo + j) % len(TAGS)]}
            for j in range(hi - lo)]


def text(texts: list[str], vectors: np.ndarray, n_queries: int, filtered_queries: int,
         seed: int) -> Workload:
    """Sentence-embedding workload: the last ``n_queries`` texts are held out as queries."""
    n_queries = min(n_queries, len(texts) // 5)
    base, queries = vectors[:-n_queries], vectors[-n_queries:]
    rng = np.random.default_rng([seed, 384])
    cat = rng.integers(0, 100, size=base.shape[0]).astype(np.int64)
    tags = [t[:60] for t in texts[:-n_queries]]
    w = Workload(f"text-fortunes-{base.shape[0]}-{vectors.shape[1]}d", "IP",
                 np.ascontiguousarray(base), cat, tags, np.ascontiguousarray(queries), seed=seed)
    return _finish(w, min(filtered_queries, n_queries))


def _size_label(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


def recall(found: list[list[int]], truth: np.ndarray, k: int = TOP_K) -> float:
    """Mean fraction of the exact top-k found in each returned top-k."""
    hits = 0
    total = 0
    for got, exp in zip(found, truth, strict=False):
        want = {int(x) for x in exp[:k] if x >= 0}
        if not want:
            continue
        hits += len(want.intersection(int(x) for x in got[:k]))
        total += len(want)
    return hits / total if total else float("nan")
