"""Milvus index parameters: validation at create_index time and the resulting `IndexSpec`.

Turns the flat key/value strings pymilvus sends (`index_type`, `metric_type`, `nlist`, `M`,
...; sometimes a nested `params` JSON) into an `IndexSpec`, checking names and ranges the
way Milvus does and raising `shoal.errors.invalid` (code 1100) otherwise. Also holds the
small parsers the index families use for search-time parameters (`nprobe`, `ef`, ...).

Neighbours: `shoal.schema` (the field being indexed); `factory` builds from the spec.
Knows nothing about faiss.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shoal.errors import invalid, not_supported
from shoal.schema import DataType, FieldSchema

INT32_MAX = 2**31 - 1

FLOAT_TYPES = (DataType.FLOAT_VECTOR, DataType.FLOAT16_VECTOR, DataType.BFLOAT16_VECTOR)
DENSE_METRICS = ("L2", "IP", "COSINE")
BINARY_METRICS = ("HAMMING", "JACCARD")
SPARSE_METRICS = ("IP",)

# Index types per vector family, with the metrics each accepts.
DENSE_INDEXES = (
    "FLAT",
    "IVF_FLAT",
    "IVF_SQ8",
    "IVF_PQ",
    "HNSW",
    "HNSW_SQ",
    "HNSW_PQ",
    "SCANN",
    "DISKANN",
    "GPU_IVF_FLAT",
    "GPU_IVF_PQ",
    "GPU_CAGRA",
    "GPU_BRUTE_FORCE",
)
INT8_INDEXES = ("FLAT", "HNSW", "HNSW_SQ", "HNSW_PQ")
BINARY_INDEXES = ("BIN_FLAT", "BIN_IVF_FLAT")
SPARSE_INDEXES = ("SPARSE_INVERTED_INDEX", "SPARSE_WAND")
ALL_INDEXES = (*DENSE_INDEXES, *BINARY_INDEXES, *SPARSE_INDEXES, "AUTOINDEX")

# What a GPU index becomes on a machine without a GPU (faiss-cpu).
GPU_CPU_EQUIVALENT = {
    "GPU_IVF_FLAT": "IVF_FLAT",
    "GPU_IVF_PQ": "IVF_PQ",
    "GPU_CAGRA": "HNSW",
    "GPU_BRUTE_FORCE": "FLAT",
}

SQ_TYPES = ("SQ4U", "SQ6", "SQ8", "BF16", "FP16")
REFINE_TYPES = ("SQ6", "SQ8", "BF16", "FP16", "FP32")
SPARSE_ALGOS = ("TAAT_NAIVE", "DAAT_WAND", "DAAT_MAXSCORE")
CAGRA_BUILD_ALGOS = ("IVF_PQ", "NN_DESCENT")

# Build-parameter defaults (Milvus's documented ones where it has them).
DEFAULT_NLIST = 128
DEFAULT_HNSW_M = 30
DEFAULT_EF_CONSTRUCTION = 360
AUTOINDEX_M = 16
AUTOINDEX_EF_CONSTRUCTION = 200


@dataclass(frozen=True)
class IndexSpec:
    """A validated index definition.

    `index_type` is what the user asked for (e.g. AUTOINDEX, GPU_CAGRA), `kind` the index
    family actually built (e.g. HNSW) and `built_as` the human-readable label of the same
    (e.g. "HNSW (cpu fallback)"). `build` holds the effective typed build parameters,
    `given` the user's own parameters as strings (reported back by `to_params`).
    """

    index_type: str
    kind: str
    built_as: str
    metric_type: str
    dtype: DataType
    dim: int
    build: dict[str, Any] = field(default_factory=dict)
    given: dict[str, str] = field(default_factory=dict)

    def to_params(self) -> dict[str, str]:
        """The index params to report back (DescribeIndex): type, metric and the user's params."""
        out = {"index_type": self.index_type, "metric_type": self.metric_type}
        out.update(self.given)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "index_type": self.index_type,
            "kind": self.kind,
            "built_as": self.built_as,
            "metric_type": self.metric_type,
            "dtype": int(self.dtype),
            "dim": self.dim,
            "build": self.build,
            "given": self.given,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> IndexSpec:
        return cls(
            index_type=d["index_type"],
            kind=d["kind"],
            built_as=d["built_as"],
            metric_type=d["metric_type"],
            dtype=DataType(d["dtype"]),
            dim=int(d["dim"]),
            build=dict(d.get("build", {})),
            given=dict(d.get("given", {})),
        )


# ---------------------------------------------------------------------------- value parsers


def flatten_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Merge a nested `params` (JSON string or mapping) into the flat key/values."""
    out = {k: v for k, v in params.items() if k != "params"}
    nested = params.get("params")
    if isinstance(nested, str) and nested.strip():
        try:
            nested = json.loads(nested)
        except json.JSONDecodeError as e:
            raise invalid(f"params is not valid JSON: {nested!r}") from e
    if isinstance(nested, Mapping):
        for k, v in nested.items():
            out.setdefault(k, v)
    elif nested not in (None, ""):
        raise invalid(f"params must be a JSON object, got {nested!r}")
    return out


def get_int(params: Mapping[str, Any], key: str, default: int | None, lo: int, hi: int) -> int | None:
    """An integer parameter within [lo, hi]; `default` when absent."""
    raw = params.get(key)
    if raw is None or raw == "":
        return default
    try:
        if isinstance(raw, bool):
            raise ValueError
        value = int(raw) if not isinstance(raw, float) else _exact_int(raw)
    except (TypeError, ValueError):
        try:
            value = _exact_int(float(str(raw)))
        except (TypeError, ValueError):
            raise invalid(f"param '{key}' ({raw}) should be an integer") from None
    if not lo <= value <= hi:
        raise invalid(f"param '{key}' ({value}) should be in range [{lo}, {hi}]")
    return value


def resolved_kind(index_type: str, dtype: DataType) -> str:
    """The index family an asked-for type builds (AUTOINDEX picks one per vector type)."""
    if index_type != "AUTOINDEX":
        return index_type
    return {DataType.BINARY_VECTOR: "BIN_FLAT", DataType.SPARSE_FLOAT_VECTOR: "SPARSE_INVERTED_INDEX"}.get(dtype, "HNSW")


def check_search_params(index_type: str, dtype: DataType, params: Mapping[str, Any], k: int) -> None:
    """The search-time params an index type reads, checked (type and range) before any segment is
    searched, so the answer does not depend on whether the segments are indexed yet."""
    kind = resolved_kind(index_type.upper(), dtype)
    depth = "search_list" if kind == "DISKANN" else "ef" if "HNSW" in kind or kind == "GPU_CAGRA" else None
    if depth is not None and params.get(depth) not in (None, ""):
        value = get_int(params, depth, None, 1, INT32_MAX)
        if value is not None and value < k:
            raise invalid(f"{depth}({value}) should be larger than k({k})")
    if ("IVF" in kind or kind == "SCANN") and params.get("nprobe") not in (None, ""):
        get_int(params, "nprobe", None, 1, 65536)
    if kind.startswith("SPARSE"):
        get_float(params, "drop_ratio_search", 0.0, 0.0, 1.0, hi_open=True)


def _exact_int(x: float) -> int:
    if not float(x).is_integer():
        raise ValueError(x)
    return int(x)


def get_float(
    params: Mapping[str, Any], key: str, default: float | None, lo: float, hi: float, hi_open: bool = False
) -> float | None:
    """A float parameter within [lo, hi] (or [lo, hi) when `hi_open`)."""
    raw = params.get(key)
    if raw is None or raw == "":
        return default
    try:
        if isinstance(raw, bool):
            raise ValueError
        value = float(raw)
    except (TypeError, ValueError):
        raise invalid(f"param '{key}' ({raw}) should be a number") from None
    if value != value or value < lo or value > hi or (hi_open and value >= hi):
        bracket = ")" if hi_open else "]"
        raise invalid(f"param '{key}' ({value}) should be in range [{lo}, {hi}{bracket}")
    return value


def get_bool(params: Mapping[str, Any], key: str, default: bool) -> bool:
    raw = params.get(key)
    if raw is None or raw == "":
        return default
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise invalid(f"param '{key}' ({raw}) should be a boolean")


def get_choice(params: Mapping[str, Any], key: str, default: str, choices: tuple[str, ...]) -> str:
    raw = params.get(key)
    if raw is None or raw == "":
        return default
    value = str(raw).upper()
    if value not in choices:
        raise invalid(f"param '{key}' ({raw}) should be one of {list(choices)}")
    return value


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


def _allowed_indexes(dtype: DataType) -> tuple[str, ...]:
    if dtype in FLOAT_TYPES:
        return DENSE_INDEXES
    if dtype is DataType.INT8_VECTOR:
        return INT8_INDEXES
    if dtype is DataType.BINARY_VECTOR:
        return BINARY_INDEXES
    if dtype is DataType.SPARSE_FLOAT_VECTOR:
        return SPARSE_INDEXES
    return ()


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


def check_metric(dtype: DataType, metric_type: str) -> str:
    """The upper-cased metric, or 1100 when it does not fit the vector type."""
    metric = metric_type.upper()
    if dtype is DataType.SPARSE_FLOAT_VECTOR and metric == "BM25":
        raise not_supported("metric type BM25 (full-text search functions)")
    allowed = _allowed_metrics(dtype)
    if metric not in allowed:
        raise invalid(
            f"metric type {metric_type} not found or not supported for {_dtype_label(dtype)}, "
            f"supported: {list(allowed)}"
        )
    return metric


def validate_index_params(fld: FieldSchema, params: Mapping[str, Any]) -> IndexSpec:
    """Check Milvus create_index params for `fld` and resolve them into an `IndexSpec`."""
    if not fld.dtype.is_vector:
        raise invalid(f"field {fld.name} is not a vector field: use a scalar index type")
    flat = flatten_params(params)
    given = {k: str(v) for k, v in flat.items() if k not in ("index_type", "metric_type")}
    asked = str(flat.get("index_type") or "AUTOINDEX").upper()
    if asked not in ALL_INDEXES:
        raise invalid(f"invalid index type: {flat.get('index_type')}")
    dtype = fld.dtype
    if asked != "AUTOINDEX" and asked not in _allowed_indexes(dtype):
        raise invalid(
            f"data type {_dtype_label(dtype)} can't build with this index {asked}, "
            f"supported: {list(_allowed_indexes(dtype)) + ['AUTOINDEX']}"
        )
    dim = _check_dim(fld)
    metric = check_metric(dtype, str(flat.get("metric_type") or default_metric(dtype, asked)))

    kind = resolved_kind(asked, dtype)
    build = _build_params(kind, asked, dtype, dim, flat)
    built_as = kind
    if asked in GPU_CPU_EQUIVALENT:
        from shoal.index.gpu import gpu_available  # leaf helper, imported lazily to keep faiss out of here

        kind = GPU_CPU_EQUIVALENT[asked]
        built_as = f"{asked} (gpu)" if gpu_available() and asked != "GPU_CAGRA" else f"{kind} (cpu fallback)"
    elif asked == "AUTOINDEX":
        built_as = f"{kind} (autoindex)"
    return IndexSpec(asked, kind, built_as, metric, dtype, dim, build, given)


def _check_dim(fld: FieldSchema) -> int:
    if fld.dtype is DataType.SPARSE_FLOAT_VECTOR:
        return 0
    if fld.dim is None or fld.dim <= 0:
        raise invalid(f"vector field {fld.name} has no valid dim")
    if fld.dtype is DataType.BINARY_VECTOR and fld.dim % 8:
        raise invalid(f"binary vector dim ({fld.dim}) should be a multiple of 8")
    return int(fld.dim)


def default_pq_m(dim: int) -> int:
    """A PQ sub-quantizer count dividing `dim`: about one per 2 dimensions."""
    target = max(1, dim // 2)
    return max(m for m in range(1, target + 1) if dim % m == 0)


def _pq_params(flat: Mapping[str, Any], dim: int, nbits_hi: int = 16) -> dict[str, Any]:
    m = get_int(flat, "m", None, 1, 65536)
    if m is None:
        m = default_pq_m(dim)
    if dim % m:
        raise invalid(
            f"The dimension of the vector (dim={dim}) should be a multiple of the number of subquantizers (m={m})"
        )
    nbits = get_int(flat, "nbits", 8, 1, nbits_hi)
    return {"m": m, "nbits": nbits}


def _build_params(
    kind: str, asked: str, dtype: DataType, dim: int, flat: Mapping[str, Any]
) -> dict[str, Any]:
    """Typed, defaulted build params of one index kind (before GPU fallback mapping)."""
    b: dict[str, Any] = {}
    if kind in ("IVF_FLAT", "IVF_SQ8", "IVF_PQ", "SCANN", "BIN_IVF_FLAT", "GPU_IVF_FLAT", "GPU_IVF_PQ"):
        b["nlist"] = get_int(flat, "nlist", DEFAULT_NLIST, 1, 65536)
    if kind in ("IVF_PQ", "GPU_IVF_PQ", "HNSW_PQ"):
        b.update(_pq_params(flat, dim))
    if kind in ("HNSW", "HNSW_SQ", "HNSW_PQ"):
        auto = asked == "AUTOINDEX"
        b["M"] = get_int(flat, "M", AUTOINDEX_M if auto else DEFAULT_HNSW_M, 2, 2048)
        b["efConstruction"] = get_int(
            flat,
            "efConstruction",
            AUTOINDEX_EF_CONSTRUCTION if auto else DEFAULT_EF_CONSTRUCTION,
            1,
            INT32_MAX,
        )
    if kind == "HNSW_SQ":
        b["sq_type"] = get_choice(flat, "sq_type", "SQ8", SQ_TYPES)
    if kind in ("HNSW_SQ", "HNSW_PQ"):
        b["refine"] = get_bool(flat, "refine", False)
        b["refine_type"] = get_choice(flat, "refine_type", "FP32", REFINE_TYPES)
        if "refine_type" in flat and not b["refine"]:
            raise invalid("param 'refine_type' requires 'refine' to be true")
    if kind == "SCANN":
        b["with_raw_data"] = get_bool(flat, "with_raw_data", True)
    if kind == "DISKANN":
        b["max_degree"] = get_int(flat, "max_degree", 56, 1, 512)
        b["search_list_size"] = get_int(flat, "search_list_size", 100, 1, INT32_MAX)
        get_float(flat, "pq_code_budget_gb_ratio", 0.125, 0.0, float("inf"))
        get_float(flat, "search_cache_budget_gb_ratio", 0.1, 0.0, float("inf"))
        b["pq_m"] = default_pq_m(dim)
    if kind == "GPU_CAGRA":
        inter = get_int(flat, "intermediate_graph_degree", 128, 1, 65536)
        graph = get_int(flat, "graph_degree", 64, 1, 65536)
        assert inter is not None and graph is not None
        if graph > inter:
            raise invalid(
                f"graph_degree ({graph}) should be less than or equal to intermediate_graph_degree ({inter})"
            )
        get_choice(flat, "build_algo", "IVF_PQ", CAGRA_BUILD_ALGOS)
        get_bool(flat, "cache_dataset_on_device", False)
        get_bool(flat, "adapt_for_cpu", False)
        # CPU equivalent: an HNSW graph of comparable out-degree.
        b["M"] = max(2, min(2048, graph // 2))
        b["efConstruction"] = max(inter, 2 * graph)
    if kind in ("GPU_IVF_FLAT", "GPU_IVF_PQ"):
        get_bool(flat, "cache_dataset_on_device", False)
    if kind in SPARSE_INDEXES:
        b["drop_ratio_build"] = get_float(flat, "drop_ratio_build", 0.0, 0.0, 1.0, hi_open=True)
        get_choice(flat, "inverted_index_algo", "DAAT_MAXSCORE", SPARSE_ALGOS)
    if dtype is DataType.INT8_VECTOR and kind == "HNSW_SQ" and b.get("sq_type") == "SQ4U":
        raise invalid("sq_type SQ4U is not supported for Int8Vector")
    return b


def check_topk(k: int) -> int:
    """`k` as an int in Milvus's topk range, else 1100."""
    if isinstance(k, bool) or int(k) != k or not 1 <= int(k) <= 16384:
        raise invalid(f"topk ({k}) should be in range [1, 16384]")
    return int(k)
