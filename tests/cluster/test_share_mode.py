"""Share mode (`segment_placement: share`) on a cluster of this module's own (one broker, small
segments so the base rows make 8 sealed segments, two WAL channels so the load and full-text
collections sit on different channels and their segments share ids): the coordinator divides
the sealed segments among the query nodes, the proxy gathers every search, query and count from
them.

- With one query node, then after scaling to two, and after the second drains (SIGTERM), the
  answers equal an exact brute-force answer computed here (what standalone and copy mode answer
  on a FLAT index), count(*) included.
- Scaling 1 -> 2 moves segments: `shoal cluster status` shows both nodes holding sealed
  segments, none held twice once the old holder released them; the new node's start-up loaded
  none of the segments the first one serves; draining one loads its segments on the other from
  S3 (with the deletes made since the checkpoint).
- A compaction (the owner merges, the query nodes load the merged segments from S3) leaves the
  answers as they were, and the merged segments end up served, their sources held nowhere.
- Under the mixed load of the fault tests (`loadgen.MixedLoad`) no request fails during either
  move. Rows per node and the time of each move are printed (figures, not asserted).
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pymilvus import (
    AnnSearchRequest,
    DataType,
    Function,
    FunctionType,
    MilvusClient,
    MilvusException,
    WeightedRanker,
)
from pymilvus.client.iterator import SearchIteratorV2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixtures_cluster import ClusterProcess, own_cluster  # noqa: E402
from loadgen import (  # noqa: E402
    BASE,
    DIM,
    QUERY_VECTORS,
    MixedLoad,
    assert_acked_once,
    base_rows,
    read_query,
    read_search,
    visible,
    wait_for,
)

from shoal.cluster.rpc import RpcClient  # noqa: E402
from shoal.cluster.supervisor import admin_call  # noqa: E402

pytestmark = pytest.mark.timeout(1200)
COLL = "share_load"
TEXT = "share_text"
KINDS = ("search", "query", "insert")
DELETED = [5, 17, 260, 1001, 1999]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterProcess]:
    saved = {k: os.environ.get(k) for k in ("SHOAL_SEGMENT_PLACEMENT", "SHOAL_SEGMENT_MAX_ROWS")}
    os.environ.update(SHOAL_SEGMENT_PLACEMENT="share", SHOAL_SEGMENT_MAX_ROWS="250")
    try:
        yield from own_cluster(tmp_path_factory, "share", extra_args=["--wal-channels", "2"])  # type: ignore[arg-type]
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def client(cluster: ClusterProcess) -> Iterator[MilvusClient]:
    c = MilvusClient(cluster.uri, timeout=120)
    yield c
    c.close()


def _create(client: MilvusClient) -> None:
    """`loadgen`'s base collection (FLAT, Strong), inserted 250 rows a call: 8 sealed segments."""
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    index = client.prepare_index_params()
    index.add_index("vector", index_type="FLAT", metric_type="L2")
    client.create_collection(COLL, schema=schema, index_params=index, consistency_level="Strong")
    rows = base_rows()
    for at in range(0, BASE, 250):
        client.insert(COLL, rows[at:at + 250])
    client.flush(COLL)


def _create_text(client: MilvusClient) -> None:
    """A full-text collection of 4 sealed segments whose words are spread unevenly: the first two
    say "apple" often, the last two "pear", so one node's BM25 statistics are far from the whole's."""
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("text", DataType.VARCHAR, max_length=200, enable_analyzer=True)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["text"],
                                 output_field_names=["sparse"]))
    index = client.prepare_index_params()
    index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    client.create_collection(TEXT, schema=schema, index_params=index, consistency_level="Strong")
    rng = np.random.default_rng(4)
    words = ["apple", "pear", "plum", "fig", "kiwi", "lime"]
    for at in range(0, 1000, 250):
        fruit = "apple" if at < 500 else "pear"
        client.insert(TEXT, [{"id": at + i, "text": " ".join([*rng.choice(words, int(rng.integers(2, 9))),
                                                               *[fruit] * int(rng.integers(0, 4))])}
                             for i in range(250)])
    client.flush(TEXT)


def _text_answers(client: MilvusClient) -> list[list[tuple[int, float]]]:
    hits = client.search(TEXT, ["apple pear", "fig apple apple"], anns_field="sparse", limit=8,
                         search_params={"metric_type": "BM25"})
    return [[(int(h["id"]), round(float(h["distance"]), 4)) for h in row] for row in hits]


def _exact(deleted: set[int]) -> dict[str, object]:
    """The answers standalone (and copy mode) give on a FLAT index: brute force over the base rows."""
    vectors = np.array([r["vector"] for r in base_rows()], dtype=np.float32)
    alive = np.array([i for i in range(BASE) if i not in deleted])
    search = []
    for q in np.array(QUERY_VECTORS, dtype=np.float32):
        d = ((vectors[alive] - q) ** 2).sum(axis=1)
        best = np.argsort(d, kind="stable")[:5]
        search.append([int(alive[b]) for b in best])
    return {"search": search, "query": [i for i in range(300) if i not in deleted], "count": len(alive)}


def _answers(client: MilvusClient) -> dict[str, object]:
    count = client.query(COLL, filter=f"id < {BASE}", output_fields=["count(*)"], consistency_level="Strong")
    return {"search": [[i for i, _ in row] for row in read_search(client, COLL)], "query": read_query(client, COLL),
            "count": int(count[0]["count(*)"])}


def _status(cluster: ClusterProcess) -> dict:
    return admin_call(cluster.data_dir, "GET", "/status")


def _sealed(cluster: ClusterProcess) -> dict[str, set[int]]:
    holdings = _status(cluster)["holdings"]
    return {node: set(c[f"default.{COLL}"]["segment_ids"]) for node, c in holdings.items() if f"default.{COLL}" in c}


def _spread(cluster: ClusterProcess, nodes: list[str], base: set[int]) -> dict[str, int] | None:
    """Rows served per node, once every named node holds some of the `base` segments and none of
    them is held twice (the old holder released it); segments sealed since by the load's inserts
    may be in transit."""
    shares = _status(cluster)["shares"].get(f"default.{COLL}")
    held = {n: ids & base for n, ids in _sealed(cluster).items()}
    if not shares or sorted(shares[0]) != nodes or sorted(held) != nodes or not all(held[n] for n in nodes):
        return None
    if sum(len(s) for s in held.values()) != len(base) or set().union(*held.values()) != base:
        return None
    return shares[0]


def _startup(cluster: ClusterProcess, node: str) -> dict[str, int]:
    """What a query node's start-up loaded (its `startup` call)."""
    procs = {p["name"]: p for p in _status(cluster)["processes"]}
    rpc = RpcClient(f"127.0.0.1:{procs[node]['ports']['grpc']}")
    try:
        return rpc.call("startup", timeout=60)
    finally:
        rpc.close()


def _under_load(cluster: ClusterProcess, step, expected: dict) -> object:  # noqa: ANN001
    first = 10**7 + 100_000 * int(time.time() % 1000)
    load = MixedLoad(cluster.uri, COLL, first, expected)
    load.start()
    try:
        wait_for(lambda: all(len(load.successes(k, 0.0)) >= 3 for k in KINDS), 240, "the load to start")
        began = time.monotonic()
        answer = step()
        print(f"\nmove took {time.monotonic() - began:.1f}s: {answer}")
        time.sleep(3)
    finally:
        load.stop()
    failures = load.failures()
    gaps = {k: round(load.longest_gap(k, began), 1) for k in KINDS}
    print(f"requests {len(load.requests)}, failed {len(failures)}; longest gap between successes (s): {gaps}")
    assert not failures, f"requests failed: {[(r.kind, r.error) for r in failures[:5]]}"
    assert not load.answer_changed, f"reads answered differently: {load.answer_changed[:3]}"
    check = MilvusClient(cluster.uri, timeout=120)
    try:
        assert_acked_once(load, visible(check, COLL, first, load.next_id))
    finally:
        check.close()
    return answer


def test_share_mode_divides_segments_moves_them_and_answers_as_standalone(cluster: ClusterProcess,
                                                                           client: MilvusClient) -> None:
    _create(client)
    assert _answers(client) == _exact(set())
    _create_text(client)
    text_alone = _text_answers(client)  # one query node: the whole collection's statistics
    base = wait_for(lambda: _sealed(cluster).get("query-1"), 120, "query-1 to hold the sealed segments")
    assert len(base) == BASE // 250, base
    wait_for(lambda: _spread(cluster, ["query-1"], base), 120, "query-1 to serve every sealed segment")
    expected = {"search": read_search(client, COLL), "query": read_query(client, COLL)}

    def join() -> dict[str, int]:
        admin_call(cluster.data_dir, "POST", "/scale?role=query&count=2")
        return wait_for(lambda: _spread(cluster, ["query-1", "query-2"], base), 300, "segments to spread over two nodes")

    rows = _under_load(cluster, join, expected)
    assert all(v > 0 for v in rows.values()), rows
    # the new node loaded none of the segments the document gave query-1, only its own share since
    startup = _startup(cluster, "query-2")
    assert startup["segments_left"] >= len(base), startup
    assert _answers(client) == _exact(set())
    _gathered_reads_answer_as_standalone(client)
    wait_for(lambda: all(v > 0 for v in ((_status(cluster)["shares"].get(f"default.{TEXT}") or [{}])[0].values()))
             and len((_status(cluster)["shares"].get(f"default.{TEXT}") or [{}])[0]) == 2, 120,
             "the full-text collection's segments to spread over two nodes")
    assert _text_answers(client) == text_alone

    # deletes after the last checkpoint: a segment loaded from S3 later must still lose these rows
    client.delete(COLL, ids=DELETED)
    gone = _exact(set(DELETED))
    assert _answers(client) == gone
    expected = {"search": read_search(client, COLL), "query": read_query(client, COLL)}

    def leave() -> dict[str, int]:
        admin_call(cluster.data_dir, "POST", "/scale?role=query&count=1")
        return wait_for(lambda: _spread(cluster, ["query-1"], base), 300, "query-1 to serve every segment again")

    _under_load(cluster, leave, expected)
    assert _answers(client) == gone


def _gathered_reads_answer_as_standalone(client: MilvusClient) -> None:
    """With the sealed segments spread over two nodes: range search, group_by, hybrid search,
    query order_by and a search iterator, each equal to the exact answer over the base rows (computed here)."""
    vectors = np.array([r["vector"] for r in base_rows()], dtype=np.float32)
    queries = np.array(QUERY_VECTORS, dtype=np.float32)
    dist = [((vectors - q) ** 2).sum(axis=1) for q in queries]  # Milvus's L2: squared
    rank = [np.argsort(d, kind="stable") for d in dist]
    base = f"id < {BASE}"
    for q in range(2):  # hits between the 6th and the 41st best: the 6th to the 15th
        d = dist[q][rank[q]]
        params = {"radius": float(d[40] + d[41]) / 2, "range_filter": float(d[4] + d[5]) / 2}
        hits = client.search(COLL, [QUERY_VECTORS[q]], limit=10, filter=base, search_params={"params": params})
        assert [h["id"] for h in hits[0]] == rank[q][5:15].tolist()
    hits = client.search(COLL, QUERY_VECTORS[:2], limit=4, offset=2, filter=base, group_by_field="id", group_size=2)
    assert [[h["id"] for h in row] for row in hits] == [rank[q][2:6].tolist() for q in range(2)]
    weights = (0.3, 0.9)
    subs = [AnnSearchRequest([QUERY_VECTORS[q]], "vector", {"metric_type": "L2"}, limit=20, expr=base) for q in (0, 1)]
    hits = client.hybrid_search(COLL, subs, WeightedRanker(*weights), limit=6)
    fused: dict[int, float] = {}
    for w, q in zip(weights, (0, 1), strict=True):
        for i in rank[q][:20].tolist():
            fused[i] = fused.get(i, 0.0) + w * (1 - 2 * math.atan(float(dist[q][i])) / math.pi)
    assert [h["id"] for h in hits[0]] == sorted(fused, key=lambda i: -fused[i])[:6]
    grouped = client.hybrid_search(COLL, subs, WeightedRanker(*weights), limit=6, group_by_field="id")
    assert [h["id"] for h in grouped[0]] == [h["id"] for h in hits[0]]  # one hit per key: the same
    rows = client.query(COLL, filter=base, output_fields=["id"], limit=7, offset=300,
                        order_by_fields=[{"field": "id", "order": "desc"}])
    assert [r["id"] for r in rows] == list(range(BASE - 301, BASE - 308, -1))
    it = client.search_iterator(COLL, [QUERY_VECTORS[0]], batch_size=300, filter=base)
    assert isinstance(it, SearchIteratorV2)  # not the client's fallback to range searches
    pages: list[int] = []
    while page := it.next():
        pages += [h["id"] for h in page]
    it.close()
    assert pages == rank[0].tolist()


def test_reads_share_mode_does_not_gather_answer_code_10(cluster: ClusterProcess, client: MilvusClient) -> None:
    if not client.has_collection(COLL):
        _create(client)
    boost = Function(name="b", input_field_names=[], function_type=FunctionType.RERANK,
                     params={"reranker": "boost", "filter": "id < 10", "weight": 2.0})
    with pytest.raises(MilvusException) as err:
        client.search(COLL, QUERY_VECTORS[:1], limit=3, ranker=boost)
    assert err.value.code == 10 and "segment_placement share" in err.value.message


def test_compaction_in_share_mode_keeps_the_answers(cluster: ClusterProcess, client: MilvusClient) -> None:
    if not client.has_collection(COLL):
        _create(client)
    client.delete(COLL, ids=DELETED)  # a manual compaction rewrites each base segment they fall in
    wait_for(lambda: _status(cluster)["shares"].get(f"default.{COLL}"), 120, "the segments to be shared out")
    before = _answers(client)
    old = set().union(*_sealed(cluster).values())
    job = client.compact(COLL)
    wait_for(lambda: client.get_compaction_state(job) == "Completed", 120, "the compaction to complete")
    assert _answers(client) == before

    def merged() -> set[int]:  # sources released everywhere: their merged segments are served
        return old - set().union(*_sealed(cluster).values())

    wait_for(merged, 120, "the merged segments to be served and their sources released")
    assert _answers(client) == before
