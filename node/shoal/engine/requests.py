"""Requests and results that cross the api ↔ engine boundary.

Plain dataclasses: the api layer builds them from proto messages and turns the results
back into protos; the engine never sees a proto. Vectors arrive already decoded into the
layouts of `shoal.schema` (float32/float16/uint16-bf16/int8/uint8-binary arrays, or a
list of sparse dicts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np

from shoal.schema import Batch, CollectionSchema, FieldSchema


class ConsistencyLevel(IntEnum):
    STRONG = 0
    SESSION = 1
    BOUNDED = 2
    EVENTUALLY = 3
    CUSTOMIZED = 4


class LoadState(IntEnum):
    """Milvus `common.LoadState`."""

    NOT_EXIST = 0
    NOT_LOAD = 1
    LOADING = 2
    LOADED = 3


@dataclass
class ReadConsistency:
    """How fresh a read must be: the client's guarantee ts and level (0 = not given)."""

    guarantee_ts: int = 0
    level: ConsistencyLevel | None = None
    use_default: bool = True
    travel_ts: int = 0  # read as of this hybrid timestamp (time travel); 0 = now


@dataclass
class PartitionInfo:
    name: str
    partition_id: int
    created_ts: int
    row_count: int = 0


@dataclass
class CollectionInfo:
    database: str
    name: str
    collection_id: int
    schema: CollectionSchema
    created_ts: int
    num_shards: int
    num_partitions: int
    consistency_level: ConsistencyLevel
    properties: dict[str, str]
    aliases: list[str]
    partitions: list[PartitionInfo]
    updated_ts: int = 0


@dataclass
class DatabaseInfo:
    name: str
    database_id: int
    created_ts: int
    properties: dict[str, str]


@dataclass
class MutationResult:
    ids: np.ndarray  # int64 or object (str) primary keys, in request order
    timestamp: int
    insert_count: int = 0
    delete_count: int = 0
    upsert_count: int = 0


@dataclass
class QueryRequest:
    expr: str = ""
    expr_params: dict[str, Any] = field(default_factory=dict)
    output_fields: list[str] = field(default_factory=list)
    partition_names: list[str] = field(default_factory=list)
    limit: int | None = None
    offset: int = 0
    consistency: ReadConsistency = field(default_factory=ReadConsistency)
    ignore_growing: bool = False
    order_by: list[tuple[str, bool]] = field(default_factory=list)  # ORDER BY (field, descending)
    timezone: str = ""  # TIMESTAMPTZ output zone (else the collection's)


@dataclass
class QueryResult:
    fields: Batch  # one Column per output field (dynamic keys live inside `$meta`)
    output_fields: list[str]
    field_schemas: list[FieldSchema]  # schema of each Column in `fields`, same order
    session_ts: int
    count: int | None = None  # set for `count(*)`


@dataclass
class SearchRequest:
    anns_field: str
    # (nq, width) array, or sparse dicts; for a struct's vector member, (m, dim) arrays (EmbeddingLists)
    # or one (nq, dim) array (plain vectors: element-level search)
    queries: np.ndarray | list[dict[int, float]] | list[np.ndarray]
    topk: int
    metric_type: str | None = None  # None: the index's (or the field's default) metric
    params: dict[str, Any] = field(default_factory=dict)  # nprobe, ef, radius, range_filter, ...
    offset: int = 0
    expr: str = ""
    expr_params: dict[str, Any] = field(default_factory=dict)
    output_fields: list[str] = field(default_factory=list)
    partition_names: list[str] = field(default_factory=list)
    round_decimal: int = -1
    group_by_field: str | None = None
    group_by_json_path: str | None = None  # pymilvus json_path=: the path inside a JSON group field
    group_by_json_type: str | None = None  # pymilvus json_type=: Int8..Int64, Bool, VarChar
    group_size: int = 1
    strict_group_size: bool = False
    boosts: list[dict[str, str]] = field(default_factory=list)  # boost rankers: filter, weight
    boost_params: dict[str, str] = field(default_factory=dict)  # boost_mode, function_mode
    timezone: str = ""  # TIMESTAMPTZ output zone (else the collection's)
    ignore_growing: bool = False
    consistency: ReadConsistency = field(default_factory=ReadConsistency)
    # search iterator V2
    iterator: bool = False
    iterator_v2: bool = False
    iterator_batch_size: int = 0
    iterator_token: str = ""
    iterator_last_bound: float | None = None
    rerank: Any = None  # a function reranker (engine.rerank.DecayRerank) over the limit + offset hits
    bm25_stats: Any = None  # share mode: the collection's BM25 statistics (engine.fulltext.Bm25Stats), gathered


@dataclass
class RerankSpec:
    strategy: str  # "rrf" | "weighted" | "decay" (a function reranker: `function`)
    params: dict[str, Any] = field(default_factory=dict)
    function: Any = None  # engine.rerank.DecayRerank


@dataclass
class HybridSearchRequest:
    requests: list[SearchRequest]
    rerank: RerankSpec
    limit: int
    offset: int = 0
    output_fields: list[str] = field(default_factory=list)
    partition_names: list[str] = field(default_factory=list)
    round_decimal: int = -1
    group_by_field: str | None = None
    group_by_json_path: str | None = None
    group_by_json_type: str | None = None
    group_size: int = 1
    strict_group_size: bool = False
    group_scorer: str = "max"  # how a group's rows' fused scores rank the group: max | sum | avg
    consistency: ReadConsistency = field(default_factory=ReadConsistency)


@dataclass
class SearchResult:
    num_queries: int
    top_k: int
    topks: list[int]  # hits per query
    ids: np.ndarray  # flattened over queries: int64 or object (str)
    scores: np.ndarray  # float32, Milvus conventions (L2 ascending distance, IP/COSINE descending)
    fields: Batch  # output columns aligned with the flattened hits
    field_schemas: list[FieldSchema]
    output_fields: list[str]
    primary_field_name: str
    session_ts: int
    group_by_field: str | None = None
    group_by_values: Any = None  # Column of the group field aligned with hits
    group_by_schema: Any = None  # FieldSchema the group values are reported as (a JSON path: its cast type)
    iterator_token: str = ""
    iterator_last_bound: float = 0.0
    all_search_count: int = 0
    element_indices: Any = None  # element-level search: each hit's offset in its struct array (int64)


@dataclass
class IndexInfo:
    index_name: str
    field_name: str
    index_id: int
    params: dict[str, str]  # index_type, metric_type and build params, as given
    state: str  # "Finished" | "InProgress" | "Failed" | "Unissued"
    indexed_rows: int
    total_rows: int
    pending_index_rows: int
    fail_reason: str = ""


@dataclass
class CompactionPlan:
    """One merge of a compaction: `sources` rewritten into `target` (0: no row was left to
    write; the target is the source itself when it was already whole and nothing was rewritten)."""

    sources: list[int]
    target: int
    partition_id: int
    state: str = "Executing"  # "Executing" | "Completed" | "Failed"


@dataclass
class CompactionState:
    compaction_id: int
    state: str  # "Executing" | "Completed"
    executing_plans: int = 0
    completed_plans: int = 0
    timeout_plans: int = 0
    collection_id: int = 0
    plans: list[CompactionPlan] = field(default_factory=list)


@dataclass
class SegmentInfo:
    """One segment as Milvus's segment-information RPCs describe it."""

    segment_id: int
    collection_id: int
    partition_id: int
    num_rows: int
    state: str  # "Growing" | "Sealed" (sealed, not yet on disk) | "Flushed" (persisted)
    is_sorted: bool  # rows in primary-key order
    compaction_from: list[int] = field(default_factory=list)
    index_name: str = ""  # the vector index built on it ("" if none yet)
    index_id: int = 0
    mem_size: int = 0
