"""Benchmark configuration: what to run and the index parameters per size.

Pure data and small pure functions; :mod:`bench.cli` builds a :class:`BenchConfig`
from the command line and every other module only reads it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

INDEX_TYPES = ("FLAT", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "HNSW")
SYSTEMS = ("shoal", "milvus-lite", "faiss")
WORKLOADS = ("synthetic", "text", "streaming")
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 200
HNSW_EF = 64
TOP_K = 10
CONCURRENCY = (1, 4, 16)


@dataclass(frozen=True)
class IndexSpec:
    """One vector index as a Milvus user declares it, plus its search parameters."""

    index_type: str
    build_params: dict[str, int]
    search_params: dict[str, int]


@dataclass
class BenchConfig:
    """Everything one run needs; recorded verbatim in results.json."""

    sizes: list[int]
    dims: list[int]
    indexes: list[str]
    systems: list[str]
    workloads: list[str]
    out: str
    quick: bool = False
    seed: int = 42
    n_queries: int = 1000
    batch_nq: int = 100
    batch_rounds: int = 10
    concurrent_queries: int = 400
    filtered_queries: int = 200
    filter_only_queries: int = 50
    sweep_queries: int = 200
    text_docs: int = 0  # 0 = the whole corpus
    stream_batches: int = 20
    stream_batch_rows: int = 1000
    stream_index: str = "IVF_FLAT"
    insert_batch: int = 5000
    phase_budget_s: float = 60.0  # per timing loop; a slow system answers fewer queries
    command: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def ivf_nlist(n_rows: int) -> int:
    """nlist = 1024, lowered for small collections so every list gets ~39+ training points."""
    cap = max(4, n_rows // 39)
    return min(1024, 2 ** int(math.log2(cap)))


def index_spec(index_type: str, n_rows: int, dim: int, quick: bool = False) -> IndexSpec:
    """Milvus build/search parameters for ``index_type`` at this collection size.

    ``quick`` shrinks IVF_PQ (m = dim/32, 4 bits) because PQ training dominates a smoke run.
    """
    nlist = ivf_nlist(n_rows)
    nprobe = min(16, nlist)
    if index_type == "FLAT":
        return IndexSpec("FLAT", {}, {})
    if index_type in ("IVF_FLAT", "IVF_SQ8"):
        return IndexSpec(index_type, {"nlist": nlist}, {"nprobe": nprobe})
    if index_type == "IVF_PQ":
        m = max(1, dim // (32 if quick else 8))
        while dim % m:
            m -= 1
        return IndexSpec("IVF_PQ", {"nlist": nlist, "m": m, "nbits": 4 if quick else 8}, {"nprobe": nprobe})
    if index_type == "HNSW":
        return IndexSpec("HNSW", {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION}, {"ef": HNSW_EF})
    raise ValueError(f"unknown index type {index_type!r}; choose from {', '.join(INDEX_TYPES)}")


def sweep_values(index: IndexSpec) -> list[dict[str, int]]:
    """Search parameters for the recall-vs-QPS curve of an index (empty for FLAT)."""
    if "nprobe" in index.search_params:
        nlist = index.build_params["nlist"]
        return [{"nprobe": v} for v in sorted({min(v, nlist) for v in (1, 4, 16, 64, 256)})]
    if "ef" in index.search_params:
        return [{"ef": v} for v in (16, 32, 64, 128, 256)]
    return []


def parse_size(text: str) -> int:
    """'100k' -> 100000, '1m' -> 1000000, '2000' -> 2000."""
    text = text.strip().lower()
    mult = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    digits = text[:-1] if mult != 1 else text
    return int(float(digits) * mult)
