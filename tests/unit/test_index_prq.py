"""HNSW_PRQ: an HNSW graph over product residual quantizer codes (faiss), against exact search.

The graph is built on the exact vectors and then kept over the codes (as HNSW_PQ), so recall
measures what the codes lose: with `nrq` residual steps per split the codes come close to the
exact ranking, and `refine` re-ranks on a finer copy.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest
from recall_data import clustered, recall

from shoal.errors import ShoalError
from shoal.index import build_index, load_index, search_exact, validate_index_params
from shoal.schema import DataType, FieldSchema

N, DIM, NQ, K = 1500, 16, 30, 10
FIELD = FieldSchema("v", DataType.FLOAT_VECTOR, dim=DIM)
BUILD = {"M": "16", "efConstruction": "80"}


BASE, QUERIES = clustered(5, 20, N, NQ, DIM)


@pytest.mark.parametrize(
    ("metric", "params", "search", "floor"),
    [
        ("L2", {}, {"ef": 64}, 0.85),
        ("IP", {"m": "4", "nrq": "3"}, {"ef": 64}, 0.8),
        ("COSINE", {"m": "4", "nbits": "6", "refine": "true", "refine_type": "FP32"}, {"ef": 64, "refine_k": 4}, 0.95),
    ],
)
def test_recall_against_exact(metric: str, params: dict, search: dict, floor: float, tmp_path: Path) -> None:
    spec = validate_index_params(FIELD, {"index_type": "HNSW_PRQ", "metric_type": metric, **BUILD, **params})
    index = build_index(spec, BASE)
    _, truth = search_exact(BASE, QUERIES, K, metric)
    _, rows = index.search(QUERIES, K, search)
    assert recall(rows, truth) >= floor
    allowed = np.zeros(N, bool)
    allowed[::7] = True
    _, rows = index.search(QUERIES, K, search, allowed)
    assert allowed[rows[rows >= 0]].all() and (rows >= 0).all()
    index.save(tmp_path / "i")
    again = load_index(tmp_path / "i")
    assert np.array_equal(again.search(QUERIES, K, search)[1], index.search(QUERIES, K, search)[1])


def test_codes_are_residual_and_smaller_than_the_vectors() -> None:
    spec = validate_index_params(FIELD, {"index_type": "HNSW_PRQ", "metric_type": "L2", **BUILD, "m": "8", "nrq": "2"})
    index = build_index(spec, BASE)
    graph = index.index
    codes = faiss.downcast_index(graph.storage)
    assert isinstance(codes, faiss.IndexProductResidualQuantizer)
    assert codes.prq.nsplits == 8 and codes.code_size == 8 * 2  # 8 splits x 2 residual bytes
    assert codes.code_size < DIM * 4
    # the second residual step lowers the reconstruction error of the first
    one = build_index(validate_index_params(FIELD, {"index_type": "HNSW_PRQ", "metric_type": "L2", **BUILD, "m": "8", "nrq": "1"}), BASE)

    def error(ix: object) -> float:
        storage = faiss.downcast_index(ix.index.storage)  # type: ignore[attr-defined]
        return float(((storage.reconstruct_n(0, N) - BASE) ** 2).sum(1).mean())

    assert error(index) < error(one)


@pytest.mark.parametrize("params", [{"nrq": "0"}, {"nrq": "17"}, {"nbits": "25"}, {"m": "5"}, {"refine_type": "INT8"}])
def test_bad_params_are_1100(params: dict) -> None:
    with pytest.raises(ShoalError) as err:
        validate_index_params(FIELD, {"index_type": "HNSW_PRQ", "metric_type": "L2", **params})
    assert err.value.code == 1100
