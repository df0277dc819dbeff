"""IVF_RABITQ (faiss RaBitQ): recall against exact search, filters, refine, persistence.

RaBitQ keeps one bit per dimension, so at this test's 32 dimensions its own ranking is
rough; the refined variant re-ranks refine_k * k candidates on a finer copy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from recall_data import clustered, recall

from shoal.errors import ShoalError
from shoal.index import build_index, load_index, search_exact, validate_index_params
from shoal.schema import DataType, FieldSchema

N, DIM, NQ, K = 4000, 32, 40, 10
FIELD = FieldSchema("v", DataType.FLOAT_VECTOR, dim=DIM)


BASE, QUERIES = clustered(3, 30, N, NQ, DIM)


@pytest.mark.parametrize(
    ("metric", "params", "search", "floor"),
    [
        ("L2", {"nlist": "64"}, {}, 0.45),
        ("IP", {"nlist": "64"}, {"rbq_query_bits": 4}, 0.4),
        ("COSINE", {"nlist": "64", "refine": "true"}, {"refine_k": 4}, 0.9),
        ("L2", {"nlist": "64", "refine": "true", "refine_type": "SQ8"}, {"refine_k": 4, "nprobe": 16}, 0.9),
    ],
)
def test_recall_against_exact(metric: str, params: dict, search: dict, floor: float, tmp_path: Path) -> None:
    spec = validate_index_params(FIELD, {"index_type": "IVF_RABITQ", "metric_type": metric, **params})
    index = build_index(spec, BASE)
    _, truth = search_exact(BASE, QUERIES, K, metric)
    _, rows = index.search(QUERIES, K, search)
    assert recall(rows, truth) >= floor
    allowed = np.zeros(N, bool)
    allowed[::9] = True
    _, rows = index.search(QUERIES, K, search, allowed)
    assert allowed[rows[rows >= 0]].all() and (rows >= 0).all()
    index.save(tmp_path / "i")
    again = load_index(tmp_path / "i")
    assert np.array_equal(again.search(QUERIES, K, search)[1], index.search(QUERIES, K, search)[1])


def test_bad_params() -> None:
    with pytest.raises(ShoalError):
        validate_index_params(FIELD, {"index_type": "IVF_RABITQ", "metric_type": "L2", "refine_type": "INT8"})
    spec = validate_index_params(FIELD, {"index_type": "IVF_RABITQ", "metric_type": "L2"})
    index = build_index(spec, BASE[:500])
    with pytest.raises(ShoalError):
        index.search(QUERIES, K, {"rbq_query_bits": 9})
