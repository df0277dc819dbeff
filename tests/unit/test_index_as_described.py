"""DescribeIndex reports what was built: for every index type in the registry, the build
parameters given flat (as pymilvus sends `params={"nlist": 7}`) are the ones the built
faiss / sparse structure carries, never the defaults.

The engine is driven directly; the built index is read back from the segment it serves.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest

from shoal.engine import open_engine
from shoal.index import build_index, validate_index_params
from shoal.index.registry import REGISTRY
from shoal.schema import CollectionSchema, Column, DataType, FieldSchema

N, DIM = 600, 16
F32 = DataType.FLOAT_VECTOR

# index type -> (vector type, metric, flat build params that differ from every default)
CASES: dict[str, tuple[DataType, str, dict[str, str]]] = {
    "FLAT": (F32, "L2", {}),
    "IVF_FLAT": (F32, "L2", {"nlist": "7"}),
    "IVF_SQ8": (F32, "IP", {"nlist": "9"}),
    "IVF_PQ": (F32, "L2", {"nlist": "5", "m": "4", "nbits": "6"}),
    "HNSW": (F32, "L2", {"M": "6", "efConstruction": "50"}),
    "HNSW_SQ": (F32, "L2", {"M": "5", "efConstruction": "40", "sq_type": "FP16", "refine": "true", "refine_type": "SQ8"}),
    "HNSW_PQ": (F32, "L2", {"M": "7", "efConstruction": "30", "m": "8", "nbits": "7"}),
    "HNSW_PRQ": (F32, "L2", {"M": "6", "efConstruction": "30", "m": "4", "nbits": "5", "nrq": "3"}),
    "SCANN": (F32, "L2", {"nlist": "6", "with_raw_data": "false"}),
    "IVF_RABITQ": (F32, "L2", {"nlist": "4", "refine": "true", "refine_type": "FP16"}),
    "DISKANN": (F32, "L2", {"max_degree": "12", "search_list_size": "33"}),
    "GPU_IVF_FLAT": (F32, "L2", {"nlist": "3"}),
    "GPU_IVF_PQ": (F32, "L2", {"nlist": "3", "m": "2", "nbits": "5"}),
    "GPU_CAGRA": (F32, "L2", {"intermediate_graph_degree": "40", "graph_degree": "20"}),
    "GPU_BRUTE_FORCE": (F32, "IP", {}),
    "BIN_FLAT": (DataType.BINARY_VECTOR, "HAMMING", {}),
    "BIN_IVF_FLAT": (DataType.BINARY_VECTOR, "HAMMING", {"nlist": "11"}),  # JACCARD: an exact scan
    "MINHASH_LSH": (DataType.BINARY_VECTOR, "MHJACCARD", {"mh_lsh_band": "2"}),  # dim 64: 2 minima
    "SPARSE_INVERTED_INDEX": (DataType.SPARSE_FLOAT_VECTOR, "IP", {"drop_ratio_build": "0.5"}),
    "SPARSE_WAND": (DataType.SPARSE_FLOAT_VECTOR, "IP", {"drop_ratio_build": "0.25"}),
}


def test_every_registered_index_type_has_a_case() -> None:
    assert set(CASES) == set(REGISTRY)


def vectors(dtype: DataType, rng: np.random.Generator) -> Any:
    if dtype is DataType.BINARY_VECTOR:
        return rng.integers(0, 256, size=(N, DIM // 8 * 8), dtype=np.uint8)[:, : 64 // 8]
    if dtype is DataType.SPARSE_FLOAT_VECTOR:
        out = []
        for _ in range(N):
            keys = rng.choice(200, 8, replace=False)
            out.append({int(k): float(v) for k, v in zip(keys, rng.random(8) + 0.1, strict=True)})
        return out
    return rng.normal(size=(N, DIM)).astype(np.float32)


def dim_of(dtype: DataType) -> int | None:
    return {DataType.BINARY_VECTOR: 64, DataType.SPARSE_FLOAT_VECTOR: None}.get(dtype, DIM)


def _ivf(index: Any) -> Any:
    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:
        return None


def _hnsw_of(index: Any) -> Any:
    index = faiss.downcast_index(index.base_index) if isinstance(index, faiss.IndexRefine) else index
    return index if isinstance(index, faiss.IndexHNSW) else None


def built_params(index_type: str, built: Any) -> dict[str, str]:
    """What the built structure carries, in DescribeIndex's terms."""
    out: dict[str, str] = {}
    if built.family == "sparse":
        given = sum(len(v) for v in vectors(DataType.SPARSE_FLOAT_VECTOR, np.random.default_rng(1)))
        kept = len(built.arrays["values"])
        out["drop_ratio_build"] = str(round(1 - kept / given, 2))
        return out
    if built.family == "minhash":
        return {"mh_lsh_band": str(built.bands)}
    index = built.index
    if built.family == "binary":
        return {"nlist": str(index.nlist)} if isinstance(index, faiss.IndexBinaryIVF) else {}
    ivf = _ivf(index)
    if ivf is not None:
        out["nlist"] = str(ivf.nlist)
        ivf = faiss.downcast_index(ivf)
        if isinstance(ivf, faiss.IndexIVFPQ):
            out["m"], out["nbits"] = str(ivf.pq.M), str(ivf.pq.nbits)
    out["refine"] = str(isinstance(index, faiss.IndexRefine)).lower()
    if isinstance(index, faiss.IndexRefine):
        refine = faiss.downcast_index(index.refine_index)
        names = {faiss.ScalarQuantizer.QT_8bit: "SQ8", faiss.ScalarQuantizer.QT_fp16: "FP16"}
        out["refine_type"] = "FP32" if isinstance(refine, faiss.IndexFlat) else names[refine.sq.qtype]
    hnsw = _hnsw_of(index)
    if hnsw is not None:
        links, out["efConstruction"] = hnsw.hnsw.nb_neighbors(1), str(hnsw.hnsw.efConstruction)
        out["M"] = str(links)
        storage = faiss.downcast_index(hnsw.storage)
        if isinstance(storage, faiss.IndexPQ):
            out["m"], out["nbits"] = str(storage.pq.M), str(storage.pq.nbits)
        if isinstance(storage, faiss.IndexProductResidualQuantizer):
            rq = faiss.downcast_AdditiveQuantizer(storage.prq.subquantizer(0))
            out["m"], out["nrq"], out["nbits"] = str(storage.prq.nsplits), str(rq.M), str(rq.nbits.at(0))
        if isinstance(storage, faiss.IndexScalarQuantizer):
            out["sq_type"] = {faiss.ScalarQuantizer.QT_fp16: "FP16", faiss.ScalarQuantizer.QT_8bit: "SQ8"}[storage.sq.qtype]
        if index_type == "DISKANN":  # out-degree max_degree / 2 per level, built with search_list_size
            out["max_degree"], out["search_list_size"] = str(2 * links), out.pop("efConstruction")
        if index_type == "GPU_CAGRA":  # the CPU graph: half graph_degree links per level
            out["graph_degree"] = str(2 * links)
    if index_type == "SCANN":
        out["with_raw_data"] = out["refine"]
    return out


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    eng = open_engine(tmp_path_factory.mktemp("described"), {"segment_max_rows": 10_000, "min_index_rows": 100})
    yield eng
    eng.close()


@pytest.mark.parametrize("index_type", sorted(CASES))
def test_describe_index_reports_what_was_built(engine: Any, index_type: str) -> None:
    dtype, metric, params = CASES[index_type]
    name = f"c_{index_type.lower()}"
    schema = CollectionSchema(
        fields=[
            FieldSchema("id", DataType.INT64, field_id=100, is_primary=True),
            FieldSchema("vec", dtype, field_id=101, dim=dim_of(dtype)),
        ]
    )
    engine.create_collection("", name, schema)
    rng = np.random.default_rng(1)
    engine.insert("", name, "", {"id": Column(np.arange(N, dtype=np.int64)), "vec": Column(vectors(dtype, rng))}, N)
    engine.flush("", [name])
    engine.create_index("", name, "vec", "vidx", {"index_type": index_type, "metric_type": metric, **params})
    deadline = time.monotonic() + 120
    while (info := engine.describe_index("", name, "vec")[0]).state != "Finished":
        assert info.state != "Failed" and time.monotonic() < deadline, info
        time.sleep(0.05)
    assert info.params == {"index_type": index_type, "metric_type": metric, **params}
    (seg,) = engine.datas[engine.catalog.require("", name).collection_id].snapshot()
    built = built_params(index_type, seg.indexes["vec"])
    for key, value in params.items():
        if key == "intermediate_graph_degree":
            continue  # CAGRA's build-time candidate list: the CPU graph's efConstruction
        assert built[key] == value.lower() if key in ("refine", "with_raw_data") else built[key] == value, (key, built)


def test_flat_nlist_is_built_not_only_reported(tmp_path: Path) -> None:
    """The issue's case: `params={"nlist": 7}` arrives as its own key; faiss must get 7, not 128."""
    field = FieldSchema("v", F32, dim=DIM)
    spec = validate_index_params(field, {"index_type": "IVF_FLAT", "metric_type": "L2", "nlist": "7"})
    built = build_index(spec, np.random.default_rng(2).normal(size=(N, DIM)).astype(np.float32))
    assert faiss.extract_index_ivf(built.index).nlist == 7
    assert spec.to_params()["nlist"] == "7"
