"""Share mode without a cluster: the balancing of `cluster/shares.py`, a query node's segment
selection (`roles/shares_node.py`) and the proxy's merge (`cluster/gather.py`), checked against
one standalone engine that holds every segment: each node's answer is the engine read over its
share, and the gathered answer must equal the engine's full answer."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from shoal.cluster import gather, shares
from shoal.cluster.roles.shares_node import ShareHolder
from shoal.cluster.rpc import Unavailable
from shoal.engine import open_engine
from shoal.engine.collection_data import READ_SHARE, CollectionData
from shoal.engine.iterators import IteratorStates
from shoal.engine.requests import HybridSearchRequest, QueryRequest, RerankSpec, SearchRequest
from shoal.engine.rerank import DecayRerank, FusionRerank
from shoal.engine.segments import NOT_DELETED
from shoal.errors import Code, ShoalError
from shoal.schema import CollectionSchema, Column, DataType, FieldSchema, object_array

DIM = 8


def test_a_join_spreads_the_rows_and_a_leave_reloads_only_the_gone_nodes_segments() -> None:
    rows = {i: 1000 for i in range(10)}
    one, _ = shares.balance(rows, ["a"], {})
    assert set(one.values()) == {"a"}
    two, reasons = shares.balance(rows, ["a", "b"], one)
    per = [sum(rows[s] for s, n in two.items() if n == node) for node in ("a", "b")]
    assert all(abs(p - 5000) <= 0.2 * 5000 for p in per) and all("a -> b" in r for r in reasons)
    assert shares.balance(rows, ["a", "b"], two) == (two, [])  # balanced: nothing moves
    back, reasons = shares.balance(rows, ["b"], two)
    assert set(back.values()) == {"b"} and all(r.endswith("(a left)") for r in reasons)
    assert {s for s, n in two.items() if n == "b"} <= {s for s, n in back.items() if n == "b"}
    uneven, _ = shares.balance({1: 5000, 2: 100, 3: 100}, ["a", "b", "c"], {})
    assert sorted(uneven.values()) == ["a", "b", "c"]  # one big segment cannot be split


def test_reads_move_only_once_the_new_node_holds_the_segment() -> None:
    target = {1: "b", 2: "b", 3: "a"}
    before = {1: "a", 2: "a", 3: "a"}
    holds = {"a": {1, 2, 3}, "b": {1}}
    assert shares.serving(target, before, holds, {"a", "b"}) == {1: "b", 2: "a", 3: "a"}
    # the old node died: any holder, else the target (its reads retry until it loaded)
    assert shares.serving(target, before, {"b": {1}}, {"b"}) == {1: "b", 2: "b", 3: "a"}


def test_one_node_per_group_answers_for_what_the_document_does_not_name() -> None:
    plan = shares.read_shares({"serving": {"1": "b", "2": "a", "3": "b"}}, ["b", "a"])
    assert plan == {"a": {"mine": [2], "others": [1, 3], "rest": True},
                    "b": {"mine": [1, 3], "others": [2], "rest": False}}
    assert shares.read_shares({}, ["b", "a"]) == {"a": {"mine": [], "others": [], "rest": True}}


def _schema() -> CollectionSchema:
    return CollectionSchema(fields=[
        FieldSchema("id", DataType.INT64, field_id=100, is_primary=True),
        FieldSchema("cat", DataType.INT64, field_id=101),
        FieldSchema("vec", DataType.FLOAT_VECTOR, field_id=102, dim=DIM),
    ])


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory):
    eng = open_engine(tmp_path_factory.mktemp("shares"), {"segment_max_rows": 300, "min_index_rows": 1 << 40})
    eng.create_collection("", "c", _schema())
    rng = np.random.default_rng(3)
    for start in range(0, 1500, 250):
        ids = np.arange(start, start + 250)
        eng.insert("", "c", "", {"id": Column(ids), "cat": Column(ids % 7),
                                 "vec": Column(rng.standard_normal((250, DIM)).astype(np.float32))}, 250)
    eng.delete("", "c", "", "id in [3, 400, 1499]")
    eng.load_collection("", "c")
    yield eng
    eng.close()


def _holder(data: CollectionData) -> ShareHolder:
    follower = SimpleNamespace(engine=SimpleNamespace(datas={data.collection_id: data}), keep_delete_log=False)
    env = SimpleNamespace(node_id="query-test")
    return ShareHolder(env, follower, None, Path("."), threading.Event())  # type: ignore[arg-type]


def _gathered(engine, method: str, request, states: IteratorStates | None = None) -> object:
    """The proxy's path: per-node requests, each node's read over its share, the merge."""
    _, data = engine._resolve("", "c")
    ids = [s.segment_id for s in data.segments if s.sealed]
    assert len(ids) >= 3
    serving = {str(s): ("a" if i % 2 else "b") for i, s in enumerate(ids)}
    plan = shares.read_shares({"serving": serving}, ["a", "b"])
    args = ("", "c", request)
    schema = engine.describe_collection("", "c").schema
    gather.check(method, args, schema)
    holder = _holder(data)
    step = gather.iterator_step(method, args, states) if states is not None else None

    def each_node(calls: list[gather.Call]) -> list[list[dict]]:
        out = []
        for call, asked in calls:
            out.append([])
            for node in sorted(plan):
                token = READ_SHARE.set(holder.select(plan[node]))
                try:
                    out[-1].append(gather.node_part(engine, call, asked, getattr(engine, call)(*asked)))
                finally:
                    READ_SHARE.reset(token)
        return out

    calls = gather.node_calls(method, args, schema, step)
    stats = gather.text_stats_calls(calls)
    if stats:
        calls = gather.with_text_stats(calls, [i for i, _ in stats], each_node([c for _, c in stats]))
    return gather.merge(method, args, each_node(calls), schema, step, states)


@pytest.mark.parametrize("request_", [
    QueryRequest(expr="cat in [1, 2]", output_fields=["id", "cat"]),
    QueryRequest(expr="id >= 0", output_fields=["cat", "vec"], limit=37, offset=290),
    QueryRequest(expr="", output_fields=["count(*)"]),
    QueryRequest(expr="cat == 5", output_fields=["count(*)"]),
])
def test_a_gathered_query_equals_the_whole_engines_answer(engine, request_) -> None:
    want = engine.query("", "c", request_)
    got = _gathered(engine, "query", request_)
    assert got.count == want.count
    for name, col in want.fields.items():
        np.testing.assert_array_equal(got.fields[name].values, col.values)


@pytest.mark.parametrize("offset", [0, 7])
def test_a_gathered_search_equals_the_whole_engines_answer(engine, offset) -> None:
    queries = np.random.default_rng(9).standard_normal((3, DIM)).astype(np.float32)
    req = SearchRequest(anns_field="vec", queries=queries, topk=10, offset=offset, metric_type="L2",
                        expr="cat != 4", output_fields=["cat"])
    want = engine.search("", "c", req)
    got = _gathered(engine, "search", req)
    assert got.topks == want.topks
    np.testing.assert_array_equal(got.ids, want.ids)
    np.testing.assert_allclose(got.scores, want.scores, rtol=1e-6)
    np.testing.assert_array_equal(got.fields["cat"].values, want.fields["cat"].values)


def test_ties_go_to_the_smaller_key_and_a_key_counts_once() -> None:
    def part(ids: list[int], scores: list[float]) -> dict[str, object]:
        result = SimpleNamespace(num_queries=1, ids=np.array(ids), scores=np.array(scores, np.float32),
                                 topks=[len(ids)], fields={}, session_ts=1, all_search_count=len(ids))
        return {"result": result, "desc": True}

    import dataclasses

    from shoal.engine.requests import SearchResult

    def real(p: dict[str, object]) -> dict[str, object]:
        r = p["result"]
        return {"result": SearchResult(r.num_queries, 3, r.topks, r.ids, r.scores, {}, [], [], "id", 1), "desc": True}

    parts = [real(part([9, 5], [0.9, 0.5])), real(part([2, 9, 1], [0.9, 0.9, 0.1]))]
    req = SearchRequest(anns_field="vec", queries=np.zeros((1, DIM), np.float32), topk=3)
    merged = gather.merge("search", ("", "c", req), [parts], _schema())
    assert merged.ids.tolist() == [2, 9, 5] and dataclasses.is_dataclass(merged)


def test_a_released_segment_the_read_needs_makes_it_unavailable(engine) -> None:
    _, data = engine._resolve("", "c")
    holder = _holder(data)
    first = data.segments[0].segment_id
    holder.released[data.collection_id] = {first}
    # released: gone from the node's own segment list (one the node loaded back is no longer gone)
    assert holder.select({"mine": [first], "others": [], "rest": False})(data)[0].segment_id == first
    data = SimpleNamespace(collection_id=data.collection_id, segments=[s for s in data.segments if s.segment_id != first])
    with pytest.raises(Unavailable):
        holder.select({"mine": [first], "others": [], "rest": False})(data)
    with pytest.raises(Unavailable):
        holder.select({"mine": [], "others": [], "rest": True})(data)
    picked = holder.select({"mine": [], "others": [first], "rest": True})(data)
    assert first not in {s.segment_id for s in picked}


def _vec(n: int = 1, seed: int = 9) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)


def _same_hits(got, want) -> None:
    assert got.topks == want.topks
    np.testing.assert_array_equal(got.ids, want.ids)
    np.testing.assert_allclose(got.scores, want.scores, rtol=1e-6)
    assert sorted(got.fields) == sorted(want.fields) and got.output_fields == want.output_fields
    for name, col in want.fields.items():
        np.testing.assert_array_equal(got.fields[name].values, col.values)


@pytest.mark.parametrize("params,offset", [
    ({"radius": 9.0}, 0),  # L2: every hit closer than 9, best first
    ({"radius": 12.0, "range_filter": 6.0}, 3),  # between 6 and 12 only
])
def test_a_gathered_range_search_equals_the_whole_engines_answer(engine, params, offset) -> None:
    req = SearchRequest(anns_field="vec", queries=_vec(3), topk=15, offset=offset, metric_type="L2", params=params,
                        output_fields=["cat"])
    want = engine.search("", "c", req)
    assert sum(want.topks) > 0 and all(lo >= params.get("range_filter", 0) for lo in want.scores)
    _same_hits(_gathered(engine, "search", req), want)


@pytest.mark.parametrize("group_size,offset,strict,outputs", [
    (1, 0, False, ["cat"]), (3, 2, False, []), (2, 1, True, ["id"]), (40, 0, True, ["cat"])])
def test_a_gathered_group_by_search_equals_the_whole_engines_answer(engine, group_size, offset, strict, outputs) -> None:
    """Every node's best hits grouped at the proxy: a group's hits on a node that did not rank it
    among its own best groups count too (group_size 40: groups strict-full only across nodes)."""
    req = SearchRequest(anns_field="vec", queries=_vec(2), topk=4, offset=offset, metric_type="L2",
                        group_by_field="cat", group_size=group_size, strict_group_size=strict, output_fields=outputs)
    want = engine.search("", "c", req)
    got = _gathered(engine, "search", req)
    assert sum(want.topks) > 0
    _same_hits(got, want)
    assert got.group_by_values.values.tolist() == want.group_by_values.values.tolist()


@pytest.mark.parametrize("scorer,group_size,strict", [("max", 1, False), ("sum", 2, True), ("avg", 3, False)])
def test_a_gathered_grouped_hybrid_search_equals_the_whole_engines_answer(engine, scorer, group_size, strict) -> None:
    subs = [SearchRequest(anns_field="vec", queries=_vec(2, 3), topk=4, metric_type="L2"),
            SearchRequest(anns_field="vec", queries=_vec(2, 4), topk=3, metric_type="COSINE", expr="id > 100")]
    req = HybridSearchRequest(requests=subs, rerank=RerankSpec("weighted", {"weights": [0.6, 0.5]}), limit=3,
                              offset=1, output_fields=["cat"], group_by_field="cat", group_size=group_size,
                              group_scorer=scorer, strict_group_size=strict)
    want = engine.hybrid_search("", "c", req)
    assert sum(want.topks) > 0
    got = _gathered(engine, "hybrid_search", req)
    _same_hits(got, want)
    assert got.group_by_values.values.tolist() == want.group_by_values.values.tolist()


def test_a_gathered_search_rounds_after_the_merge_and_reranks_the_best_of_every_node(engine) -> None:
    rounded = SearchRequest(anns_field="vec", queries=_vec(2), topk=6, metric_type="L2", round_decimal=1)
    _same_hits(_gathered(engine, "search", rounded), engine.search("", "c", rounded))
    # the reranker's field travels to the proxy and is dropped if not asked for (the key too)
    for field, outputs in (("cat", []), ("cat", ["cat"]), ("id", [])):
        req = SearchRequest(anns_field="vec", queries=_vec(2), topk=5, offset=2, metric_type="L2", output_fields=outputs,
                            rerank=DecayRerank(field=field, function="gauss", origin=3.0, scale=2.0))
        want = engine.search("", "c", req)
        _same_hits(_gathered(engine, "search", req), want)
    # RRF / weighted function rankers read no field: the page is rescored after the offset
    for fusion in (FusionRerank("rrf", {"k": 5.0}), FusionRerank("weighted", {"weights": [0.5], "norm_score": True})):
        req = SearchRequest(anns_field="vec", queries=_vec(2), topk=4, offset=3, metric_type="L2", rerank=fusion)
        _same_hits(_gathered(engine, "search", req), engine.search("", "c", req))


_DECAY = RerankSpec("decay", function=DecayRerank(field="cat", function="linear", origin=2.0, scale=3.0, decay=0.2))


@pytest.mark.parametrize("rerank,outputs", [(RerankSpec("rrf", {"k": 10}), ["cat"]),
                                            (RerankSpec("weighted", {"weights": [0.3, 0.9]}), ["cat"]),
                                            (_DECAY, []), (_DECAY, ["cat"])])
def test_a_gathered_hybrid_search_equals_the_whole_engines_answer(engine, rerank, outputs) -> None:
    subs = [SearchRequest(anns_field="vec", queries=_vec(2, 1), topk=20, metric_type="L2", expr="cat != 2"),
            SearchRequest(anns_field="vec", queries=_vec(2, 2), topk=12, metric_type="IP")]
    req = HybridSearchRequest(requests=subs, rerank=rerank, limit=8, offset=3, output_fields=outputs, round_decimal=3)
    want = engine.hybrid_search("", "c", req)
    assert want.topks == [8, 8]
    _same_hits(_gathered(engine, "hybrid_search", req), want)
    bad = dataclasses.replace(req, requests=[subs[0], dataclasses.replace(subs[1], queries=_vec(3))],
                              rerank=RerankSpec("rrf"))
    for run in (lambda: engine.hybrid_search("", "c", bad), lambda: _gathered(engine, "hybrid_search", bad)):
        with pytest.raises(ShoalError, match="must have the same nq"):
            run()


@pytest.mark.parametrize("metric,round_decimal", [("L2", -1), ("IP", 1)])
def test_a_gathered_search_iterator_pages_as_the_whole_engine(engine, metric, round_decimal) -> None:
    """Every step over both nodes, the proxy keeping the iterator's state; with scores rounded to
    one decimal, many hits tie with each page's reported bound and must come back once."""
    states = IteratorStates()
    token, alone, bound = "", "", None  # the gathered iterator's token, the whole engine's
    pages = []
    for _ in range(40):
        req = SearchRequest(anns_field="vec", queries=_vec(), topk=60, metric_type=metric, expr="cat != 3",
                            round_decimal=round_decimal, output_fields=["cat"], iterator=True, iterator_v2=True,
                            iterator_token=token, iterator_last_bound=bound)
        page = _gathered(engine, "search", req, states)
        want = engine.search("", "c", dataclasses.replace(req, iterator_token=alone))
        assert page.ids.tolist() == want.ids.tolist() and page.iterator_last_bound == want.iterator_last_bound
        if not len(page.ids):
            break
        pages += page.ids.tolist()
        token, alone, bound = page.iterator_token, want.iterator_token, page.iterator_last_bound
        assert not set(page.fields["cat"].values.tolist()) & {3}
    full = engine.search("", "c", SearchRequest(anns_field="vec", queries=_vec(), topk=1500, metric_type=metric,
                                               expr="cat != 3"))
    assert sorted(pages) == sorted(full.ids.tolist()) and len(pages) == len(set(pages))


@pytest.fixture(scope="module")
def text_engine(tmp_path_factory: pytest.TempPathFactory):
    """Full-text rows whose words are spread unevenly over the segments: the first segments say
    "apple" often, the last "pear", so one node's statistics are far from the whole collection's."""
    eng = open_engine(tmp_path_factory.mktemp("shares-text"), {"segment_max_rows": 100, "min_index_rows": 1 << 40})
    eng.create_collection("", "c", CollectionSchema(fields=[
        FieldSchema("id", DataType.INT64, field_id=100, is_primary=True),
        FieldSchema("text", DataType.VARCHAR, field_id=101, type_params={"max_length": "200", "enable_analyzer": "true"}),
        FieldSchema("sparse", DataType.SPARSE_FLOAT_VECTOR, field_id=102),
    ], functions=[{"name": "bm25", "type": 1, "input_field_names": ["text"], "output_field_names": ["sparse"]}]))
    rng = np.random.default_rng(4)
    words = np.array(["apple", "pear", "plum", "fig", "kiwi", "lime"])
    for start in range(0, 600, 100):
        fruit = "apple" if start < 300 else "pear"
        texts = [" ".join([*rng.choice(words, rng.integers(2, 9)), *([fruit] * int(rng.integers(0, 4)))])
                 for _ in range(100)]
        eng.insert("", "c", "", {"id": Column(np.arange(start, start + 100)), "text": Column(object_array(texts))}, 100)
    eng.load_collection("", "c")
    yield eng
    eng.close()


def test_a_gathered_full_text_search_scores_with_the_whole_collections_statistics(text_engine) -> None:
    req = SearchRequest(anns_field="sparse", queries=["apple pear", "fig apple apple"], topk=12, offset=3,
                        metric_type="BM25", output_fields=["text"])
    want = text_engine.search("", "c", req)
    assert want.topks == [12, 12]
    _same_hits(_gathered(text_engine, "search", req), want)
    subs = [dataclasses.replace(req, queries=["apple pear"], offset=0, topk=30),
            dataclasses.replace(req, queries=["plum pear"], offset=0, topk=30)]
    hybrid = HybridSearchRequest(requests=subs, rerank=RerankSpec("weighted", {"weights": [0.5, 0.7]}), limit=10,
                                 output_fields=["id"])
    _same_hits(_gathered(text_engine, "hybrid_search", hybrid), text_engine.hybrid_search("", "c", hybrid))


@pytest.mark.parametrize("request_", [
    QueryRequest(expr="id < 900", output_fields=["id"], order_by=[("cat", True)], limit=40, offset=250),
    QueryRequest(expr="cat in [1, 5]", output_fields=["cat"], order_by=[("cat", False), ("id", True)], limit=30),
    QueryRequest(expr="id > 1000", output_fields=["*"], order_by=[("cat", False)]),
])
def test_a_gathered_order_by_query_equals_the_whole_engines_answer(engine, request_) -> None:
    want = engine.query("", "c", request_)
    got = _gathered(engine, "query", request_)
    assert sorted(got.fields) == sorted(want.fields) and got.output_fields == want.output_fields
    assert [f.name for f in got.field_schemas] == [f.name for f in want.field_schemas]
    for name, col in want.fields.items():
        np.testing.assert_array_equal(got.fields[name].values, col.values)


_SUB = SearchRequest(anns_field="vec", queries=np.zeros((1, DIM)), topk=3)


@pytest.mark.parametrize("method,request_,what", [
    ("search", SearchRequest(anns_field="vec", queries=np.zeros((1, DIM)), topk=3, iterator=True,
                             group_by_field="cat"), "iterator"),
    ("search", SearchRequest(anns_field="vec", queries=np.zeros((1, DIM)), topk=3, boosts=[{"weight": "2"}]), "boost"),
    ("hybrid_search", HybridSearchRequest(requests=[_SUB], rerank=_DECAY, limit=3, group_by_field="cat"),
     "hybrid search with group_by and a function reranker"),
    ("compaction", None, "compaction"),
])
def test_reads_share_mode_does_not_gather_answer_code_10(method, request_, what) -> None:
    with pytest.raises(ShoalError) as err:
        gather.check(method, ("", "c", request_), _schema())
    assert err.value.code == Code.NOT_SUPPORTED and what in str(err.value.message)
    assert "segment_placement share" in str(err.value.message)


def test_the_delete_log_gives_a_segment_loaded_later_the_deletes_since_its_checkpoint(engine) -> None:
    data = CollectionData(1, _schema(), iter(range(1, 100)).__next__, 1000)
    data.delete_log = []
    data.note_lsn(5)
    data.apply_delete(np.array([7, 3]), 100, None)
    lsn, pks, lo, hi, ts, parts = data.delete_log[0]
    assert (lsn, pks.tolist(), lo, hi, ts, parts) == (5, [3, 7], 3, 7, 100, None)
    assert NOT_DELETED > ts


class _DirStore:
    """An object store over a local directory (the keys are paths under it)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def get_file(self, key: str, path: Path) -> None:
        import shutil

        shutil.copyfile(self.root / key, path)


def test_a_released_segment_loads_again_with_the_deletes_made_since_its_checkpoint(tmp_path: Path) -> None:
    eng = open_engine(tmp_path / "node", {"segment_max_rows": 300, "min_index_rows": 1 << 40})
    try:
        eng.create_collection("", "c", _schema())
        eng.load_collection("", "c")
        meta, data = eng._resolve("", "c")
        data.delete_log, data.delete_log_after = [], data.last_lsn
        ids = np.arange(600)
        eng.insert("", "c", "", {"id": Column(ids), "cat": Column(ids % 7),
                                 "vec": Column(np.zeros((600, DIM), np.float32))}, 600)
        eng.flush("", ["c"])
        checkpoint_lsn = data.last_lsn
        seg = data.segments[0]
        entry = {"id": seg.segment_id, "partition": seg.partition_id, "rows": seg.num_rows, "path": seg.path,
                 "key": seg.path, "files": sorted(p.name for p in (eng.root / seg.path).iterdir()), "deletes": ""}
        holder = _holder(data)
        holder.follower.engine = eng
        holder.s3, holder.cache_dir = _DirStore(eng.root), tmp_path / "cache"
        holder._release(data, seg.segment_id)
        count = QueryRequest(expr="", output_fields=["count(*)"])
        assert eng.query("", "c", count).count == 600 - seg.num_rows
        with pytest.raises(Unavailable):
            holder.select({"mine": [seg.segment_id], "others": [], "rest": False})(data)
        first = int(seg.key_column()[0])
        eng.delete("", "c", "", f"id in [{first}, {first + 1}, 599]")  # after the checkpoint: in the log only
        holder._load(meta, data, entry, checkpoint_lsn, {})
        assert eng.query("", "c", count).count == 597
        assert eng.query("", "c", QueryRequest(expr=f"id in [{first}, {first + 1}, {first + 2}]")).fields["id"].values.tolist() == [first + 2]
        assert holder.select({"mine": [seg.segment_id], "others": [], "rest": False})(data)
        holder._trim(data, data.last_lsn)
        assert data.delete_log == [] and data.delete_log_after == data.last_lsn
    finally:
        eng.close()


def test_the_proxy_gathers_from_every_node_of_a_group_and_asks_again_when_a_share_moved(engine) -> None:
    import itertools
    import time
    from concurrent.futures import ThreadPoolExecutor

    from shoal.cluster.proxy_engine import ClusterEngine

    meta, data = engine._resolve("", "c")
    sealed = [s.segment_id for s in data.segments if s.sealed]
    holders = {"query-a": _holder(data), "query-b": _holder(data)}
    calls: list[str] = []
    lacks: dict[str, set[int]] = {}

    class Node:
        def __init__(self, name: str) -> None:
            self.name = name

        def call(self, what: str, method: str, _version: int, session: dict, share: dict, args: tuple, kwargs: dict,
                 timeout: float) -> dict:
            assert what == "read_share_at" and session == {}  # per WAL channel; this proxy wrote nothing
            calls.append(self.name)
            pick = holders[self.name].select(share)
            lacking = lacks.get(self.name, set())  # the segments this node released: not in its own list
            token = READ_SHARE.set(lambda d: pick(SimpleNamespace(
                collection_id=d.collection_id, segments=[s for s in d.segments if s.segment_id not in lacking])))
            try:
                return gather.node_part(engine, method, args, getattr(engine, method)(*args, **kwargs))
            finally:
                READ_SHARE.reset(token)

    proxy = object.__new__(ClusterEngine)
    proxy.share_mode, proxy.meta_version, proxy._session = True, 0, {}
    proxy._lock, proxy._rr = threading.Lock(), itertools.count()
    proxy._gather_pool = ThreadPoolExecutor(4)
    proxy._iterator_states = IteratorStates()
    proxy._node_addrs = {"query-a": "query-a", "query-b": "query-b"}
    proxy._query_addrs = sorted(proxy._node_addrs.values())
    proxy._query_seen = time.monotonic() + 3600  # no etcd: the documents below stay current
    proxy._group_docs = {meta.collection_id: [["query-a", "query-b"]]}
    serving = {str(s): ("query-a" if i % 2 else "query-b") for i, s in enumerate(sealed)}
    proxy._shares = {meta.collection_id: {"groups": [{"serving": serving}], "nodes": {}}}
    proxy.describe_collection = lambda database, name: meta  # type: ignore[method-assign]
    proxy._client = Node  # type: ignore[method-assign]
    count = QueryRequest(expr="", output_fields=["count(*)"])
    want = engine.query("", "c", count).count
    assert proxy._read("query", "", "c", count).count == want
    assert sorted(set(calls)) == ["query-a", "query-b"]
    # query-b released a segment it serves: unavailable, so the proxy asks again (here: the
    # document moved it to query-a by the time the retry re-reads it)
    moved = next(int(s) for s, n in serving.items() if n == "query-b")
    holders["query-b"].released[meta.collection_id] = {moved}
    lacks["query-b"] = {moved}

    refreshes: list[int] = []

    def refresh() -> None:
        refreshes.append(1)
        if len(refreshes) == 2:
            proxy._shares[meta.collection_id]["groups"][0]["serving"][str(moved)] = "query-a"

    proxy._refresh_query_nodes = refresh  # type: ignore[method-assign]
    assert proxy._read("query", "", "c", count).count == want
    assert len(refreshes) == 2
    with pytest.raises(ShoalError) as err:
        proxy._read("search", "", "c", SearchRequest(anns_field="vec", queries=_vec(), topk=3, boosts=[{"weight": "2"}]))
    assert err.value.code == Code.NOT_SUPPORTED
    proxy._gather_pool.shutdown()


def test_the_coordinator_moves_reads_only_after_the_new_holder_loaded_and_keeps_a_draining_node_serving() -> None:
    import json

    from shoal.cluster import placement
    from shoal.cluster.roles.share_coord import ShareBalancer

    kv: dict[str, bytes] = {}
    live: dict[str, dict] = {"query-a": {"address": "h:1"}}
    store = SimpleNamespace(list_prefix=lambda p: {k: v for k, v in kv.items() if k.startswith(p)},
                            delete=lambda k: kv.pop(k, None))
    env = SimpleNamespace(store=store, live_nodes=lambda role: dict(live),
                          get_json=lambda k: json.loads(kv[k]) if k in kv else None,
                          put_json=lambda k, v: kv.__setitem__(k, json.dumps(v).encode()))
    segments = [{"id": i, "rows": 100} for i in range(1, 7)]
    kv["checkpoint/0"] = json.dumps({"collections": {"5": {"segments": segments}}}).encode()
    kv[placement.key(5)] = json.dumps({"collection_id": 5, "database": "default", "name": "c",
                                       "groups": [["query-a"]]}).encode()
    decided: list[tuple[str, str]] = []
    balancer = ShareBalancer(env, lambda event, action, reason: decided.append((event, action)))  # type: ignore[arg-type]
    held: dict[str, set[int]] = {"query-a": set(range(1, 7))}
    asked: list[dict[str, str]] = []

    def fake_held(addresses: dict[str, str]) -> dict[str, dict[str, set[int]]]:
        asked.append(dict(addresses))
        return {n: {"5": set(held[n])} for n in addresses if n in held}

    balancer._held = fake_held  # type: ignore[method-assign]

    def doc() -> dict:
        return json.loads(kv[shares.key(5)])["groups"][0]

    balancer.step()
    assert set(doc()["serving"].values()) == {"query-a"} and decided.count(("share", "assign")) == 6
    live["query-b"] = {"address": "h:2"}
    kv[placement.key(5)] = json.dumps({"collection_id": 5, "database": "default", "name": "c",
                                       "groups": [["query-a", "query-b"]]}).encode()
    held["query-b"] = set()
    balancer.step()
    moved = {int(s) for s, n in doc()["target"].items() if n == "query-b"}
    assert len(moved) == 3 and decided.count(("share", "move")) == 3
    assert set(doc()["serving"].values()) == {"query-a"}  # query-b holds nothing yet
    held["query-b"] = moved
    balancer.step()
    assert {int(s) for s, n in doc()["serving"].items() if n == "query-b"} == moved
    held["query-a"] -= moved  # query-a released them
    del live["query-b"]  # query-b drains: it left its registration but still answers
    kv[placement.key(5)] = json.dumps({"collection_id": 5, "database": "default", "name": "c",
                                       "groups": [["query-a"]]}).encode()
    balancer.step()
    assert asked[-1] == {"query-a": "h:1", "query-b": "h:2"}
    assert set(doc()["target"].values()) == {"query-a"} and decided.count(("share", "reload")) == 3
    assert {int(s) for s, n in doc()["serving"].items() if n == "query-b"} == moved  # until query-a holds them
    held["query-a"] |= moved
    balancer.step()
    assert set(doc()["serving"].values()) == {"query-a"} and doc()["members"] == ["query-a"]
    del kv[placement.key(5)]  # released
    balancer.step()
    assert shares.key(5) not in kv
