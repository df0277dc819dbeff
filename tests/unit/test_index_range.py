"""Range search: Milvus's radius / range_filter windows per metric, on exact and ANN indexes."""

from __future__ import annotations

import numpy as np
import pytest

from shoal.errors import Code, ShoalError
from shoal.index import (
    build_index,
    range_filter_hits,
    range_search_exact,
    search_exact,
    validate_index_params,
)
from shoal.schema import DataType, FieldSchema

N, DIM, NQ = 2000, 16, 12
RNG = np.random.default_rng(4)
BASE = RNG.normal(size=(N, DIM)).astype(np.float32)
QUERIES = RNG.normal(size=(NQ, DIM)).astype(np.float32)
FIELD = FieldSchema("v", DataType.FLOAT_VECTOR, dim=DIM)


def all_scores(metric: str) -> np.ndarray:
    if metric == "L2":
        return ((QUERIES[:, None, :] - BASE[None, :, :]) ** 2).sum(axis=2)
    if metric == "IP":
        return QUERIES @ BASE.T
    qn = QUERIES / np.linalg.norm(QUERIES, axis=1, keepdims=True)
    bn = BASE / np.linalg.norm(BASE, axis=1, keepdims=True)
    return qn @ bn.T


def window(metric: str, lo_rank: int, hi_rank: int) -> tuple[float, float]:
    """(radius, range_filter) around the hits ranked lo..hi of the first query."""
    s = np.sort(all_scores(metric)[0])
    if metric == "L2":
        return float(s[hi_rank]), float(s[lo_rank])
    s = s[::-1]
    return float(s[hi_rank]), float(s[lo_rank])


def index(index_type: str, metric: str):  # noqa: ANN201 - a VectorIndex
    spec = validate_index_params(
        FIELD, {"index_type": index_type, "metric_type": metric, "nlist": "16", "M": "16"}
    )
    return build_index(spec, BASE)


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
def test_flat_range_search_returns_exactly_the_window(metric: str) -> None:
    radius, range_filter = window(metric, 30, 130)
    scores, rows, lims = index("FLAT", metric).range_search(QUERIES, radius, range_filter, limit=1000)
    truth = all_scores(metric)
    assert lims.shape == (NQ + 1,) and lims[0] == 0 and lims[-1] == len(rows) == len(scores)
    for i in range(NQ):
        if metric == "L2":
            want = np.flatnonzero((truth[i] >= range_filter) & (truth[i] < radius))
        else:
            want = np.flatnonzero((truth[i] > radius) & (truth[i] <= range_filter))
        got = rows[lims[i] : lims[i + 1]]
        # float32 vs float64 may move a hit sitting exactly on the boundary
        assert len(set(got) ^ set(want)) <= 2
        assert range_filter_hits(scores[lims[i] : lims[i + 1]], radius, range_filter, metric).all()
    assert 90 <= lims[1] - lims[0] <= 101  # the first query's window holds the ranks 30..130


@pytest.mark.parametrize("metric", ["L2", "IP"])
def test_limit_keeps_the_best_hits_inside_the_window(metric: str) -> None:
    radius, range_filter = window(metric, 200, 900)  # best 200 excluded: needs a deep scan
    scores, rows, lims = index("FLAT", metric).range_search(QUERIES[:1], radius, range_filter, limit=25)
    assert lims.tolist() == [0, 25]
    inside = np.sort(all_scores(metric)[0])
    inside = (
        inside[(inside >= range_filter) & (inside < radius)]
        if metric == "L2"
        else (-np.sort(-inside[(inside > radius) & (inside <= range_filter)]))
    )
    assert np.allclose(scores, inside[:25], rtol=1e-4)


@pytest.mark.parametrize(("index_type", "metric"), [("HNSW", "L2"), ("IVF_FLAT", "COSINE"), ("SCANN", "IP")])
def test_ann_range_search_stays_inside_the_window(index_type: str, metric: str) -> None:
    radius, range_filter = window(metric, 5, 60)
    allowed = np.arange(N) % 4 != 0
    scores, rows, lims = index(index_type, metric).range_search(
        QUERIES, radius, range_filter, params={"ef": 48, "nprobe": 16}, allowed=allowed, limit=40
    )
    assert allowed[rows].all()
    assert range_filter_hits(scores, radius, range_filter, metric).all()
    assert 0 < lims[1] - lims[0] <= 40


def test_radius_only() -> None:
    radius, _ = window("L2", 0, 10)
    _, rows, lims = index("FLAT", "L2").range_search(QUERIES[:1], radius, None, limit=100)
    assert sorted(rows.tolist()) == sorted(np.argsort(all_scores("L2")[0])[:10].tolist())


@pytest.mark.parametrize(
    ("metric", "radius", "range_filter"), [("L2", 1.0, 2.0), ("L2", 1.0, 1.0), ("IP", 1.0, 0.5)]
)
def test_inverted_window_is_rejected(metric: str, radius: float, range_filter: float) -> None:
    with pytest.raises(ShoalError) as err:
        index("FLAT", metric).range_search(QUERIES, radius, range_filter)
    assert err.value.code == Code.PARAMETER_INVALID and "range_filter" in err.value.message


def test_range_filter_hits_matches_search_exact_scores() -> None:
    scores, _ = search_exact(BASE, QUERIES, 50, "IP")
    mask = range_filter_hits(scores, 1.0, 3.0, "IP")
    assert np.array_equal(mask, (scores > 1.0) & (scores <= 3.0))
    assert np.array_equal(range_filter_hits(scores, 3.0, 1.0, "L2"), (scores >= 1.0) & (scores < 3.0))


@pytest.mark.parametrize("metric", ["L2", "COSINE"])
def test_range_search_exact_on_a_growing_column(metric: str) -> None:
    radius, range_filter = window(metric, 10, 40)
    allowed = np.arange(N) % 2 == 0
    scores, rows, lims = range_search_exact(BASE, QUERIES, radius, range_filter, metric, allowed, limit=1000)
    truth = all_scores(metric)
    for i in range(NQ):
        inside = range_filter_hits(truth[i], radius, range_filter, metric) & allowed
        got = rows[lims[i] : lims[i + 1]]
        assert len(set(got) ^ set(np.flatnonzero(inside))) <= 2
    flat = index("FLAT", metric).range_search(QUERIES, radius, range_filter, allowed=allowed, limit=1000)
    assert np.array_equal(flat[2], lims) or np.abs(flat[2] - lims).max() <= 2


def test_range_search_exact_binary_and_sparse() -> None:
    bits = RNG.integers(0, 256, size=(500, 8), dtype=np.uint8)
    scores, rows, lims = range_search_exact(bits, bits[:3], 20, None, "HAMMING", limit=500)
    assert (scores < 20).all() and set(rows[lims[0] : lims[1]]) >= {0}
    sparse = [{1: 1.0, 2: 0.5}, {2: 2.0}, {7: 1.0}]
    scores, rows, lims = range_search_exact(sparse, [{2: 1.0}], 0.6, None, "IP", limit=10)
    assert rows.tolist() == [1] and lims.tolist() == [0, 1] and scores.tolist() == [2.0]
