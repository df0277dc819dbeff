"""What Milvus's segment-information RPCs report, read from a collection's live segments.

`GetPersistentSegmentInfo` lists the segments on disk (Milvus's data coordinator view:
Flushed, plus Sealed ones not yet written), `GetQuerySegmentInfo` the sealed segments a
loaded collection serves, with the vector index each one carries. Benchmarks such as
VectorDBBench poll both while they wait for compaction and indexing, so every figure here
is read from the segments themselves.

Neighbours: `segments` (the Segment), `catalog` (index definitions); `engine` calls it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shoal.engine.catalog import CollectionMeta
from shoal.engine.collection_data import CollectionData
from shoal.engine.requests import SegmentInfo
from shoal.engine.segments import Segment

# Milvus's default filter for GetPersistentSegmentInfo (a request naming no states).
PERSISTENT_STATES = ("Sealed", "Flushing", "Flushed")


def segment_state(seg: Segment) -> str:
    if not seg.sealed:
        return "Growing"
    return "Flushed" if seg.path else "Sealed"


def _mem_size(seg: Segment) -> int:
    total = 0
    for col in seg.columns.values():
        values: Any = col.values
        if isinstance(values, np.ndarray):
            total += int(values.nbytes)
    return total


def _info(meta: CollectionMeta, seg: Segment) -> SegmentInfo:
    info = SegmentInfo(
        segment_id=seg.segment_id,
        collection_id=meta.collection_id,
        partition_id=seg.partition_id,
        num_rows=seg.num_rows,
        state=segment_state(seg),
        is_sorted=seg.rows_in_key_order(),
        compaction_from=list(seg.compacted_from),
        mem_size=_mem_size(seg),
    )
    for index in meta.indexes:
        if index.field_name in seg.indexes:
            info.index_name, info.index_id = index.index_name, index.index_id
            break
    return info


def persistent_segments(meta: CollectionMeta, data: CollectionData, states: list[str]) -> list[SegmentInfo]:
    """The collection's segments in `states` (none named: Milvus's persistent ones)."""
    wanted = set(states or PERSISTENT_STATES)
    return [_info(meta, seg) for seg in data.snapshot() if segment_state(seg) in wanted and seg.num_rows]


def query_segments(meta: CollectionMeta, data: CollectionData) -> list[SegmentInfo]:
    """The sealed segments a loaded collection serves (Milvus lists growing data apart)."""
    loaded = None if meta.loaded else set(meta.loaded_partitions)
    return [
        _info(meta, seg)
        for seg in data.snapshot()
        if seg.sealed and seg.num_rows and (loaded is None or seg.partition_id in loaded)
    ]
