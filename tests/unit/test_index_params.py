"""create_index parameter checks: names, ranges and metrics the way Milvus reports them."""

from __future__ import annotations

import json

import pytest

from shoal.errors import Code, ShoalError
from shoal.index import validate_index_params
from shoal.schema import DataType, FieldSchema

FLOAT = FieldSchema("v", DataType.FLOAT_VECTOR, dim=32)
HALF = FieldSchema("v", DataType.FLOAT16_VECTOR, dim=32)
INT8 = FieldSchema("v", DataType.INT8_VECTOR, dim=32)
BINARY = FieldSchema("b", DataType.BINARY_VECTOR, dim=64)
SPARSE = FieldSchema("s", DataType.SPARSE_FLOAT_VECTOR)


def rejects(fld: FieldSchema, params: dict[str, str], *words: str) -> None:
    with pytest.raises(ShoalError) as err:
        validate_index_params(fld, params)
    assert err.value.code == Code.PARAMETER_INVALID, err.value
    for word in words:
        assert word in err.value.message, err.value.message


def test_flat_params_as_pymilvus_sends_them() -> None:
    spec = validate_index_params(FLOAT, {"index_type": "IVF_FLAT", "metric_type": "L2", "nlist": "256"})
    assert (spec.index_type, spec.kind, spec.metric_type) == ("IVF_FLAT", "IVF_FLAT", "L2")
    assert spec.build["nlist"] == 256
    assert spec.to_params() == {"index_type": "IVF_FLAT", "metric_type": "L2", "nlist": "256"}


def test_nested_params_json_is_accepted() -> None:
    spec = validate_index_params(
        FLOAT,
        {"index_type": "HNSW", "metric_type": "IP", "params": json.dumps({"M": 8, "efConstruction": 64})},
    )
    assert spec.build["M"] == 8 and spec.build["efConstruction"] == 64
    assert spec.to_params()["M"] == "8"


def test_autoindex_resolves_per_vector_type_with_milvus_default_metrics() -> None:
    dense = validate_index_params(FLOAT, {"index_type": "AUTOINDEX"})
    assert (dense.kind, dense.metric_type) == ("HNSW", "COSINE")
    assert dense.to_params()["index_type"] == "AUTOINDEX"
    assert validate_index_params(FLOAT, {}).kind == "HNSW"
    binary = validate_index_params(BINARY, {})
    assert (binary.kind, binary.metric_type) == ("BIN_FLAT", "HAMMING")
    sparse = validate_index_params(SPARSE, {"index_type": "AUTOINDEX"})
    assert (sparse.kind, sparse.metric_type) == ("SPARSE_INVERTED_INDEX", "IP")


def test_missing_metric_defaults_to_l2_for_explicit_float_index() -> None:
    assert validate_index_params(FLOAT, {"index_type": "FLAT"}).metric_type == "L2"
    assert validate_index_params(BINARY, {"index_type": "BIN_IVF_FLAT"}).metric_type == "HAMMING"


def test_gpu_index_without_gpu_says_what_was_built() -> None:
    cagra = validate_index_params(FLOAT, {"index_type": "GPU_CAGRA", "metric_type": "L2"})
    assert cagra.kind == "HNSW" and cagra.built_as == "HNSW (cpu fallback)"
    assert validate_index_params(FLOAT, {"index_type": "GPU_BRUTE_FORCE", "metric_type": "IP"}).kind == "FLAT"
    assert cagra.to_params()["index_type"] == "GPU_CAGRA"


def test_unknown_index_type() -> None:
    rejects(FLOAT, {"index_type": "IVF_FOO", "metric_type": "L2"}, "invalid index type", "IVF_FOO")


def test_metric_must_fit_the_vector_type() -> None:
    rejects(FLOAT, {"index_type": "HNSW", "metric_type": "HAMMING"}, "HAMMING", "L2")
    rejects(BINARY, {"index_type": "BIN_FLAT", "metric_type": "L2"}, "L2", "HAMMING")
    rejects(SPARSE, {"index_type": "SPARSE_WAND", "metric_type": "COSINE"}, "COSINE")
    rejects(FLOAT, {"index_type": "FLAT", "metric_type": "EUCLID"}, "EUCLID")


def test_index_type_must_fit_the_vector_type() -> None:
    rejects(BINARY, {"index_type": "HNSW", "metric_type": "HAMMING"}, "HNSW")
    rejects(FLOAT, {"index_type": "BIN_FLAT", "metric_type": "L2"}, "BIN_FLAT")
    rejects(SPARSE, {"index_type": "IVF_FLAT", "metric_type": "IP"}, "IVF_FLAT")
    rejects(INT8, {"index_type": "IVF_PQ", "metric_type": "L2"}, "IVF_PQ")
    assert validate_index_params(INT8, {"index_type": "HNSW", "metric_type": "COSINE"}).kind == "HNSW"
    # a new FLAT on INT8 is refused as Milvus refuses it; one already in the catalog still builds
    flat = {"index_type": "FLAT", "metric_type": "L2"}
    with pytest.raises(ShoalError, match="can't build with this index FLAT"):
        validate_index_params(INT8, flat, creating=True)
    assert validate_index_params(INT8, flat).kind == "FLAT"


def test_bm25_metric_and_its_params() -> None:
    spec = validate_index_params(
        SPARSE, {"index_type": "SPARSE_INVERTED_INDEX", "metric_type": "BM25", "bm25_k1": "1.5", "bm25_b": "0.5"}
    )
    assert spec.metric_type == "BM25" and spec.to_params()["bm25_k1"] == "1.5"
    for bad in ({"bm25_k1": "3"}, {"bm25_b": "1.5"}):
        rejects(SPARSE, {"index_type": "SPARSE_INVERTED_INDEX", "metric_type": "BM25", **bad}, next(iter(bad)))


@pytest.mark.parametrize("nlist", ["0", "65537", "-3", "abc", "1.5"])
def test_nlist_range(nlist: str) -> None:
    rejects(FLOAT, {"index_type": "IVF_FLAT", "metric_type": "L2", "nlist": nlist}, "nlist")


@pytest.mark.parametrize("m_links", ["1", "2049"])
def test_hnsw_m_range(m_links: str) -> None:
    rejects(FLOAT, {"index_type": "HNSW", "metric_type": "L2", "M": m_links}, "M", "[2, 2048]")


def test_hnsw_edges_bounds_accepted() -> None:
    for m_links in ("2", "2048"):
        assert validate_index_params(FLOAT, {"index_type": "HNSW", "M": m_links}).build["M"] == int(m_links)


def test_pq_m_must_divide_dim() -> None:
    rejects(FLOAT, {"index_type": "IVF_PQ", "metric_type": "L2", "m": "5"}, "multiple", "m=5")
    rejects(FLOAT, {"index_type": "HNSW_PQ", "metric_type": "L2", "m": "7"}, "multiple")
    assert validate_index_params(FLOAT, {"index_type": "IVF_PQ", "m": "8", "nbits": "4"}).build == {
        "nlist": 128,
        "m": 8,
        "nbits": 4,
    }


def test_pq_nbits_range() -> None:
    rejects(FLOAT, {"index_type": "IVF_PQ", "m": "8", "nbits": "0"}, "nbits")
    rejects(FLOAT, {"index_type": "IVF_PQ", "m": "8", "nbits": "17"}, "nbits")


def test_hnsw_sq_types() -> None:
    assert (
        validate_index_params(FLOAT, {"index_type": "HNSW_SQ", "sq_type": "fp16"}).build["sq_type"] == "FP16"
    )
    rejects(FLOAT, {"index_type": "HNSW_SQ", "sq_type": "SQ3"}, "sq_type")
    # refine_type without refine: accepted and unused, as Milvus does (VectorDBBench sends both)
    unrefined = validate_index_params(FLOAT, {"index_type": "HNSW_SQ", "refine": "false", "refine_type": "FP16"})
    assert unrefined.build["refine"] is False
    rejects(FLOAT, {"index_type": "HNSW_SQ", "refine_type": "INT8"}, "refine")


def test_sparse_drop_ratio_range() -> None:
    rejects(
        SPARSE,
        {"index_type": "SPARSE_INVERTED_INDEX", "metric_type": "IP", "drop_ratio_build": "1"},
        "drop_ratio_build",
    )
    ok = validate_index_params(SPARSE, {"index_type": "SPARSE_WAND", "drop_ratio_build": "0.2"})
    assert ok.build["drop_ratio_build"] == pytest.approx(0.2)


def test_cagra_graph_degree_not_above_intermediate() -> None:
    rejects(
        FLOAT,
        {"index_type": "GPU_CAGRA", "graph_degree": "128", "intermediate_graph_degree": "64"},
        "graph_degree",
    )


def test_field_without_dim_or_scalar_field() -> None:
    rejects(FieldSchema("v", DataType.FLOAT_VECTOR), {"index_type": "FLAT"}, "dim")
    rejects(FieldSchema("x", DataType.INT64), {"index_type": "FLAT"}, "not a vector field")
    rejects(FieldSchema("b", DataType.BINARY_VECTOR, dim=12), {"index_type": "BIN_FLAT"}, "multiple of 8")


def test_spec_round_trips_through_dict() -> None:
    spec = validate_index_params(HALF, {"index_type": "SCANN", "metric_type": "COSINE", "nlist": "64"})
    from shoal.index import IndexSpec

    assert IndexSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
