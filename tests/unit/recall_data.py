"""Shared by the index unit tests: clustered vectors (an index's recall on them means something,
unlike on uniform noise) and recall@k against a ground truth."""

from __future__ import annotations

import numpy as np


def clustered(seed: int, clusters: int, n: int, nq: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` base vectors and `nq` queries drawn around the same `clusters` centres."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, dim)) * 3.0
    base = centers[rng.integers(0, clusters, n)] + rng.normal(size=(n, dim))
    queries = centers[rng.integers(0, clusters, nq)] + rng.normal(size=(nq, dim))
    return base.astype(np.float32), queries.astype(np.float32)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))
