"""L2 distances in a returned top-k are exact: a vector's distance to itself is 0 and
neighbours closer together than float32 rounding of `|q|^2 + |x|^2 - 2 q.x` keep their order.

The rows sit far from the origin (norms near 1,000) with near-duplicates a few thousandths
apart, where that form loses the distances entirely. Growing segments (brute force, also
filtered) and DISKANN's re-ranking used it; FLAT (single queries, batches, filtered), HNSW and
IVF_FLAT (faiss scores them from differences) are checked too, against float64 differences.
"""

from __future__ import annotations

import numpy as np
import pytest

from shoal.index import build_index, search_exact, validate_index_params
from shoal.schema import DataType, FieldSchema

N, DIM, K = 3000, 32, 10


def far_rows() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    centres = rng.normal(size=(N // 3, DIM)) + 180.0
    # each centre with two near-duplicates at distinct tiny offsets: ties only float64 separates
    base = np.repeat(centres, 3, axis=0) + rng.normal(size=(N, DIM)) * 1e-3
    queries = base[rng.choice(N, 40, replace=False)]
    return base.astype(np.float32), queries.astype(np.float32)


BASE, QUERIES = far_rows()


def truth(base: np.ndarray, queries: np.ndarray, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    d = ((queries[:, None, :].astype(np.float64) - base[None, :, :].astype(np.float64)) ** 2).sum(-1)
    if allowed is not None:
        d[:, ~allowed] = np.inf
    order = np.argsort(d, axis=1, kind="stable")[:, :K]
    return np.take_along_axis(d, order, axis=1), order


def check(scores: np.ndarray, rows: np.ndarray, base: np.ndarray, queries: np.ndarray, allowed: np.ndarray | None = None) -> None:
    want_s, want_rows = truth(base, queries, allowed)
    np.testing.assert_array_equal(rows, want_rows)
    np.testing.assert_allclose(scores, want_s, rtol=1e-4, atol=1e-9)
    self_rows = (want_s[:, 0] == 0).nonzero()[0]
    assert len(self_rows) and (scores[self_rows, 0] == 0).all()


def test_the_matrix_product_form_loses_these_distances() -> None:
    """The data really is hard: the fast form alone gets self-distances wrong."""
    q, x = QUERIES[:5].astype(np.float32), BASE
    fast = (q * q).sum(1)[:, None] + (x * x).sum(1)[None, :] - 2 * q @ x.T
    assert np.abs(fast.min(axis=1)).max() > 1e-3


@pytest.mark.parametrize("nq", [1, 40])
def test_brute_force_of_growing_segments(nq: int) -> None:
    scores, rows = search_exact(BASE, QUERIES[:nq], K, "L2")
    check(scores, rows, BASE, QUERIES[:nq])


def test_brute_force_with_a_filter() -> None:
    allowed = np.arange(N) % 2 == 0
    scores, rows = search_exact(BASE, QUERIES, K, "L2", allowed)
    check(scores, rows, BASE, QUERIES, allowed)


@pytest.mark.parametrize(
    ("index_type", "params", "search"),
    [
        ("FLAT", {}, {}),
        ("HNSW", {"M": "16", "efConstruction": "200"}, {"ef": "200"}),
        ("IVF_FLAT", {"nlist": "16"}, {"nprobe": "16"}),
        ("DISKANN", {}, {"search_list": "200"}),
    ],
)
@pytest.mark.parametrize("nq", [1, 40])
def test_indexes_return_exact_l2(index_type: str, params: dict, search: dict, nq: int) -> None:
    spec = validate_index_params(FieldSchema("v", DataType.FLOAT_VECTOR, dim=DIM), {"index_type": index_type, "metric_type": "L2", **params})
    index = build_index(spec, BASE)
    scores, rows = index.search(QUERIES[:nq], K, search)
    check(scores, rows, BASE, QUERIES[:nq])


def test_flat_batch_with_a_filter() -> None:
    spec = validate_index_params(FieldSchema("v", DataType.FLOAT_VECTOR, dim=DIM), {"index_type": "FLAT", "metric_type": "L2"})
    index = build_index(spec, BASE)
    allowed = np.arange(N) % 5 != 1
    scores, rows = index.search(QUERIES, K, {}, allowed)
    check(scores, rows, BASE, QUERIES, allowed)
