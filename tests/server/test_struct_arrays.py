"""Milvus 2.6's arrays of structs through real pymilvus: schema round trip, rows in and out
(with max_capacity and type errors), and EmbeddingList search on the struct's vector member
with the MAX_SIM metrics, checked against numpy: a row scores the sum, over the query's
vectors, of each one's best match among the row's elements (largest IP or cosine, smallest
squared L2).
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import numpy as np
import pytest
from pymilvus import AnnSearchRequest, DataType, MilvusClient, MilvusException, RRFRanker
from pymilvus.client.embedding_list import EmbeddingList

DIM = 8
CAP = 5


def make(client: MilvusClient, name: str, *, nullable: bool = False, member_index: tuple[str, str] | None = None) -> None:
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("tag", DataType.INT64)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    struct = client.create_struct_field_schema()
    struct.add_field("text", DataType.VARCHAR, max_length=32)
    struct.add_field("n", DataType.INT32)
    struct.add_field("w", DataType.DOUBLE)
    struct.add_field("emb", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field(
        "chunks", DataType.ARRAY, element_type=DataType.STRUCT, struct_schema=struct, max_capacity=CAP, nullable=nullable
    )
    client.create_collection(name, schema=schema)
    index = client.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    if member_index is not None:
        index.add_index("chunks[emb]", index_type=member_index[0], metric_type=member_index[1],
                        params={"M": 16, "efConstruction": 64})
    client.create_index(name, index)
    client.load_collection(name)


def rows(start: int, count: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(start, start + count):
        size = int(rng.integers(0, CAP + 1))
        chunks = [
            {"text": f"r{i}e{j}", "n": int(rng.integers(-5, 5)), "w": float(rng.random()),
             "emb": rng.standard_normal(DIM).astype(np.float32).tolist()}
            for j in range(size)
        ]
        out.append({"id": i, "tag": i % 3, "v": rng.random(4).tolist(), "chunks": chunks})
    return out


def max_sim(query: np.ndarray, elems: np.ndarray, metric: str) -> float:
    """The reference: sum over the query's vectors of the best match among the elements."""
    q, e = query.astype(np.float64), elems.astype(np.float64)
    if metric == "MAX_SIM_L2":
        d = ((q[:, None, :] - e[None, :, :]) ** 2).sum(-1)
        return float(d.min(1).sum())
    if metric == "MAX_SIM_COSINE":
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
        e = e / np.linalg.norm(e, axis=1, keepdims=True)
    return float((q @ e.T).max(1).sum())


def expected(data: list[dict[str, Any]], query: np.ndarray, metric: str, k: int, keep: Any = None) -> list[tuple[int, float]]:
    scored = [
        (r["id"], max_sim(query, np.asarray([c["emb"] for c in r["chunks"]]), metric))
        for r in data
        if r["chunks"] and (keep is None or keep(r))
    ]
    scored.sort(key=lambda t: t[1] if metric == "MAX_SIM_L2" else -t[1])
    return scored[:k]


def emb_list(vectors: np.ndarray) -> EmbeddingList:
    q = EmbeddingList()
    for vec in vectors:
        q.add(vec.astype(np.float32))
    return q


def code(err: pytest.ExceptionInfo[MilvusException]) -> int:
    return err.value.code


def test_schema_round_trip_and_schema_errors(client: MilvusClient, name: str) -> None:
    make(client, name)
    try:
        d = client.describe_collection(name)
        (field,) = [f for f in d["fields"] if f["name"] == "chunks"]
        assert field["type"] == DataType.ARRAY and field["element_type"] == DataType.STRUCT
        assert field["params"]["max_capacity"] == CAP
        members = {m["name"]: m for m in field["struct_fields"]}
        assert list(members) == ["text", "n", "w", "emb"]
        assert members["text"]["type"] == DataType.VARCHAR and members["text"]["params"]["max_length"] == 32
        assert members["n"]["type"] == DataType.INT32 and members["w"]["type"] == DataType.DOUBLE
        assert members["emb"]["type"] == DataType.FLOAT_VECTOR and members["emb"]["params"]["dim"] == DIM
        ids = [f["field_id"] for f in d["fields"]] + [m["field_id"] for m in members.values()]
        assert len(set(ids)) == len(ids)
    finally:
        client.drop_collection(name)

    def refused(member: DataType, capacity: int = CAP, **kw: Any) -> MilvusException:
        schema = client.create_schema()
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("v", DataType.FLOAT_VECTOR, dim=4)
        struct = client.create_struct_field_schema()
        struct.add_field("x", member, **kw)
        schema.add_field("s", DataType.ARRAY, element_type=DataType.STRUCT, struct_schema=struct, max_capacity=capacity)
        with pytest.raises(MilvusException) as err:
            client.create_collection(name, schema=schema)
        assert not client.has_collection(name)
        return err.value

    for member, kw in ((DataType.JSON, {}), (DataType.BINARY_VECTOR, {"dim": 16}), (DataType.VARCHAR, {})):
        err = refused(member, **kw)
        assert err.code == 1100, (member, err)
    err = refused(DataType.INT64, capacity=5000)
    assert err.code == 1100 and "max capacity" in err.message.replace("maximum capacity", "max capacity")


def test_rows_round_trip_through_insert_upsert_delete_and_flush(client: MilvusClient, name: str) -> None:
    make(client, name)
    try:
        data = rows(0, 30, seed=1)
        assert client.insert(name, data[:20])["insert_count"] == 20
        client.flush(name)  # a sealed segment and a growing one
        client.insert(name, data[20:])

        def stored() -> dict[int, list[dict[str, Any]]]:
            got = client.query(name, filter="id >= 0", output_fields=["chunks"], consistency_level="Strong", limit=100)
            return {r["id"]: r["chunks"] for r in got}

        def same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
            return len(a) == len(b) and all(
                x["text"] == y["text"] and x["n"] == y["n"] and x["w"] == y["w"]
                and np.array_equal(np.float32(x["emb"]), np.float32(y["emb"]))
                for x, y in zip(a, b, strict=True)
            )

        got = stored()
        assert sorted(got) == list(range(30))
        # a member path as an output field: the struct array with those members only
        part = client.query(name, filter="id == 7", output_fields=["chunks[text]", "chunks[n]"], consistency_level="Strong")
        assert part[0]["chunks"] == [{"text": c["text"], "n": c["n"]} for c in data[7]["chunks"]]
        assert all(same(got[r["id"]], r["chunks"]) for r in data)
        assert any(not r["chunks"] for r in data)  # empty arrays come back empty

        new = [{"text": "new", "n": 7, "w": 0.5, "emb": [1.0] * DIM}]
        client.upsert(name, [{"id": 3, "tag": 0, "v": [0.0] * 4, "chunks": new}])
        client.delete(name, filter="id in [4, 25]")
        got = stored()
        assert same(got[3], new) and 4 not in got and 25 not in got and len(got) == 28

        bad = [
            ([{"text": "a", "n": 1, "w": 0.1, "emb": [0.0] * DIM}] * (CAP + 1), "capacity"),
            ([{"text": "a", "n": 1, "w": 0.1, "emb": [0.0] * (DIM - 1)}], "dim"),
            ([{"text": "x" * 40, "n": 1, "w": 0.1, "emb": [0.0] * DIM}], "length"),
        ]
        for chunks, what in bad:
            with pytest.raises(MilvusException) as err:
                client.insert(name, [{"id": 99, "tag": 0, "v": [0.0] * 4, "chunks": chunks}])
            assert code(err) == 1100, (what, err.value)
        with pytest.raises(MilvusException) as err:  # not nullable: a struct array must be given
            client.insert(name, [{"id": 99, "tag": 0, "v": [0.0] * 4}])
        assert 99 not in stored()
    finally:
        client.drop_collection(name)


def test_nullable_struct_array(client: MilvusClient, name: str) -> None:
    make(client, name, nullable=True)
    try:
        one = [{"text": "a", "n": 1, "w": 0.25, "emb": [0.5] * DIM}]
        client.insert(name, [
            {"id": 1, "tag": 0, "v": [0.0] * 4, "chunks": None},
            {"id": 2, "tag": 0, "v": [0.0] * 4, "chunks": one},
            {"id": 3, "tag": 0, "v": [0.0] * 4},
        ])
        got = client.query(name, filter="id > 0", output_fields=["chunks"], consistency_level="Strong")
        assert {r["id"]: r["chunks"] for r in got} == {1: None, 2: one, 3: None}
    finally:
        client.drop_collection(name)


@pytest.fixture(scope="module")
def searched(target_server: Any) -> Any:
    """One collection for the search tests: 300 rows over a sealed and a growing segment,
    no index on the member (so every metric may be asked for)."""
    client = MilvusClient(uri=os.environ.get("SHOAL_SERVER_URI") or target_server.uri)
    name = f"struct_search_{uuid.uuid4().hex[:8]}"
    make(client, name)
    data = rows(0, 300, seed=7)
    client.insert(name, data[:200])
    client.flush(name)
    client.insert(name, data[200:])
    client.query(name, filter="id >= 0", output_fields=["count(*)"], consistency_level="Strong")
    yield client, name, data
    client.drop_collection(name)
    client.close()


@pytest.mark.parametrize("metric", ["MAX_SIM_IP", "MAX_SIM_COSINE", "MAX_SIM_L2"])
def test_embedding_list_search_matches_numpy(searched: Any, metric: str) -> None:
    client, name, data = searched
    rng = np.random.default_rng(11)
    queries = [rng.standard_normal((m, DIM)).astype(np.float32) for m in (1, 3, 4)]
    got = client.search(
        name, data=[emb_list(q) for q in queries], anns_field="chunks[emb]", limit=10,
        search_params={"metric_type": metric}, output_fields=["tag"], consistency_level="Strong",
    )
    for q, hits in zip(queries, got, strict=True):
        want = expected(data, q, metric, 10)
        assert [h["id"] for h in hits] == [i for i, _ in want]
        np.testing.assert_allclose([h["distance"] for h in hits], [s for _, s in want], rtol=1e-4, atol=1e-4)
    # a filter on the collection's own fields, and offset paging
    q = queries[1]
    hits = client.search(
        name, data=[emb_list(q)], anns_field="chunks[emb]", limit=5, offset=3, filter="tag == 1",
        search_params={"metric_type": metric}, consistency_level="Strong",
    )[0]
    want = expected(data, q, metric, 8, keep=lambda r: r["tag"] == 1)[3:]
    assert [h["id"] for h in hits] == [i for i, _ in want]


def test_member_index_sets_the_metric_and_unsupported_parts_answer_code_10(client: MilvusClient, name: str) -> None:
    make(client, name, member_index=("HNSW", "MAX_SIM_COSINE"))
    try:
        data = rows(0, 40, seed=3)
        client.insert(name, data)
        idx = client.describe_index(name, "chunks[emb]")
        assert idx["index_type"] == "HNSW" and idx["metric_type"] == "MAX_SIM_COSINE" and idx["field_name"] == "chunks[emb]"
        q = np.random.default_rng(5).standard_normal((2, DIM)).astype(np.float32)
        hits = client.search(name, data=[emb_list(q)], anns_field="chunks[emb]", limit=5, consistency_level="Strong")[0]
        assert [h["id"] for h in hits] == [i for i, _ in expected(data, q, "MAX_SIM_COSINE", 5)]
        with pytest.raises(MilvusException) as err:
            client.search(name, data=[emb_list(q)], anns_field="chunks[emb]", limit=5,
                          search_params={"metric_type": "MAX_SIM_L2"})
        assert code(err) == 1102  # the index's metric, as for any vector field

        # a second index on the member, and a metric no embedding list or element takes, are refused
        for index_name, metric in (("other", "L2"), ("chunks[emb]", "HAMMING")):
            with pytest.raises(MilvusException) as err:
                bad = client.prepare_index_params()
                bad.add_index("chunks[emb]", index_name=index_name, index_type="HNSW", metric_type=metric)
                client.create_index(name, bad)
            assert code(err) == 1100, (metric, err.value)

        with pytest.raises(MilvusException) as err:  # a plain vector needs an L2/IP/COSINE index on the member
            client.search(name, data=[q[0].tolist()], anns_field="chunks[emb]", limit=3)
        assert code(err) == 1100 and "MAX_SIM_COSINE" in err.value.message
        unsupported = {
            "group_by": lambda: client.search(name, data=[emb_list(q)], anns_field="chunks[emb]", limit=3, group_by_field="tag"),
            "range search": lambda: client.search(name, data=[emb_list(q)], anns_field="chunks[emb]", limit=3,
                                                  search_params={"params": {"radius": 0.1}}),
            "hybrid": lambda: client.hybrid_search(
                name, [AnnSearchRequest([emb_list(q)], "chunks[emb]", {}, 3), AnnSearchRequest([[0.0] * 4], "v", {}, 3)],
                RRFRanker(), limit=3,
            ),
        }
        for what, call in unsupported.items():
            with pytest.raises(MilvusException) as err:
                call()
            assert code(err) == 10 and "chunks[emb]" in err.value.message, (what, err.value)
            assert what.split()[0] in err.value.message, (what, err.value)
    finally:
        client.drop_collection(name)


def test_struct_arrays_survive_a_restart(shoal_process: Any) -> None:
    client = MilvusClient(uri=shoal_process.uri)
    make(client, "survivor")
    data = rows(0, 20, seed=9)
    client_name = "survivor"
    client.insert(client_name, data[:10])
    client.flush(client_name)
    client.insert(client_name, data[10:])  # left in the WAL
    client.close()
    shoal_process.kill()
    shoal_process.restart()
    client = MilvusClient(uri=shoal_process.uri)
    client.load_collection(client_name)
    got = client.query(client_name, filter="id >= 0", output_fields=["chunks"], consistency_level="Strong", limit=50)
    assert {r["id"]: [c["text"] for c in r["chunks"]] for r in got} == {r["id"]: [c["text"] for c in r["chunks"]] for r in data}
    q = np.random.default_rng(2).standard_normal((2, DIM)).astype(np.float32)
    hits = client.search(client_name, data=[emb_list(q)], anns_field="chunks[emb]", limit=5,
                         search_params={"metric_type": "MAX_SIM_IP"}, consistency_level="Strong")[0]
    assert [h["id"] for h in hits] == [i for i, _ in expected(data, q, "MAX_SIM_IP", 5)]
    client.close()


ELEMENT_FILTERS = [
    ('element_filter(chunks, $[n] > 2)', lambda c: any(e["n"] > 2 for e in c)),
    ('MATCH_ANY(chunks, $[text] like "r1%" && $[w] < 0.5)', lambda c: any(e["text"].startswith("r1") and e["w"] < 0.5 for e in c)),
    ('MATCH_ALL(chunks, $[n] >= 0)', lambda c: all(e["n"] >= 0 for e in c)),
    ('MATCH_LEAST(chunks, $[w] > 0.3, threshold=2)', lambda c: sum(e["w"] > 0.3 for e in c) >= 2),
    ('MATCH_MOST(chunks, $[n] < 0, 1)', lambda c: sum(e["n"] < 0 for e in c) <= 1),
    ('MATCH_EXACT(chunks, $[n] in [0, 1, 2], 2)', lambda c: sum(e["n"] in (0, 1, 2) for e in c) == 2),
    # Milvus 3.0: a scalar member read as an ARRAY of every element's value
    ('array_contains(chunks[n], 3)', lambda c: any(e["n"] == 3 for e in c)),
    ('array_contains_all(chunks[n], [1, 2])', lambda c: {1, 2} <= {e["n"] for e in c}),
    ('array_length(chunks[text]) == 2', lambda c: len(c) == 2),
]


@pytest.mark.parametrize(("expr", "ref"), ELEMENT_FILTERS, ids=[e for e, _ in ELEMENT_FILTERS])
def test_element_filters_match_python(searched: Any, expr: str, ref: Any) -> None:
    client, name, data = searched
    got = client.query(name, filter=f"tag != 2 && {expr}", output_fields=["id"], consistency_level="Strong", limit=1000)
    want = [r["id"] for r in data if r["tag"] != 2 and ref(r["chunks"])]
    assert sorted(r["id"] for r in got) == want and want


def test_element_filter_in_an_embedding_list_search_and_its_errors(searched: Any) -> None:
    client, name, data = searched
    q = np.random.default_rng(4).standard_normal((2, DIM)).astype(np.float32)
    hits = client.search(
        name, data=[emb_list(q)], anns_field="chunks[emb]", limit=5, filter="element_filter(chunks, $[n] == 0)",
        search_params={"metric_type": "MAX_SIM_IP"}, consistency_level="Strong",
    )[0]
    want = expected(data, q, "MAX_SIM_IP", 5, keep=lambda r: any(e["n"] == 0 for e in r["chunks"]))
    assert [h["id"] for h in hits] == [i for i, _ in want]
    for bad in ("element_filter(tag, $[n] > 1)", "element_filter(chunks, tag > 1)", "MATCH_LEAST(chunks, $[n] > 1)",
                "element_filter(chunks, $[emb] > 1)"):
        with pytest.raises(MilvusException) as err:
            client.query(name, filter=bad, output_fields=["id"])
        assert code(err) == 1100, (bad, err.value)


def element_hits(
    data: list[dict[str, Any]], query: np.ndarray, metric: str, keep_row: Any = None, keep_elem: Any = None
) -> list[tuple[int, int, float]]:
    """The reference of element-level search: every element scored alone, (id, offset, score) best first."""
    q = query.astype(np.float64)
    out = []
    for r in data:
        for j, c in enumerate(r["chunks"] if keep_row is None or keep_row(r) else []):
            if keep_elem is not None and not keep_elem(c):
                continue
            e = np.asarray(c["emb"], dtype=np.float64)
            if metric == "L2":
                s = float(((q - e) ** 2).sum())
            elif metric == "COSINE":
                s = float(q @ e / (np.linalg.norm(q) * np.linalg.norm(e)))
            else:
                s = float(q @ e)
            out.append((r["id"], j, s))
    out.sort(key=lambda t: (t[2] if metric == "L2" else -t[2], t[0], t[1]))
    return out


def same_hits(hits: Any, want: list[tuple[int, int, float]]) -> None:
    assert [(h["id"], h["offset"]) for h in hits] == [(i, j) for i, j, _ in want]
    np.testing.assert_allclose([h["distance"] for h in hits], [s for _, _, s in want], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
def test_element_level_search_matches_numpy(searched: Any, metric: str) -> None:
    client, name, data = searched
    queries = np.random.default_rng(21).standard_normal((2, DIM)).astype(np.float32)
    got = client.search(name, data=queries.tolist(), anns_field="chunks[emb]", limit=15,
                        search_params={"metric_type": metric}, output_fields=["tag"], consistency_level="Strong")
    for q, hits in zip(queries, got, strict=True):
        want = element_hits(data, q, metric)[:15]
        same_hits(hits, want)
        assert all(h["entity"]["tag"] == data[h["id"]]["tag"] for h in hits)
    # rows by a filter on the collection's fields, elements by element_filter, and offset paging
    hits = client.search(name, data=[queries[0].tolist()], anns_field="chunks[emb]", limit=6, offset=2,
                         filter="tag == 1 && element_filter(chunks, $[n] > 0 && $[w] < 0.8)",
                         search_params={"metric_type": metric}, consistency_level="Strong")[0]
    want = element_hits(data, queries[0], metric, lambda r: r["tag"] == 1, lambda c: c["n"] > 0 and c["w"] < 0.8)
    same_hits(hits, want[2:8])


def test_element_level_range_and_grouped_search(searched: Any) -> None:
    client, name, data = searched
    q = np.random.default_rng(22).standard_normal(DIM).astype(np.float32)
    ranked = element_hits(data, q, "COSINE")
    hits = client.search(name, data=[q.tolist()], anns_field="chunks[emb]", limit=40,
                         search_params={"metric_type": "COSINE", "params": {"radius": 0.3, "range_filter": 0.8}},
                         consistency_level="Strong")[0]
    same_hits(hits, [h for h in ranked if 0.3 < h[2] <= 0.8][:40])
    hits = client.search(name, data=[q.tolist()], anns_field="chunks[emb]", limit=40,
                         search_params={"metric_type": "L2", "params": {"radius": 6.0}}, consistency_level="Strong")[0]
    same_hits(hits, [h for h in element_hits(data, q, "L2") if h[2] < 6.0][:40])

    # grouped by the primary key: the best entities, each with up to group_size of its elements
    hits = client.search(name, data=[q.tolist()], anns_field="chunks[emb]", limit=4, group_by_field="id", group_size=2,
                         search_params={"metric_type": "COSINE"}, consistency_level="Strong")[0]
    groups: dict[int, list[tuple[int, int, float]]] = {}
    for h in ranked:
        if len(groups.setdefault(h[0], [])) < 2:
            groups[h[0]].append(h)
    same_hits(hits, [h for g in list(groups.values())[:4] for h in g])


def test_element_level_sub_search_in_a_hybrid_search(searched: Any) -> None:
    client, name, data = searched
    rng = np.random.default_rng(23)
    q, v = rng.standard_normal(DIM).astype(np.float32), rng.random(4).astype(np.float32)
    got = client.hybrid_search(
        name, [AnnSearchRequest([q.tolist()], "chunks[emb]", {"metric_type": "IP"}, 6),
               AnnSearchRequest([v.tolist()], "v", {"metric_type": "L2"}, 6)],
        RRFRanker(60), limit=20, consistency_level="Strong",
    )[0]
    # Milvus collapses the element hits to their entities (best element first), then fuses
    elements = list(dict.fromkeys(i for i, _, _ in element_hits(data, q, "IP")[:6]))
    normal = sorted(data, key=lambda r: float(((np.asarray(r["v"], np.float64) - v) ** 2).sum()))[:6]
    fused: dict[int, float] = {}
    for ranked in (elements, [r["id"] for r in normal]):
        for rank, i in enumerate(ranked):
            fused[i] = fused.get(i, 0.0) + 1 / (60 + rank + 1)
    assert {h["id"]: round(h["distance"], 5) for h in got} == {i: round(s, 5) for i, s in fused.items()}
    assert all("offset" not in h for h in got)
    # grouped by the key: every sub search element-level on the same struct; each entity once
    q2 = rng.standard_normal(DIM).astype(np.float32)
    grouped = client.hybrid_search(
        name, [AnnSearchRequest([q.tolist()], "chunks[emb]", {"metric_type": "IP"}, 6),
               AnnSearchRequest([q2.tolist()], "chunks[emb]", {"metric_type": "IP"}, 6)],
        RRFRanker(60), limit=20, group_by_field="id", consistency_level="Strong",
    )[0]
    fused = {}
    for query in (q, q2):
        for rank, i in enumerate(dict.fromkeys(i for i, _, _ in element_hits(data, query, "IP")[:6])):
            fused[i] = fused.get(i, 0.0) + 1 / (60 + rank + 1)
    assert {h["id"]: round(h["distance"], 5) for h in grouped} == {i: round(s, 5) for i, s in fused.items()}
    with pytest.raises(MilvusException) as err:  # mixed with a plain vector field: not groupable
        client.hybrid_search(name, [AnnSearchRequest([q.tolist()], "chunks[emb]", {"metric_type": "IP"}, 6),
                                    AnnSearchRequest([v.tolist()], "v", {"metric_type": "L2"}, 6)],
                             RRFRanker(60), limit=20, group_by_field="id")
    assert code(err) == 1100
    with pytest.raises(MilvusException) as err:  # Milvus 3.0's other collapse strategies
        client.hybrid_search(
            name, [AnnSearchRequest([q.tolist()], "chunks[emb]",
                                    {"metric_type": "IP", "params": {"element_scope": {"collapse": {"strategy": "topk_sum", "topk": 2}}}}, 6),
                   AnnSearchRequest([v.tolist()], "v", {"metric_type": "L2"}, 6)],
            RRFRanker(60), limit=20,
        )
    assert code(err) == 10 and "element_scope" in err.value.message


def test_element_level_search_errors(searched: Any) -> None:
    client, name, _ = searched
    q = [[0.1] * DIM]
    cases = {
        "group by another field": {"group_by_field": "tag"},
        "group and range": {"group_by_field": "id", "search_params": {"params": {"radius": 0.5}}},
        "element_filter under OR": {"filter": "tag == 1 || element_filter(chunks, $[n] > 0)"},
        "MAX_SIM metric": {"search_params": {"metric_type": "MAX_SIM_IP"}},
        "wrong dim": {"data": [[0.1] * (DIM + 1)]},
    }
    for what, kw in cases.items():
        with pytest.raises(MilvusException) as err:
            client.search(name, **{"data": q, "anns_field": "chunks[emb]", "limit": 3, **kw})
        assert code(err) == 1100, (what, err.value)
