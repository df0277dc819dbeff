"""FLOAT16, BFLOAT16 and INT8 vectors: indexed and searched in their own stored precision."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from recall_data import recall

from shoal.index import build_index, load_index, search_exact, validate_index_params
from shoal.index.vectors import bfloat16_bits, to_float32
from shoal.schema import DataType, FieldSchema

N, DIM, NQ, K = 3000, 32, 30, 10


def clustered(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(30, DIM)) * 3.0
    base = centers[rng.integers(0, 30, N)] + rng.normal(size=(N, DIM))
    queries = centers[rng.integers(0, 30, NQ)] + rng.normal(size=(NQ, DIM))
    return base.astype(np.float32), queries.astype(np.float32)


F32, Q32 = clustered(11)
LAYOUTS = {
    DataType.FLOAT16_VECTOR: (F32.astype(np.float16), Q32.astype(np.float16)),
    DataType.BFLOAT16_VECTOR: (bfloat16_bits(F32), bfloat16_bits(Q32)),
    DataType.INT8_VECTOR: (
        np.clip(np.round(F32 * 12), -128, 127).astype(np.int8),
        np.clip(np.round(Q32 * 12), -128, 127).astype(np.int8),
    ),
}



def test_bfloat16_bits_round_trip_within_bfloat16_precision() -> None:
    back = to_float32(bfloat16_bits(F32))
    assert np.allclose(back, F32, rtol=2**-8)
    assert bfloat16_bits(np.array([1.0], np.float32))[0] == 0x3F80


@pytest.mark.parametrize("dtype", list(LAYOUTS), ids=lambda d: d.name)
@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
def test_flat_is_exact_in_stored_precision(dtype: DataType, metric: str) -> None:
    base, queries = LAYOUTS[dtype]
    fld = FieldSchema("v", dtype, dim=DIM)
    index = build_index(validate_index_params(fld, {"index_type": "FLAT", "metric_type": metric}), base)
    scores, rows = index.search(queries, K)
    truth_s, truth = search_exact(base, queries, K, metric)
    # COSINE stores unit vectors, re-rounded to the stored precision: near-ties may swap.
    rounded = metric == "COSINE" and dtype is not DataType.FLOAT16_VECTOR
    assert recall(rows, truth) >= (0.99 if rounded else 1.0)
    tol = 1e-2 if rounded else 1e-3
    assert np.allclose(scores, truth_s, rtol=tol, atol=tol * np.abs(truth_s).max())
    # Stored as 2 (or 1) bytes per value: no float32 copy lives in the index.
    width = 1 if dtype is DataType.INT8_VECTOR and metric != "COSINE" else 2
    assert index.memory_bytes <= N * DIM * width


# Milvus indexes INT8 vectors with the HNSW family only.
APPROX_CASES = [
    (dtype, index_type)
    for dtype in LAYOUTS
    for index_type in ("HNSW", "HNSW_SQ", "IVF_FLAT", "DISKANN", "SCANN")
    if dtype is not DataType.INT8_VECTOR or index_type.startswith("HNSW")
]


@pytest.mark.parametrize(
    ("dtype", "index_type"), APPROX_CASES, ids=[f"{d.name}-{t}" for d, t in APPROX_CASES]
)
def test_approximate_indexes_on_half_precision(dtype: DataType, index_type: str, tmp_path: Path) -> None:
    base, queries = LAYOUTS[dtype]
    fld = FieldSchema("v", dtype, dim=DIM)
    params = {"index_type": index_type, "metric_type": "L2", "nlist": "32", "M": "16", "efConstruction": "80"}
    index = build_index(validate_index_params(fld, params), base)
    _, rows = index.search(queries, K)
    _, truth = search_exact(base, queries, K, "L2")
    assert recall(rows, truth) >= 0.9
    index.save(tmp_path)
    assert np.array_equal(load_index(tmp_path).search(queries, K)[1], rows)


def test_int8_field_rejects_index_types_milvus_rejects() -> None:
    fld = FieldSchema("v", DataType.INT8_VECTOR, dim=DIM)
    from shoal.errors import ShoalError

    with pytest.raises(ShoalError):
        validate_index_params(fld, {"index_type": "IVF_FLAT", "metric_type": "L2"})


def test_bfloat16_queries_may_be_raw_bits_or_floats() -> None:
    base, queries = LAYOUTS[DataType.BFLOAT16_VECTOR]
    fld = FieldSchema("v", DataType.BFLOAT16_VECTOR, dim=DIM)
    index = build_index(validate_index_params(fld, {"index_type": "FLAT", "metric_type": "IP"}), base)
    raw = index.search(queries, K)
    floats = index.search(to_float32(queries), K)
    assert np.array_equal(raw[1], floats[1]) and np.allclose(raw[0], floats[0])
