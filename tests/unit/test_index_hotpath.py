"""The search hot path: little Python around faiss, and safe under concurrent searches."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import numpy as np
import pytest

from shoal.index import build_index, validate_index_params
from shoal.schema import DataType, FieldSchema

DIM = 64
RNG = np.random.default_rng(17)
BASE = RNG.normal(size=(3000, DIM)).astype(np.float32)
QUERIES = RNG.normal(size=(64, DIM)).astype(np.float32)
FIELD = FieldSchema("v", DataType.FLOAT_VECTOR, dim=DIM)


class InstantFaiss:
    """Stands in for the faiss index to time only Shoal's own work around a search."""

    def __init__(self, k: int) -> None:
        self.result = (np.zeros((1, k), np.float32), np.arange(k, dtype=np.int64)[None, :])

    def search(self, q: np.ndarray, k: int, params: Any = None) -> tuple[np.ndarray, np.ndarray]:
        return self.result


def test_serial_single_query_overhead_is_small() -> None:
    index = build_index(
        validate_index_params(FIELD, {"index_type": "HNSW", "M": "8", "efConstruction": "32"}), BASE
    )
    index.index = InstantFaiss(10)  # type: ignore[attr-defined]
    query = QUERIES[:1]
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(300):
            index.search(query, 10, {"ef": "64"})
        best = min(best, (time.perf_counter() - start) / 300)
    assert best < 80e-6, f"{best * 1e6:.1f} us of Python per nq=1 search"


def one_search(index: Any, queries: np.ndarray, allowed: np.ndarray, i: int) -> tuple[np.ndarray, np.ndarray]:
    return index.search(queries[i : i + 1], 5, {"nprobe": 1 + i % 4}, allowed)


@pytest.mark.parametrize("index_type", ["HNSW", "IVF_FLAT", "BIN_FLAT"])
def test_concurrent_searches_match_serial_ones(index_type: str) -> None:
    if index_type == "BIN_FLAT":
        fld = FieldSchema("b", DataType.BINARY_VECTOR, dim=DIM)
        base, queries = np.packbits(BASE > 0, axis=1), np.packbits(QUERIES > 0, axis=1)
    else:
        fld, base, queries = FIELD, BASE, QUERIES
    index = build_index(validate_index_params(fld, {"index_type": index_type, "nlist": "16"}), base)
    allowed = np.arange(len(base)) % 3 != 1
    task = partial(one_search, index, queries, allowed)
    serial = [task(i) for i in range(len(queries))]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(task, range(len(queries))))
    for (s1, r1), (s2, r2) in zip(serial, parallel, strict=True):
        assert np.array_equal(r1, r2) and np.array_equal(s1, s2)
