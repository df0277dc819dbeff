"""Milvus index parameters: validation at create_index time and the resulting `IndexSpec`.

Turns the flat key/value strings pymilvus sends (`index_type`, `metric_type`, `nlist`, `M`,
...; sometimes a nested `params` JSON) into an `IndexSpec`, checking names and ranges the
way Milvus does and raising `shoal.errors.invalid` (code 1100) otherwise. Also holds the
small parsers the index families use for search-time parameters (`nprobe`, `ef`, ...).

Neighbours: `registry` (one record per index type) validates with these parsers;
`factory` builds from the spec. Knows nothing about faiss.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shoal.errors import invalid
from shoal.schema import DataType

INT32_MAX = 2**31 - 1

SQ_TYPES = ("SQ4U", "SQ6", "SQ8", "BF16", "FP16")
REFINE_TYPES = ("SQ6", "SQ8", "BF16", "FP16", "FP32")
SPARSE_ALGOS = ("TAAT_NAIVE", "DAAT_WAND", "DAAT_MAXSCORE")
CAGRA_BUILD_ALGOS = ("IVF_PQ", "NN_DESCENT")
BINARY_METRICS = ("HAMMING", "JACCARD", "MHJACCARD", "SUBSTRUCTURE", "SUPERSTRUCTURE")
STRUCTURE_METRICS = ("SUBSTRUCTURE", "SUPERSTRUCTURE")  # a match or not: brute force only (BIN_FLAT)

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


def check_topk(k: int) -> int:
    """`k` as an int in Milvus's topk range, else 1100."""
    if isinstance(k, bool) or int(k) != k or not 1 <= int(k) <= 16384:
        raise invalid(f"topk ({k}) should be in range [1, 16384]")
    return int(k)


# Properties `alter_index_properties` may change (Milvus's `common.MmapEnabledKey`,
# `common.IndexOffsetCacheEnabledKey`); the offset cache exists only for BITMAP indexes.
ALTERABLE_INDEX_PROPERTIES = ("mmap.enabled", "indexoffsetcache.enabled")


def check_index_properties(index_type: str, properties: Mapping[str, Any], delete_keys: list[str]) -> None:
    """Milvus's checks of an index property change: the key is alterable, the offset cache's
    value is a boolean and is switched on only on a BITMAP index."""
    for key in [*properties, *delete_keys]:
        if key not in ALTERABLE_INDEX_PROPERTIES:
            raise invalid(f"{key} is not a configable index proptery")
    if "indexoffsetcache.enabled" in properties:
        value = str(properties["indexoffsetcache.enabled"])
        if value.lower() not in ("true", "false", "1", "0", "t", "f"):
            raise invalid(f"invalid offset cache index params: invalid indexoffsetcache.enabled value: {value}, "
                          f"expected: true, false")
        if value.lower() in ("true", "1", "t") and index_type.upper() != "BITMAP":
            raise invalid("invalid offset cache index params: only bitmap index support indexoffsetcache.enabled now")
