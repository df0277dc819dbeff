"""search_exact: brute force over growing segments in every column layout, Milvus conventions."""

from __future__ import annotations

import numpy as np
import pytest

from shoal.errors import Code, ShoalError
from shoal.index import search_exact
from shoal.index.vectors import bfloat16_bits, to_float32

RNG = np.random.default_rng(21)
N, DIM, K = 700, 24, 7
F32 = RNG.normal(size=(N, DIM)).astype(np.float32)
Q32 = RNG.normal(size=(5, DIM)).astype(np.float32)


def numpy_topk(base: np.ndarray, queries: np.ndarray, metric: str, k: int) -> tuple[np.ndarray, np.ndarray]:
    b, q = base.astype(np.float64), queries.astype(np.float64)
    if metric == "L2":
        s = ((q[:, None, :] - b[None]) ** 2).sum(axis=2)
        order = np.argsort(s, axis=1, kind="stable")[:, :k]
    else:
        if metric == "COSINE":
            b = b / np.linalg.norm(b, axis=1, keepdims=True)
            q = q / np.linalg.norm(q, axis=1, keepdims=True)
        s = q @ b.T
        order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(s, order, axis=1), order


LAYOUTS = {
    "float32": (F32, Q32),
    "float16": (F32.astype(np.float16), Q32.astype(np.float16)),
    "bfloat16": (bfloat16_bits(F32), bfloat16_bits(Q32)),
    "int8": ((F32 * 30).clip(-128, 127).astype(np.int8), (Q32 * 30).clip(-128, 127).astype(np.int8)),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
def test_every_dense_layout_and_metric(layout: str, metric: str) -> None:
    base, queries = LAYOUTS[layout]
    scores, rows = search_exact(base, queries, K, metric)
    as_float = to_float32(base) if layout == "bfloat16" else base.astype(np.float32)
    q_float = to_float32(queries) if layout == "bfloat16" else queries.astype(np.float32)
    want_s, want_r = numpy_topk(as_float, q_float, metric, K)
    assert scores.dtype == np.float32 and rows.dtype == np.int64 and rows.shape == (5, K)
    assert np.allclose(scores, want_s, rtol=1e-4, atol=1e-3)
    assert (rows == want_r).mean() > 0.95  # equal up to exact ties


def test_one_dimensional_query_and_k_beyond_rows() -> None:
    scores, rows = search_exact(F32[:3], Q32[0], 5, "IP")
    assert rows.shape == (1, 5)
    assert sorted(rows[0, :3].tolist()) == [0, 1, 2]
    assert (rows[0, 3:] == -1).all() and np.isneginf(scores[0, 3:]).all()
    scores, rows = search_exact(F32[:3], Q32[:1], 5, "L2")
    assert np.isposinf(scores[0, 3:]).all()


def test_allowed_mask_restricts_rows() -> None:
    allowed = np.zeros(N, bool)
    allowed[[3, 50, 600]] = True
    scores, rows = search_exact(F32, Q32, K, "L2", allowed=allowed)
    assert set(rows[:, :3].ravel()) <= {3, 50, 600} and (rows[:, 3:] == -1).all()
    none = search_exact(F32, Q32, K, "L2", allowed=np.zeros(N, bool))[1]
    assert (none == -1).all()


def test_large_input_is_scanned_in_chunks() -> None:
    base = RNG.normal(size=(40_000, 8)).astype(np.float16)  # more rows than one conversion chunk
    scores, rows = search_exact(base, base[[12, 39_999]], 1, "L2")
    assert rows[:, 0].tolist() == [12, 39_999] and np.allclose(scores[:, 0], 0, atol=1e-3)


def test_binary_layout() -> None:
    base = RNG.integers(0, 256, size=(300, 4), dtype=np.uint8)
    scores, rows = search_exact(base, base[:2], 3, "HAMMING")
    assert rows[:, 0].tolist() == [0, 1] and (scores[:, 0] == 0).all()
    jac, _ = search_exact(base, base[:2], 3, "JACCARD")
    assert (jac >= 0).all() and (jac <= 1).all() and (jac[:, 0] == 0).all()


@pytest.mark.parametrize(("vectors", "metric"), [(F32, "HAMMING"), (F32, "BM25"), ([{1: 1.0}], "L2")])
def test_metric_not_fitting_the_layout(vectors: object, metric: str) -> None:
    with pytest.raises(ShoalError) as err:
        search_exact(vectors, Q32 if metric != "L2" else [{1: 1.0}], K, metric)
    assert err.value.code == Code.PARAMETER_INVALID


def test_bad_k_and_dim() -> None:
    for k in (0, 16385):
        with pytest.raises(ShoalError):
            search_exact(F32, Q32, k, "L2")
    with pytest.raises(ShoalError):
        search_exact(F32, Q32[:, :5], K, "L2")
