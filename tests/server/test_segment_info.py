"""Milvus's segment-information and compaction-plan RPCs, answered from the engine's segments.

VectorDBBench's Milvus client (2.0.0) drives these while it optimizes a collection before
searching: it lists persistent segments until every one is sorted, waits for the index,
compacts, then force-merges (a compaction with a target size) and checks that the plans'
sources cover every flushed segment. The first test replays that sequence.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from pymilvus import DataType, MilvusClient, MilvusException

DIM = 8
# VectorDBBench's force-merge target: the largest size Milvus accepts, in MB
FORCE_MERGE_TARGET_MB = ((1 << 63) - 1) // (1024**2)


def new_collection(client: MilvusClient, name: str) -> None:
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    client.create_collection(name, schema=schema, consistency_level="Strong")
    index = client.prepare_index_params()
    index.add_index("v", index_name="vidx", index_type="HNSW", metric_type="L2", params={"M": 8})
    client.create_index(name, index)


def insert_flushed(client: MilvusClient, name: str, keys: list[int]) -> None:
    rng = np.random.default_rng(len(keys) + keys[0])
    vectors = rng.normal(size=(len(keys), DIM)).astype(np.float32)
    client.insert(name, [{"id": k, "v": v} for k, v in zip(keys, vectors, strict=True)])
    client.flush(name)


def wait_until(check, what: str, timeout: float = 120.0):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def compact_and_wait(client: MilvusClient, name: str, **kwargs: int) -> int:
    job = client.compact(name, **kwargs)
    assert job > 0
    wait_until(lambda: client.get_compaction_state(job) == "Completed", "compaction")
    return job


def test_vectordbbench_optimize_sequence(client: MilvusClient, name: str) -> None:
    new_collection(client, name)
    for part in range(3):  # three flushed segments (automatic compaction wants four)
        insert_flushed(client, name, list(range(part * 400, (part + 1) * 400)))

    segments = client.list_persistent_segments(name)
    assert sorted(s.num_rows for s in segments) == [400, 400, 400]
    assert {(s.state_name, s.level_name, s.is_sorted) for s in segments} == {("Flushed", "L1", True)}
    collection_id = client.describe_collection(name)["collection_id"]
    assert {s.collection_id for s in segments} == {collection_id}
    flushed = {s.segment_id for s in segments}

    with pytest.raises(MilvusException) as not_loaded:
        client.list_loaded_segments(name)
    assert not_loaded.value.code == 101
    client.load_collection(name)
    wait_until(lambda: client.describe_index(name, "vidx")["pending_index_rows"] == 0, "the index")
    loaded = client.list_loaded_segments(name)
    assert {s.segment_id for s in loaded} == flushed
    # below 1,024 rows a segment is searched exactly: it carries no index
    assert {(s.index_name, s.state_name, s.is_sorted) for s in loaded} == {("", "Sealed", True)}
    assert all(s.mem_size >= s.num_rows * DIM * 4 for s in loaded)

    compact_and_wait(client, name)  # three small segments: merged into one, indexed
    merged = client.list_persistent_segments(name)
    assert len(merged) == 1 and merged[0].num_rows == 1200
    assert set(merged[0].compaction_from) == flushed
    wait_until(lambda: client.describe_index(name, "vidx")["pending_index_rows"] == 0, "the index")
    loaded = client.list_loaded_segments(name)
    assert [(s.segment_id, s.index_name, s.num_rows) for s in loaded] == [(merged[0].segment_id, "vidx", 1200)]

    # the force merge: every flushed segment must be a source of some plan
    job = compact_and_wait(client, name, target_size=FORCE_MERGE_TARGET_MB)
    plans = client.get_compaction_plans(job)
    assert plans.state.name == "Completed"
    assert [(p.sources, p.target) for p in plans.plans] == [([merged[0].segment_id], merged[0].segment_id)]
    assert plans.plans[0].state.name == "Completed" and plans.plans[0].collection_id == collection_id
    assert client.query(name, filter="id >= 0", output_fields=["count(*)"])[0]["count(*)"] == 1200


def test_compaction_plans_name_sources_and_target(client: MilvusClient, name: str) -> None:
    new_collection(client, name)
    for part in range(2):
        insert_flushed(client, name, list(range(part * 100, (part + 1) * 100)))
    before = {s.segment_id for s in client.list_persistent_segments(name)}
    job = compact_and_wait(client, name, target_size=FORCE_MERGE_TARGET_MB)
    plans = client.get_compaction_plans(job).plans
    after = client.list_persistent_segments(name)
    assert len(plans) == 1 and set(plans[0].sources) == before
    assert [s.segment_id for s in after] == [plans[0].target] and plans[0].target not in before


def test_flushed_segments_are_kept_in_key_order(client: MilvusClient, name: str) -> None:
    """Rows written out of key order (two clients' batches interleave) are flushed in key
    order, as Milvus sorts every flushed segment: each row keeps its own fields, searches and
    deletes still find it."""
    new_collection(client, name)
    rng = np.random.default_rng(7)
    keys = rng.permutation(3000)
    vectors = {int(k): rng.normal(size=DIM).astype(np.float32) for k in keys}
    for part in np.array_split(keys, 3):
        client.insert(name, [{"id": int(k), "v": vectors[int(k)]} for k in part])
    client.delete(name, ids=[int(keys[0]), int(keys[1])])  # deletes before the flush move with their rows
    client.flush(name)
    segments = client.list_persistent_segments(name)
    assert sum(s.num_rows for s in segments) == 3000
    assert all(s.is_sorted for s in segments)

    client.delete(name, ids=[int(keys[2])])  # and after it
    client.load_collection(name)
    wait_until(lambda: client.describe_index(name, "vidx")["pending_index_rows"] == 0, "the index")
    assert client.query(name, "", output_fields=["count(*)"])[0]["count(*)"] == 2997
    sample = [int(k) for k in keys[3:40]]
    got = client.query(name, f"id in {sample}", output_fields=["v"])
    assert sorted(r["id"] for r in got) == sorted(sample)
    for row in got:
        assert np.allclose(row["v"], vectors[row["id"]])
    for k in sample[:5]:
        hit = client.search(name, [vectors[k].tolist()], limit=1, anns_field="v")[0][0]
        assert hit["id"] == k and hit["distance"] == pytest.approx(0.0, abs=1e-5)
    assert client.query(name, f"id in {[int(k) for k in keys[:3]]}") == []


def test_compaction_output_is_in_key_order(client: MilvusClient, name: str) -> None:
    new_collection(client, name)
    insert_flushed(client, name, [50, 10, 30, 20])
    insert_flushed(client, name, [45, 5, 25])
    compact_and_wait(client, name, target_size=FORCE_MERGE_TARGET_MB)
    segments = client.list_persistent_segments(name)
    assert [(s.num_rows, s.is_sorted) for s in segments] == [(7, True)]
    client.load_collection(name)
    got = client.query(name, "id >= 0", output_fields=["id"])
    assert [r["id"] for r in got] == [5, 10, 20, 25, 30, 45, 50]


def test_compaction_across_an_added_field(client: MilvusClient, name: str) -> None:
    """Segments written before a field was added (nullable, no default) merge with later ones:
    their rows read null, the later rows keep their values."""
    new_collection(client, name)
    insert_flushed(client, name, [30, 10, 20])
    client.add_collection_field(name, "extra", DataType.INT64, nullable=True)
    client.insert(name, [{"id": k, "v": [0.5] * DIM, "extra": k * 10} for k in (25, 5, 15)])
    client.flush(name)
    compact_and_wait(client, name, target_size=FORCE_MERGE_TARGET_MB)
    segments = client.list_persistent_segments(name)
    assert [(s.num_rows, s.is_sorted) for s in segments] == [(6, True)]
    client.load_collection(name)
    got = client.query(name, "id >= 0", output_fields=["extra"])
    assert [(r["id"], r["extra"]) for r in got] == [(5, 50), (10, None), (15, 150), (20, None), (25, 250), (30, None)]


def test_growing_segments_listed_only_when_asked(client: MilvusClient, name: str) -> None:
    from pymilvus.client.types import SegmentState

    new_collection(client, name)
    client.insert(name, [{"id": i, "v": [0.0] * DIM} for i in range(5)])
    assert client.list_persistent_segments(name) == []
    growing = client.list_persistent_segments(name, states=[SegmentState.Growing])
    assert [(s.num_rows, s.state_name) for s in growing] == [(5, "Growing")]
