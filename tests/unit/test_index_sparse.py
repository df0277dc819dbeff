"""Sparse vectors: SPARSE_INVERTED_INDEX / SPARSE_WAND (IP) against a dense numpy dot product."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shoal.errors import ShoalError
from shoal.index import build_index, load_index, search_exact, validate_index_params
from shoal.schema import DataType, FieldSchema, object_array

N, VOCAB, NQ, K = 3000, 800, 25, 10
FIELD = FieldSchema("s", DataType.SPARSE_FLOAT_VECTOR)


def random_sparse(count: int, nnz: int, rng: np.random.Generator) -> list[dict[int, float]]:
    rows = []
    for _ in range(count):
        dims = rng.choice(VOCAB, nnz, replace=False)
        rows.append({int(d): float(v) for d, v in zip(dims, rng.random(nnz) + 0.01, strict=True)})
    return rows


RNG = np.random.default_rng(9)
ROWS = object_array(random_sparse(N, 20, RNG))
QUERIES = random_sparse(NQ, 12, RNG)


def dense(items: list[dict[int, float]] | np.ndarray) -> np.ndarray:
    out = np.zeros((len(items), VOCAB))
    for i, row in enumerate(items):
        for d, v in row.items():
            out[i, d] = v
    return out


DOTS = dense(QUERIES) @ dense(ROWS).T


def build(index_type: str, **params: str):  # noqa: ANN201 - a VectorIndex
    spec = validate_index_params(FIELD, {"index_type": index_type, "metric_type": "IP", **params})
    return build_index(spec, ROWS)


@pytest.mark.parametrize("index_type", ["SPARSE_INVERTED_INDEX", "SPARSE_WAND", "AUTOINDEX"])
def test_top_k_equals_dense_dot_product(index_type: str) -> None:
    scores, rows = build(index_type).search(QUERIES, K)
    expected = np.take_along_axis(DOTS, rows, axis=1)
    assert np.allclose(scores, expected, rtol=1e-5)
    assert np.allclose(scores[:, -1], np.sort(DOTS, axis=1)[:, -K], rtol=1e-5)  # nothing better was missed
    assert (np.diff(scores, axis=1) <= 0).all()


def test_only_rows_sharing_a_dimension_are_hits() -> None:
    index = build("SPARSE_INVERTED_INDEX")
    lonely = {VOCAB + 5: 1.0}
    scores, rows = index.search([lonely, {int(next(iter(ROWS[0]))): 1.0}], 5000)
    assert (rows[0] == -1).all() and np.isneginf(scores[0]).all()
    hits = rows[1][rows[1] >= 0]
    assert len(hits) == np.count_nonzero(DOTS.shape and dense(ROWS)[:, next(iter(ROWS[0]))])
    assert (scores[1][: len(hits)] > 0).all()


@pytest.mark.parametrize("fraction", [0.01, 0.001, 0.5])
def test_filtered_search(fraction: float) -> None:
    allowed = np.zeros(N, bool)
    allowed[np.random.default_rng(2).choice(N, int(N * fraction), replace=False)] = True
    scores, rows = build("SPARSE_WAND").search(QUERIES, K, allowed=allowed)
    assert allowed[rows[rows >= 0]].all()
    masked = np.where(allowed[None, :] & (DOTS > 0), DOTS, -np.inf)
    best = -np.sort(-masked, axis=1)[:, :K]
    got = np.where(rows >= 0, scores, -np.inf)
    assert np.allclose(got, best, rtol=1e-5)


def test_drop_ratio_search_ignores_the_smallest_query_values() -> None:
    index = build("SPARSE_INVERTED_INDEX")
    q = QUERIES[0]
    kept = dict(sorted(q.items(), key=lambda kv: kv[1])[len(q) // 2 :])
    dropped = index.search([q], K, params={"drop_ratio_search": "0.5"})
    assert np.array_equal(dropped[1], index.search([kept], K)[1])
    with pytest.raises(ShoalError):
        index.search([q], K, params={"drop_ratio_search": 1.0})


def test_drop_ratio_build_indexes_only_the_largest_values() -> None:
    pruned = object_array([dict(sorted(r.items(), key=lambda kv: kv[1])[len(r) // 4 :]) for r in ROWS])
    dots = dense(QUERIES) @ dense(pruned).T
    scores, rows = build("SPARSE_INVERTED_INDEX", drop_ratio_build="0.25").search(QUERIES, K)
    assert np.allclose(scores, np.take_along_axis(dots, rows, axis=1), rtol=1e-5)
    assert np.allclose(scores[:, -1], np.sort(dots, axis=1)[:, -K], rtol=1e-5)


def test_search_exact_on_dict_rows_matches_the_index() -> None:
    s1, r1 = search_exact(ROWS, QUERIES, K, "IP")
    s2, r2 = build("SPARSE_INVERTED_INDEX").search(QUERIES, K)
    assert np.allclose(s1, s2) and np.allclose(np.take_along_axis(DOTS, r1, axis=1), s2, rtol=1e-5)
    allowed = np.arange(N) % 7 == 0
    s3, r3 = search_exact(list(ROWS), QUERIES, K, "IP", allowed=allowed)
    assert allowed[r3[r3 >= 0]].all()


def test_range_search_ip_window() -> None:
    index = build("SPARSE_INVERTED_INDEX")
    scores, rows, lims = index.range_search(QUERIES, radius=0.5, range_filter=1.5, limit=100)
    for i in range(NQ):
        want = np.flatnonzero((DOTS[i] > 0.5) & (DOTS[i] <= 1.5))
        got = rows[lims[i] : lims[i + 1]]
        assert len(got) == min(100, len(want)) and set(got) <= set(want)


def test_save_load_round_trip(tmp_path: Path) -> None:
    index = build("SPARSE_WAND", drop_ratio_build="0.1")
    index.save(tmp_path)
    for mmap in (True, False):
        again = load_index(tmp_path, mmap=mmap)
        s1, r1 = index.search(QUERIES, K)
        s2, r2 = again.search(QUERIES, K)
        assert np.array_equal(r1, r2) and np.array_equal(s1, s2)


def test_bad_sparse_input_is_a_user_error() -> None:
    index = build("SPARSE_INVERTED_INDEX")
    for bad in ([{1: -1.0}], [[1, 2, 3]], [{-4: 1.0}]):
        with pytest.raises(ShoalError):
            index.search(bad, K)
