"""One record per vector index type: what it accepts, its defaults and ranges, who builds it.

A new index type is one `IndexType` record here (plus, for a dense type, its faiss maker
in `dense.MAKERS`) and its tests. `validate_index_params` turns the flat key/values of a
create_index call into an `IndexSpec` through the record of the asked type.

Neighbours: `params` (value parsers, IndexSpec); `factory` picks the family class named by
the record. Knows nothing about faiss.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shoal.errors import invalid, not_supported, unknown_index_type
from shoal.index.params import (
    AUTOINDEX_EF_CONSTRUCTION,
    AUTOINDEX_M,
    BINARY_METRICS,
    CAGRA_BUILD_ALGOS,
    DEFAULT_EF_CONSTRUCTION,
    DEFAULT_HNSW_M,
    DEFAULT_NLIST,
    INT32_MAX,
    REFINE_TYPES,
    SPARSE_ALGOS,
    SQ_TYPES,
    STRUCTURE_METRICS,
    IndexSpec,
    flatten_params,
    get_bool,
    get_choice,
    get_float,
    get_int,
    resolved_kind,
)
from shoal.schema import DataType, FieldSchema

Flat = Mapping[str, Any]
# (user params, dim, vector type, asked as AUTOINDEX) -> typed, defaulted build params
ParamsFn = Callable[[Flat, int, DataType, bool], dict[str, Any]]

FLOAT_TYPES = (DataType.FLOAT_VECTOR, DataType.FLOAT16_VECTOR, DataType.BFLOAT16_VECTOR)
FLOAT_AND_INT8 = (*FLOAT_TYPES, DataType.INT8_VECTOR)
DENSE_METRICS = ("L2", "IP", "COSINE")
MHJACCARD_INDEXES = ("BIN_FLAT", "MINHASH_LSH")
BIN_IVF_METRICS = ("HAMMING", "JACCARD")
SPARSE_METRICS = ("IP", "BM25")


@dataclass(frozen=True)
class IndexType:
    """One Milvus vector index type.

    `params` checks and defaults the build params; `family` names the VectorIndex class that
    builds it (`factory.FAMILIES`); `cpu_kind` is what a GPU type becomes on faiss-cpu;
    `search_params` the search-time keys it reads (DescribeIndex reports the type, the metric
    and the user's own build params).
    """

    name: str
    dtypes: tuple[DataType, ...]
    params: ParamsFn
    family: str = "dense"
    cpu_kind: str | None = None
    search_params: tuple[str, ...] = ()


# ---------------------------------------------------------------------------- param groups


def _none(flat: Flat, dim: int, dtype: DataType, auto: bool) -> dict[str, Any]:
    return {}


def _nlist(flat: Flat) -> dict[str, Any]:
    return {"nlist": get_int(flat, "nlist", DEFAULT_NLIST, 1, 65536)}


def default_pq_m(dim: int) -> int:
    """A PQ sub-quantizer count dividing `dim`: about one per 2 dimensions."""
    target = max(1, dim // 2)
    return max(m for m in range(1, target + 1) if dim % m == 0)


def _pq(flat: Flat, dim: int, nbits_hi: int = 16) -> dict[str, Any]:
    m = get_int(flat, "m", None, 1, 65536)
    if m is None:
        m = default_pq_m(dim)
    if dim % m:
        raise invalid(
            f"The dimension of the vector (dim={dim}) should be a multiple of the number of subquantizers (m={m})"
        )
    return {"m": m, "nbits": get_int(flat, "nbits", 8, 1, nbits_hi)}


def _hnsw(flat: Flat, auto: bool) -> dict[str, Any]:
    return {
        "M": get_int(flat, "M", AUTOINDEX_M if auto else DEFAULT_HNSW_M, 2, 2048),
        "efConstruction": get_int(
            flat, "efConstruction", AUTOINDEX_EF_CONSTRUCTION if auto else DEFAULT_EF_CONSTRUCTION, 1, INT32_MAX
        ),
    }


def _refine(flat: Flat) -> dict[str, Any]:
    # A refine_type without refine is checked, then unused: Milvus accepts it (its own index
    # tests, and VectorDBBench, which always sends one, against Milvus 2.6).
    return {"refine": get_bool(flat, "refine", False), "refine_type": get_choice(flat, "refine_type", "FP32", REFINE_TYPES)}


def _ivf(flat: Flat, dim: int, dtype: DataType, auto: bool) -> dict[str, Any]:
    return _nlist(flat)


def _ivf_pq(flat: Flat, dim: int, dtype: DataType, auto: bool) -> dict[str, Any]:
    return {**_nlist(flat), **_pq(flat, dim)}


def _hnsw_flat(flat: Flat, dim: int, dtype: DataType, auto: bool) -> dict[str, Any]:
    return _hnsw(flat, auto)


def _hnsw_sq(flat: Flat, dim: int, dtype: DataType, auto: bool) -> dict[str, Any]:
    b = {**_hnsw(flat, auto), "sq_type": get_choice(flat, "sq_type", "SQ8", SQ_TYPES), **_refine(flat)}
    if dtype is DataType.INT8_VECTOR and b["sq_type"] == "SQ4U":
        raise invalid("sq_type SQ4U is not supported for Int8Vector")
    return b


def _hnsw_pq(flat: Flat, dim: int, dtype: DataType, auto: bool) -> dict[str, Any]:
    return {**_pq(flat, dim), **_hnsw(flat, auto), **_refine(flat)}


def _hnsw_prq(flat: Flat, dim: int, dtype: DataType, auto: bool) -> dict[str, Any]:
    return {**_pq(flat, dim, nbits_hi=24), "nrq": get_int(flat, "nrq", 2, 1, 16), **_hnsw(flat, auto), **_refine(flat)}


def _ivf_rabitq(flat: Flat, dim: int, dtype: DataType, auto: bool) -> dict[str, Any]:
    return {**_nlist(flat), **_refine(flat)}


def _scann(flat: Flat, dim: int, dtype: DataType, auto: bool) -> dict[str, Any]:
    return {**_nlist(flat), "with_raw_data": get_bool(flat, "with_raw_data", True)}


def _diskann(flat: Flat, dim: int, dtype: DataType, auto: bool) -> dict[str, Any]:
    b = {
        "max_degree": get_int(flat, "max_degree", 56, 1, 512),
        "search_list_size": get_int(flat, "search_list_size", 100, 1, INT32_MAX),
    }
    get_float(flat, "pq_code_budget_gb_ratio", 0.125, 0.0, float("inf"))
    get_float(flat, "search_cache_budget_gb_ratio", 0.1, 0.0, float("inf"))
    b["pq_m"] = default_pq_m(dim)
    return b


def _gpu_ivf(flat: Flat, dim: int, dtype: DataType, auto: bool) -> dict[str, Any]:
    b = _nlist(flat)
    get_bool(flat, "cache_dataset_on_device", False)
    return b


def _gpu_ivf_pq(flat: Flat, dim: int, dtype: DataType, auto: bool) -> dict[str, Any]:
    b = {**_nlist(flat), **_pq(flat, dim)}
    get_bool(flat, "cache_dataset_on_device", False)
    return b


def _cagra(flat: Flat, dim: int, dtype: DataType, auto: bool) -> dict[str, Any]:
    inter = get_int(flat, "intermediate_graph_degree", 128, 1, 65536)
    graph = get_int(flat, "graph_degree", 64, 1, 65536)
    assert inter is not None and graph is not None
    if graph > inter:
        raise invalid(f"graph_degree ({graph}) should be less than or equal to intermediate_graph_degree ({inter})")
    get_choice(flat, "build_algo", "IVF_PQ", CAGRA_BUILD_ALGOS)
    get_bool(flat, "cache_dataset_on_device", False)
    get_bool(flat, "adapt_for_cpu", False)
    # CPU equivalent: an HNSW graph of comparable out-degree.
    return {"M": max(2, min(2048, graph // 2)), "efConstruction": max(inter, 2 * graph)}


def _sparse(flat: Flat, dim: int, dtype: DataType, auto: bool) -> dict[str, Any]:
    b = {"drop_ratio_build": get_float(flat, "drop_ratio_build", 0.0, 0.0, 1.0, hi_open=True)}
    get_choice(flat, "inverted_index_algo", "DAAT_MAXSCORE", SPARSE_ALGOS)
    # BM25 (metric BM25): read again at search time, where the collection's statistics are known
    get_float(flat, "bm25_k1", 1.2, 1.2, 2.0)
    get_float(flat, "bm25_b", 0.75, 0.0, 1.0)
    return b


def _minhash_lsh(flat: Flat, dim: int, dtype: DataType, auto: bool) -> dict[str, Any]:
    if dim % 32:
        raise invalid(f"MINHASH_LSH needs a MinHash signature field: dim {dim} should be a multiple of 32")
    b = {"mh_lsh_band": get_int(flat, "mh_lsh_band", max(1, dim // 64), 1, 1 << 16)}
    element = get_int(flat, "mh_element_bit_width", 32, 8, 64)
    if element not in (32, 64):
        raise invalid(f"mh_element_bit_width should be 32 or 64, got {element}")
    if str(flat.get("mh_lsh_code_in_mem", "1")).strip().lower() not in ("0", "1", "true", "false"):
        raise invalid(f"mh_lsh_code_in_mem should be 0 or 1, got {flat.get('mh_lsh_code_in_mem')}")
    get_bool(flat, "with_raw_data", True)
    get_float(flat, "mh_lsh_bloom_false_positive_prob", 0.01, 0.0, 1.0)
    return b


# ---------------------------------------------------------------------------- the registry

_IVF_SEARCH = ("nprobe",)
_HNSW_SEARCH = ("ef",)
_REFINE_SEARCH = ("ef", "refine_k")

# In Milvus's order: error messages list the supported types in this order.
INDEX_TYPES: tuple[IndexType, ...] = (
    IndexType("FLAT", FLOAT_AND_INT8, _none),
    IndexType("IVF_FLAT", FLOAT_TYPES, _ivf, search_params=_IVF_SEARCH),
    IndexType("IVF_SQ8", FLOAT_TYPES, _ivf, search_params=_IVF_SEARCH),
    IndexType("IVF_PQ", FLOAT_TYPES, _ivf_pq, search_params=_IVF_SEARCH),
    IndexType("HNSW", FLOAT_AND_INT8, _hnsw_flat, search_params=_HNSW_SEARCH),
    IndexType("HNSW_SQ", FLOAT_AND_INT8, _hnsw_sq, search_params=_REFINE_SEARCH),
    IndexType("HNSW_PQ", FLOAT_AND_INT8, _hnsw_pq, search_params=_REFINE_SEARCH),
    IndexType("HNSW_PRQ", FLOAT_AND_INT8, _hnsw_prq, search_params=_REFINE_SEARCH),
    IndexType("SCANN", FLOAT_TYPES, _scann, search_params=("nprobe", "reorder_k")),
    IndexType("IVF_RABITQ", FLOAT_TYPES, _ivf_rabitq, search_params=("nprobe", "rbq_query_bits", "refine_k")),
    IndexType("DISKANN", FLOAT_TYPES, _diskann, family="diskann", search_params=("search_list",)),
    IndexType("GPU_IVF_FLAT", FLOAT_TYPES, _gpu_ivf, cpu_kind="IVF_FLAT", search_params=_IVF_SEARCH),
    IndexType("GPU_IVF_PQ", FLOAT_TYPES, _gpu_ivf_pq, cpu_kind="IVF_PQ", search_params=_IVF_SEARCH),
    IndexType("GPU_CAGRA", FLOAT_TYPES, _cagra, cpu_kind="HNSW", search_params=("itopk_size",)),
    IndexType("GPU_BRUTE_FORCE", FLOAT_TYPES, _none, cpu_kind="FLAT"),
    IndexType("BIN_FLAT", (DataType.BINARY_VECTOR,), _none, family="binary"),
    IndexType("BIN_IVF_FLAT", (DataType.BINARY_VECTOR,), _ivf, family="binary", search_params=_IVF_SEARCH),
    IndexType(
        "MINHASH_LSH", (DataType.BINARY_VECTOR,), _minhash_lsh, family="minhash",
        search_params=("mh_search_with_jaccard", "refine_k"),
    ),
    IndexType(
        "SPARSE_INVERTED_INDEX", (DataType.SPARSE_FLOAT_VECTOR,), _sparse, family="sparse",
        search_params=("drop_ratio_search",),
    ),
    IndexType(
        "SPARSE_WAND", (DataType.SPARSE_FLOAT_VECTOR,), _sparse, family="sparse",
        search_params=("drop_ratio_search",),
    ),
)
REGISTRY: dict[str, IndexType] = {t.name: t for t in INDEX_TYPES}
# Milvus index types Shoal knows but does not build (answered with code 10, and why).
UNSUPPORTED_INDEXES: dict[str, str] = {}
ALL_INDEXES = (*REGISTRY, "AUTOINDEX")



def index_type(name: str) -> IndexType:
    """The record of a built kind (after AUTOINDEX / GPU resolution)."""
    return REGISTRY[name]


def allowed_indexes(dtype: DataType) -> tuple[str, ...]:
    return tuple(t.name for t in INDEX_TYPES if dtype in t.dtypes)


# ---------------------------------------------------------------------------- validation


def _dtype_label(dtype: DataType) -> str:
    return {
        DataType.FLOAT_VECTOR: "FloatVector",
        DataType.FLOAT16_VECTOR: "Float16Vector",
        DataType.BFLOAT16_VECTOR: "BFloat16Vector",
        DataType.INT8_VECTOR: "Int8Vector",
        DataType.BINARY_VECTOR: "BinaryVector",
        DataType.SPARSE_FLOAT_VECTOR: "SparseFloatVector",
    }.get(dtype, dtype.name)


def _allowed_metrics(dtype: DataType) -> tuple[str, ...]:
    if dtype is DataType.BINARY_VECTOR:
        return BINARY_METRICS
    if dtype is DataType.SPARSE_FLOAT_VECTOR:
        return SPARSE_METRICS
    return DENSE_METRICS


def default_metric(dtype: DataType, index_type: str) -> str:
    """Milvus's metric when create_index names none."""
    if dtype is DataType.BINARY_VECTOR:
        return "HAMMING"
    if dtype is DataType.SPARSE_FLOAT_VECTOR:
        return "IP"
    return "COSINE" if index_type == "AUTOINDEX" else "L2"


def check_metric(dtype: DataType, metric_type: str, index_type: str = "") -> str:
    """The upper-cased metric, or 1100 when it does not fit the vector type."""
    metric = metric_type.upper()
    allowed = _allowed_metrics(dtype)
    if metric not in allowed and index_type == "AUTOINDEX" and allowed is DENSE_METRICS:
        # Milvus's proxy words AUTOINDEX's check apart from the index types' own checkers
        raise invalid(
            f"float vector index does not support metric type: {metric_type}: "
            "invalid parameter[expected=valid index params][actual=invalid index params]"
        )
    if metric not in allowed:
        raise invalid(
            f"metric type {metric_type} not found or not supported, supported: [{' '.join(allowed)}]"
        )
    return metric


def _check_dim(fld: FieldSchema) -> int:
    if fld.dtype is DataType.SPARSE_FLOAT_VECTOR:
        return 0
    if fld.dim is None or fld.dim <= 0:
        raise invalid(f"vector field {fld.name} has no valid dim")
    if fld.dtype is DataType.BINARY_VECTOR and fld.dim % 8:
        raise invalid(f"binary vector dim ({fld.dim}) should be a multiple of 8")
    return int(fld.dim)


# Milvus builds INT8 vectors with HNSW only; Shoal's FLAT reads them too, so an index made
# before this rule still loads, but a new one is refused as Milvus refuses it.
NOT_CREATABLE = {DataType.INT8_VECTOR: ("FLAT",)}


def validate_index_params(fld: FieldSchema, params: Mapping[str, Any], *, creating: bool = False) -> IndexSpec:
    """Check Milvus create_index params for `fld` and resolve them into an `IndexSpec`
    (`creating`: a new index, not one already in the catalog)."""
    if not fld.dtype.is_vector:
        raise invalid(f"field {fld.name} is not a vector field: use a scalar index type")
    flat = flatten_params(params)
    given = {k: str(v) for k, v in flat.items() if k not in ("index_type", "metric_type")}
    asked = str(flat.get("index_type") or "AUTOINDEX").upper()
    if asked in UNSUPPORTED_INDEXES:
        raise not_supported(f"index type {asked} ({UNSUPPORTED_INDEXES[asked]})")
    if asked not in ALL_INDEXES:
        raise unknown_index_type(flat.get("index_type"))
    dtype = fld.dtype
    allowed = allowed_indexes(dtype)
    if creating:
        allowed = tuple(t for t in allowed if t not in NOT_CREATABLE.get(dtype, ()))
    if asked.startswith("GPU_") and asked not in allowed:
        # Milvus's CPU build (the one its suite targets) knows no GPU index type at all
        raise unknown_index_type(flat.get("index_type"))
    if asked != "AUTOINDEX" and asked not in allowed:
        raise invalid(
            f"data type {_dtype_label(dtype)} can't build with this index {asked}, "
            f"supported: {list(allowed) + ['AUTOINDEX']}"
        )
    dim = _check_dim(fld)
    metric = check_metric(dtype, str(flat.get("metric_type") or default_metric(dtype, asked)), asked)

    if asked == "BIN_IVF_FLAT" and metric not in BIN_IVF_METRICS:
        raise invalid(f"metric type {flat.get('metric_type')} not found or not supported, supported: [{' '.join(BIN_IVF_METRICS)}]")
    if metric in STRUCTURE_METRICS and asked != "BIN_FLAT":
        raise invalid(f"metric type {metric} is only supported by BIN_FLAT, not {asked}")
    if (metric == "MHJACCARD") != (asked == "MINHASH_LSH") and not (metric == "MHJACCARD" and asked in MHJACCARD_INDEXES):
        raise invalid(
            "index MINHASH_LSH only supports metric type MHJACCARD" if asked == "MINHASH_LSH"
            else f"metric type MHJACCARD is only supported by {' and '.join(MHJACCARD_INDEXES)}, not {asked}"
        )
    auto = asked == "AUTOINDEX"
    record = REGISTRY[resolved_kind(asked, dtype)]
    build = record.params(flat, dim, dtype, auto)
    kind = built_as = record.name
    if record.cpu_kind is not None:
        from shoal.index.gpu import gpu_available  # leaf helper, imported lazily to keep faiss out of here

        kind = record.cpu_kind
        built_as = f"{asked} (gpu)" if gpu_available() and asked != "GPU_CAGRA" else f"{kind} (cpu fallback)"
    elif auto:
        built_as = f"{kind} (autoindex)"
    return IndexSpec(asked, kind, built_as, metric, dtype, dim, build, given)
