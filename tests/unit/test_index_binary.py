"""Binary vectors: BIN_FLAT and BIN_IVF_FLAT with HAMMING and JACCARD, against numpy bit math."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shoal.index import build_index, load_index, search_exact, validate_index_params
from shoal.schema import DataType, FieldSchema

N, DIM, NQ, K = 4000, 128, 30, 10
FIELD = FieldSchema("b", DataType.BINARY_VECTOR, dim=DIM)


def clustered_bits(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.integers(0, 2, size=(25, DIM), dtype=np.uint8)

    def noisy(count: int) -> np.ndarray:
        bits = centers[rng.integers(0, 25, count)]
        flip = rng.random(bits.shape) < 0.12
        return np.packbits(bits ^ flip, axis=1)

    return noisy(N), noisy(NQ)


BASE, QUERIES = clustered_bits(5)
BITS, QBITS = np.unpackbits(BASE, axis=1).astype(bool), np.unpackbits(QUERIES, axis=1).astype(bool)


def numpy_distances(metric: str) -> np.ndarray:
    diff = (QBITS[:, None, :] ^ BITS[None, :, :]).sum(axis=2)
    if metric == "HAMMING":
        return diff.astype(np.float64)
    union = (QBITS[:, None, :] | BITS[None, :, :]).sum(axis=2)
    return np.where(union > 0, diff / np.maximum(union, 1), 0.0)


TRUTH = {m: numpy_distances(m) for m in ("HAMMING", "JACCARD")}
CASES = [
    ("BIN_FLAT", "HAMMING"),
    ("BIN_FLAT", "JACCARD"),
    ("BIN_IVF_FLAT", "HAMMING"),
    ("BIN_IVF_FLAT", "JACCARD"),
]
_built: dict[tuple[str, str], object] = {}


def index_for(index_type: str, metric: str):  # noqa: ANN201 - a VectorIndex
    if (index_type, metric) not in _built:
        spec = validate_index_params(FIELD, {"index_type": index_type, "metric_type": metric, "nlist": "32"})
        _built[(index_type, metric)] = build_index(spec, BASE)
    return _built[(index_type, metric)]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(
        np.mean(
            [
                len(set(f[f >= 0]) & set(t[t >= 0])) / max(1, (t >= 0).sum())
                for f, t in zip(found, truth, strict=True)
            ]
        )
    )


@pytest.mark.parametrize(("index_type", "metric"), CASES)
def test_scores_are_bit_distances_ascending(index_type: str, metric: str) -> None:
    scores, rows = index_for(index_type, metric).search(QUERIES, K)
    expected = np.take_along_axis(TRUTH[metric], rows, axis=1)
    assert np.allclose(scores, expected, atol=1e-6)
    assert (np.diff(scores, axis=1) >= 0).all()
    # The k-th best distance equals numpy's (ties may pick different rows).
    kth = np.sort(TRUTH[metric], axis=1)[:, K - 1]
    if index_type == "BIN_FLAT" or metric == "JACCARD":
        assert np.allclose(scores[:, -1], kth)


@pytest.mark.parametrize(("index_type", "metric"), CASES)
def test_recall_against_exact(index_type: str, metric: str) -> None:
    _, rows = index_for(index_type, metric).search(QUERIES, K)
    truth_s, _ = search_exact(BASE, QUERIES, K, metric)
    # Compare by distance (ties make row sets ambiguous): hits no worse than the exact k-th.
    found = np.take_along_axis(TRUTH[metric], rows, axis=1)
    good = (found <= truth_s[:, -1:] + 1e-6).mean()
    assert good >= (0.9 if index_type == "BIN_IVF_FLAT" and metric == "HAMMING" else 1.0)


@pytest.mark.parametrize("fraction", [0.01, 0.001, 0.5])
@pytest.mark.parametrize(("index_type", "metric"), CASES)
def test_filters(index_type: str, metric: str, fraction: float) -> None:
    rng = np.random.default_rng(1)
    allowed = np.zeros(N, bool)
    allowed[rng.choice(N, int(N * fraction), replace=False)] = True
    scores, rows = index_for(index_type, metric).search(QUERIES, K, allowed=allowed)
    assert allowed[rows[rows >= 0]].all()
    truth_s, _ = search_exact(BASE, QUERIES, K, metric, allowed=allowed)
    n_hits = min(K, int(allowed.sum()))
    assert (rows[:, :n_hits] >= 0).all() and (rows[:, n_hits:] == -1).all()
    assert np.allclose(scores[:, :n_hits], truth_s[:, :n_hits])


@pytest.mark.parametrize(("index_type", "metric"), CASES)
def test_save_load(index_type: str, metric: str, tmp_path: Path) -> None:
    index = index_for(index_type, metric)
    index.save(tmp_path)
    again = load_index(tmp_path)
    s1, r1 = index.search(QUERIES, K)
    s2, r2 = again.search(QUERIES, K)
    assert np.array_equal(r1, r2) and np.array_equal(s1, s2)


def test_range_search_hamming_window() -> None:
    index = index_for("BIN_FLAT", "HAMMING")
    scores, rows, lims = index.range_search(QUERIES, radius=30, range_filter=10, limit=50)
    for i in range(NQ):
        d = TRUTH["HAMMING"][i]
        want = np.flatnonzero((d >= 10) & (d < 30))
        got = rows[lims[i] : lims[i + 1]]
        assert len(got) == min(50, len(want))
        assert set(got) <= set(want)
        assert ((scores[lims[i] : lims[i + 1]] >= 10) & (scores[lims[i] : lims[i + 1]] < 30)).all()
