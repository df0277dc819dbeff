"""The engine driven directly (no gRPC): MVCC, durability, flush, indexes, compaction."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from shoal.engine import open_engine
from shoal.engine.requests import QueryRequest, ReadConsistency, SearchRequest
from shoal.errors import Code, ShoalError
from shoal.schema import CollectionSchema, Column, DataType, FieldSchema

DIM = 8


def _schema(dynamic: bool = False) -> CollectionSchema:
    return CollectionSchema(
        fields=[
            FieldSchema("id", DataType.INT64, field_id=100, is_primary=True),
            FieldSchema("cat", DataType.INT64, field_id=101),
            FieldSchema("title", DataType.VARCHAR, field_id=102, max_length=64),
            FieldSchema("vec", DataType.FLOAT_VECTOR, field_id=103, dim=DIM),
        ],
        enable_dynamic_field=dynamic,
    )


def _batch(ids: np.ndarray, rng: np.random.Generator) -> dict[str, Column]:
    n = len(ids)
    titles = np.empty(n, dtype=object)
    titles[:] = [f"t{i}" for i in ids]
    return {
        "id": Column(ids.astype(np.int64)),
        "cat": Column((ids % 10).astype(np.int64)),
        "title": Column(titles),
        "vec": Column(rng.standard_normal((n, DIM)).astype(np.float32)),
    }


@pytest.fixture
def engine(tmp_path: Path):
    eng = open_engine(tmp_path, {"segment_max_rows": 500, "min_index_rows": 100})
    yield eng
    eng.close()


def _ids(result) -> list[int]:
    return sorted(int(x) for x in result.fields["id"].values)


def _count(eng, expr: str = "", **kw) -> int:
    res = eng.query("", "c", QueryRequest(expr=expr, output_fields=["count(*)"], **kw))
    return int(res.count)


def test_insert_query_search_delete(engine) -> None:
    rng = np.random.default_rng(0)
    engine.create_collection("", "c", _schema())
    res = engine.insert("", "c", "", _batch(np.arange(1000), rng), 1000)
    assert res.insert_count == 1000 and len(res.ids) == 1000
    with pytest.raises(ShoalError) as err:
        engine.query("", "c", QueryRequest(expr="cat == 1"))
    assert err.value.code == Code.COLLECTION_NOT_LOADED
    engine.load_collection("", "c")
    assert _count(engine) == 1000
    assert _count(engine, "cat == 3") == 100
    got = engine.query("", "c", QueryRequest(expr="id in [5, 7, 2000]", output_fields=["title"]))
    assert _ids(got) == [5, 7]
    assert sorted(got.fields["title"].values) == ["t5", "t7"]

    vecs = engine.query("", "c", QueryRequest(expr="id in [42]", output_fields=["vec"])).fields["vec"].values
    hits = engine.search("", "c", SearchRequest(anns_field="vec", queries=vecs, topk=5, metric_type="L2"))
    assert int(hits.ids[0]) == 42 and hits.scores[0] == pytest.approx(0.0, abs=1e-5)
    filtered = engine.search(
        "", "c", SearchRequest(anns_field="vec", queries=vecs, topk=5, metric_type="L2", expr="cat == 1")
    )
    assert all(int(i) % 10 == 1 for i in filtered.ids) and filtered.topks == [5]

    before = engine.alloc_timestamp()
    engine.delete("", "c", "", "cat == 3")
    assert _count(engine) == 900
    assert _count(engine, consistency=ReadConsistency(travel_ts=before)) == 1000
    engine.delete("", "c", "", "id in [1, 2]")
    assert _count(engine) == 898


def test_upsert_replaces_row(engine) -> None:
    rng = np.random.default_rng(1)
    engine.create_collection("", "c", _schema())
    engine.load_collection("", "c")
    engine.insert("", "c", "", _batch(np.arange(10), rng), 10)
    batch = _batch(np.array([3, 11]), rng)
    batch["title"] = Column(np.array(["new3", "new11"], dtype=object))
    engine.upsert("", "c", "", batch, 2)
    got = engine.query("", "c", QueryRequest(expr="id in [3, 11]", output_fields=["title"]))
    assert sorted(got.fields["title"].values) == ["new11", "new3"]
    assert _count(engine) == 11


def test_restart_recovers_wal_and_segments(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    eng = open_engine(tmp_path, {"segment_max_rows": 300})
    eng.create_collection("", "c", _schema())
    eng.load_collection("", "c")
    eng.insert("", "c", "", _batch(np.arange(1000), rng), 1000)
    eng.flush("", ["c"])
    eng.insert("", "c", "", _batch(np.arange(1000, 1100), rng), 100)  # WAL only
    eng.delete("", "c", "", "id < 10")
    # Simulate a crash: drop the engine without close() (no final flush). Its background
    # flusher is stopped too, or it would keep flushing into the directory the second engine owns.
    eng._closed.set()
    eng._flush_wanted.set()
    eng._flusher.join(timeout=60)
    eng.indexer.close()
    eng.wal.close()
    eng2 = open_engine(tmp_path, {"segment_max_rows": 300})
    try:
        assert _count(eng2) == 1090
        assert _count(eng2, "id < 10") == 0
        assert _count(eng2, "id >= 1000") == 100
    finally:
        eng2.close()


def test_flush_writes_rows_in_key_order_and_restarts(tmp_path: Path) -> None:
    """A flush writes each segment's rows in primary-key order (Milvus's sorted segments):
    every field moves with its row, and deletes and shadows made before the flush stay on it."""
    rng = np.random.default_rng(5)
    eng = open_engine(tmp_path, {"segment_max_rows": 400})
    eng.create_collection("", "c", _schema())
    eng.load_collection("", "c")
    keys = rng.permutation(1000)
    parts = np.array_split(keys, 4)
    eng.insert("", "c", "", _batch(parts[0], rng), len(parts[0]))
    gone = sorted(int(k) for k in parts[0][:3])
    eng.delete("", "c", "", f"id in {gone}")  # the key index takes in the rows so far
    for part in parts[1:]:
        eng.insert("", "c", "", _batch(part, rng), len(part))
    eng.flush("", ["c"])
    # every key written after that first delete is still found once the rows are reordered
    late = sorted(int(k) for k in parts[3][:20])
    eng.delete("", "c", "", f"id in {late}")
    assert _count(eng, f"id in {late}") == 0
    eng.insert("", "c", "", _batch(np.array(late), rng), len(late))  # back again, once each
    data = eng.datas[eng.catalog.require("", "c").collection_id]
    flushed = [s for s in data.segments if s.path]
    assert sum(s.num_rows for s in flushed) == 1000
    for seg in flushed:
        pks = np.asarray(seg.columns["id"].values)
        assert np.all(pks[1:] >= pks[:-1]) and seg.rows_in_key_order()
        assert list(seg.columns["title"].values) == [f"t{k}" for k in pks]
        assert list(np.asarray(seg.columns["cat"].values)) == list(pks % 10)
    assert _count(eng) == 997 and _count(eng, f"id in {gone}") == 0
    eng.close()
    eng2 = open_engine(tmp_path, {"segment_max_rows": 400})
    try:
        assert _count(eng2) == 997 and _count(eng2, f"id in {gone}") == 0
        got = eng2.query("", "c", QueryRequest(expr="id in [4, 501]", output_fields=["title"]))
        assert sorted(got.fields["title"].values) == ["t4", "t501"]
    finally:
        eng2.close()


def test_unsorted_segments_wait_for_a_compaction_the_user_asks_for(engine) -> None:
    """A segment written before flushes sorted their rows is put in key order by a compaction
    the user asks for, never automatically (that would rebuild every index after an upgrade)."""
    from shoal.engine.segments import TS_COLUMN, Segment

    rng = np.random.default_rng(6)
    engine.create_collection("", "c", _schema())
    engine.insert("", "c", "", _batch(np.arange(400), rng), 400)
    engine.flush("", ["c"])
    data = engine.datas[engine.catalog.require("", "c").collection_id]
    (seg,) = [s for s in data.segments if s.path]
    shuffled = rng.permutation(seg.num_rows)
    columns = {name: col.take(shuffled) for name, col in seg.columns.items()}
    columns[TS_COLUMN] = Column(seg.ts[shuffled])
    legacy = Segment.sealed_from(seg.segment_id, seg.partition_id, "id", columns, seg.deleted_ts[shuffled], seg.path)
    data.segments = [legacy if s is seg else s for s in data.segments]
    assert not legacy.rows_in_key_order()
    compactor = engine.compactor
    assert compactor.plan(data, small_rows=1, deleted_ratio=0.2) == []
    assert not compactor.wanted(data)
    assert compactor.plan(data, small_rows=1) == [(legacy.partition_id, [legacy])]


def test_index_built_in_background_and_used(engine) -> None:
    rng = np.random.default_rng(3)
    engine.create_collection("", "c", _schema())
    engine.create_index("", "c", "vec", "vec_idx", {"index_type": "HNSW", "metric_type": "L2", "M": "8", "efConstruction": "64"})
    engine.insert("", "c", "", _batch(np.arange(1200), rng), 1200)
    engine.flush("", ["c"])
    engine.load_collection("", "c")
    deadline = time.time() + 30
    while time.time() < deadline:
        (info,) = engine.describe_index("", "c", "vec")
        if info.state == "Finished":
            break
        time.sleep(0.1)
    assert info.state == "Finished" and info.indexed_rows == 1200
    assert any(seg.indexes for seg in engine.datas[engine.catalog.require("", "c").collection_id].segments)
    q = engine.query("", "c", QueryRequest(expr="id == 77", output_fields=["vec"])).fields["vec"].values
    res = engine.search("", "c", SearchRequest(anns_field="vec", queries=q, topk=3, params={"ef": 32}))
    assert int(res.ids[0]) == 77
    with pytest.raises(ShoalError) as err:
        engine.search("", "c", SearchRequest(anns_field="vec", queries=q, topk=3, metric_type="IP"))
    assert err.value.code == Code.METRIC_TYPE_MISMATCH


def test_compaction_keeps_every_live_row(engine) -> None:
    rng = np.random.default_rng(4)
    engine.create_collection("", "c", _schema())
    engine.load_collection("", "c")
    for start in range(0, 600, 100):
        engine.insert("", "c", "", _batch(np.arange(start, start + 100), rng), 100)
        engine.flush("", ["c"])
    engine.delete("", "c", "", "id < 50")
    cid = engine.compact("", "c")
    deadline = time.time() + 30
    while engine.compaction_state(cid).state != "Completed" and time.time() < deadline:
        time.sleep(0.05)
    assert engine.compaction_state(cid).state == "Completed"
    data = engine.datas[engine.catalog.require("", "c").collection_id]
    # 550 live rows of small segments: packed into merges no larger than a full segment (500)
    assert len(data.segments) == 2 and sum(s.num_rows for s in data.segments) == 550
    assert all(s.num_rows <= data.seal_rows == 500 for s in data.segments)
    assert not any(s.num_deleted for s in data.segments)
    assert _count(engine) == 550
    assert _ids(engine.query("", "c", QueryRequest(expr="id < 60")))[:3] == [50, 51, 52]


def test_scalar_index_is_built_and_answers_filters(engine) -> None:
    rng = np.random.default_rng(5)
    engine.create_collection("", "c", _schema())
    engine.insert("", "c", "", _batch(np.arange(300), rng), 300)
    engine.flush("", ["c"])
    engine.create_index("", "c", "title", "title_idx", {"index_type": "INVERTED"})
    data = engine.datas[engine.catalog.require("", "c").collection_id]
    deadline = time.time() + 20
    while time.time() < deadline and engine.describe_index("", "c", "title")[0].state != "Finished":
        time.sleep(0.05)
    (info,) = engine.describe_index("", "c", "title")
    assert info.indexed_rows == info.total_rows == 300 and info.pending_index_rows == 0
    # "Finished" is reported only once every sealed segment has its index
    assert data.segments and all("title" in s.scalar_indexes for s in data.segments)
    engine.load_collection("", "c")
    assert _ids(engine.query("", "c", QueryRequest(expr="title in ['t5', 't17']"))) == [5, 17]
    with pytest.raises(ShoalError) as err:
        engine.create_index("", "c", "cat", "cat_idx", {"index_type": "Trie"})
    assert err.value.code == Code.PARAMETER_INVALID


def test_scalar_index_on_an_added_field_finishes(engine) -> None:
    """Segments sealed before a field was added have no column to index: they count as done."""
    rng = np.random.default_rng(7)
    engine.create_collection("", "c", _schema())
    engine.insert("", "c", "", _batch(np.arange(300), rng), 300)
    engine.flush("", ["c"])
    engine.add_collection_field("", "c", FieldSchema("score", DataType.INT32, nullable=True))
    engine.create_index("", "c", "score", "score_idx", {"index_type": "STL_SORT"})
    deadline = time.time() + 20
    while time.time() < deadline and engine.describe_index("", "c", "score")[0].state != "Finished":
        time.sleep(0.05)
    (info,) = engine.describe_index("", "c", "score")
    assert info.state == "Finished" and info.pending_index_rows == 0 and info.indexed_rows == 300


def test_selective_filter_is_scored_exactly_even_on_a_lossy_index(engine) -> None:
    """A filter keeping a few rows of an IVF_PQ segment is answered from the stored vectors:
    the true nearest allowed rows with their exact L2 distances, not PQ estimates."""
    rng = np.random.default_rng(6)
    engine.create_collection("", "c", _schema())
    engine.create_index("", "c", "vec", "vec_idx", {"index_type": "IVF_PQ", "metric_type": "L2", "nlist": "16", "m": "4"})
    batch = _batch(np.arange(3000), rng)
    engine.insert("", "c", "", batch, 3000)
    engine.flush("", ["c"])
    engine.load_collection("", "c")
    deadline = time.time() + 30
    while engine.describe_index("", "c", "vec")[0].state != "Finished" and time.time() < deadline:
        time.sleep(0.1)
    data = engine.datas[engine.catalog.require("", "c").collection_id]
    assert all("vec" in seg.indexes for seg in data.segments)
    q = rng.standard_normal((1, DIM)).astype(np.float32)
    res = engine.search("", "c", SearchRequest(anns_field="vec", queries=q, topk=5, expr="cat == 3"))
    vectors = batch["vec"].values
    kept = np.flatnonzero(np.arange(3000) % 10 == 3)
    dist = ((vectors[kept] - q) ** 2).sum(axis=1)
    best = kept[np.argsort(dist)[:5]]
    assert [int(i) for i in res.ids] == best.tolist()
    assert np.allclose(res.scores, np.sort(dist)[:5], rtol=1e-4)


def _sealed_engine(tmp_path: Path, rows: int, dynamic: bool = False, **options):
    eng = open_engine(tmp_path, {"segment_max_rows": 1 << 20, "min_index_rows": 1 << 30, **options})
    rng = np.random.default_rng(8)
    eng.create_collection("", "c", _schema(dynamic))
    batch = _batch(np.arange(rows), rng)
    if dynamic:
        batch["$meta"] = Column(np.array([{"x": int(i) % 7} for i in range(rows)], dtype=object))
    eng.insert("", "c", "", batch, rows)
    eng.flush("", ["c"])
    eng.load_collection("", "c")
    return eng, batch


def test_repeated_filter_reuses_the_sealed_segment_result_and_stays_exact(tmp_path: Path) -> None:
    """The second run of a filter on a sealed segment comes from the filter cache, and deletes,
    time travel, other template values and filtered searches still see exactly the right rows."""
    eng, batch = _sealed_engine(tmp_path, 20_000)
    try:
        assert _count(eng, "cat == 3") == 2000
        assert _count(eng, "cat == 3") == 2000
        assert eng.stats()["filter_cache_hits"] == 1 and eng.stats()["filter_cache_bytes"] == 20_000
        before = eng.alloc_timestamp()
        eng.delete("", "c", "", "id in [3, 13, 23]")
        assert _count(eng, "cat == 3") == 1997
        assert _count(eng, "cat == 3", consistency=ReadConsistency(travel_ts=before)) == 2000
        assert _count(eng, "cat == {c}", expr_params={"c": 4}) == 2000
        assert _count(eng, "cat == {c}", expr_params={"c": 3}) == 1997
        q = np.random.default_rng(9).standard_normal((2, DIM)).astype(np.float32)
        kept = np.flatnonzero((np.arange(20_000) % 10 == 3) & ~np.isin(np.arange(20_000), [3, 13, 23]))
        for _ in range(2):  # a miss, then a hit
            res = eng.search("", "c", SearchRequest(anns_field="vec", queries=q, topk=5, metric_type="L2",
                                                    expr="cat == 3 and id > 0"))
            for i in range(2):
                dist = ((batch["vec"].values[kept] - q[i]) ** 2).sum(axis=1)
                assert [int(x) for x in res.ids[i * 5:(i + 1) * 5]] == kept[np.argsort(dist)[:5]].tolist()
        assert eng.stats()["filter_cache_hits"] >= 4
    finally:
        eng.close()


def test_filter_cache_respects_its_budget_and_can_be_turned_off(tmp_path: Path) -> None:
    eng, _ = _sealed_engine(tmp_path / "a", 20_000, filter_cache_bytes=50_000)
    try:
        for c in range(5):
            assert _count(eng, f"cat == {c}") == 2000
        assert eng.stats()["filter_cache_bytes"] == 40_000  # two 20,000-row masks fit the budget
        assert _count(eng, "cat == 4") == 2000 and eng.stats()["filter_cache_hits"] == 1
        assert _count(eng, "cat == 0") == 2000 and eng.stats()["filter_cache_hits"] == 1  # evicted
    finally:
        eng.close()
    eng, _ = _sealed_engine(tmp_path / "b", 20_000, filter_cache_bytes=0)
    try:
        assert _count(eng, "cat == 3") == _count(eng, "cat == 3") == 2000
        assert eng.stats()["filter_cache_hits"] == 0 and eng.stats()["filter_cache_bytes"] == 0
    finally:
        eng.close()


def test_a_filter_bound_differently_after_a_field_is_added_is_not_served_stale(tmp_path: Path) -> None:
    """`x` first means the dynamic key `$meta.x`; once a field `x` is added it means the new
    (all-null) column, and the cached result of the old meaning must not answer it."""
    eng, _ = _sealed_engine(tmp_path, 20_000, dynamic=True)
    try:
        assert _count(eng, "x == 2") == _count(eng, "x == 2") > 2000
        eng.add_collection_field("", "c", FieldSchema("x", DataType.INT64, nullable=True))
        assert _count(eng, "x == 2") == 0
    finally:
        eng.close()


def _builder_threads(eng) -> int:
    deadline = time.monotonic() + 120
    while eng.stats()["index_build_threads"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    return int(eng.stats()["index_build_threads"])


def test_index_builds_use_the_configured_thread_count(tmp_path: Path) -> None:
    """`index_build_threads` is what faiss reports in the builder thread; 0 means every CPU the
    process may use (affinity capped by a cgroup quota)."""
    from shoal.index import available_cpus

    eng = open_engine(tmp_path / "one", {"index_build_threads": 1})
    try:
        assert _builder_threads(eng) == 1
    finally:
        eng.close()
    eng = open_engine(tmp_path / "all", {})
    try:
        assert _builder_threads(eng) == available_cpus()
    finally:
        eng.close()
