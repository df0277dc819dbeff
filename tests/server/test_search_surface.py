"""The search surface of Milvus through real pymilvus: range search, group-by, search by
primary key, search/query iterators, hybrid search over several vector fields,
ignore_growing and very selective filters — each checked against numpy brute force.

Collections mix an indexed sealed segment with growing rows, so both the index path and
the exact path answer every search.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterator

import numpy as np
import pytest
from conftest import Target
from pymilvus import AnnSearchRequest, DataType, MilvusClient, MilvusException, RRFRanker, WeightedRanker
from pymilvus.client.iterator.search_iterator import SearchIteratorV2

DIM = 16


def dataset(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(25, DIM)) * 3
    return (centres[rng.integers(0, 25, n)] + rng.normal(size=(n, DIM))).astype(np.float32)


def scores_of(data: np.ndarray, q: np.ndarray, metric: str) -> np.ndarray:
    if metric == "L2":
        return ((data - q) ** 2).sum(1)
    if metric == "COSINE":
        return (data / np.linalg.norm(data, axis=1, keepdims=True)) @ (q / np.linalg.norm(q))
    return data @ q


def best_first(scores: np.ndarray, metric: str) -> np.ndarray:
    return np.argsort(scores if metric == "L2" else -scores, kind="stable")


def wait_indexed(client: MilvusClient, name: str, field: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        desc = client.describe_index(name, field)
        if desc["state"] == "Finished" and desc["pending_index_rows"] == 0 and desc["indexed_rows"] > 0:
            return
        assert time.monotonic() < deadline, desc
        time.sleep(0.1)


def make_collection(
    client: MilvusClient, name: str, sealed: dict[str, np.ndarray], growing: dict[str, np.ndarray],
    indexes: dict[str, tuple[str, str, dict]], scalars: dict[str, np.ndarray] | None = None,
) -> None:
    """Rows 0..len(sealed)-1 flushed and indexed, the rest left growing."""
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    for f in sealed:
        schema.add_field(f, DataType.FLOAT_VECTOR, dim=DIM)
    for f in scalars or {}:
        schema.add_field(f, DataType.INT64)
    index = client.prepare_index_params()
    for f, (kind, metric, params) in indexes.items():
        index.add_index(f, index_type=kind, metric_type=metric, params=params)
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
    n_sealed = len(next(iter(sealed.values())))
    n_all = n_sealed + len(next(iter(growing.values()))) if growing else n_sealed

    def rows(lo: int, hi: int) -> list[dict]:
        out = []
        for i in range(lo, hi):
            row: dict = {"id": i}
            for f in sealed:
                row[f] = sealed[f][i] if i < n_sealed else growing[f][i - n_sealed]
            for f, col in (scalars or {}).items():
                row[f] = int(col[i])
            out.append(row)
        return out

    for lo in range(0, n_sealed, 2000):
        client.insert(name, rows(lo, min(lo + 2000, n_sealed)))
    client.flush(name)
    for f in indexes:
        wait_indexed(client, name, f)
    if n_all > n_sealed:
        client.insert(name, rows(n_sealed, n_all))


# ---------------------------------------------------------------- range search


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
def test_range_search_milvus_window(client: MilvusClient, name: str, metric: str) -> None:
    data = dataset(1800, seed=1)
    make_collection(client, name, {"v": data[:1500]}, {"v": data[1500:]}, {"v": ("HNSW", metric, {"M": 16, "efConstruction": 100})})
    q = data[42] + 0.05
    scores = scores_of(data, q, metric)
    ranked = np.sort(scores) if metric == "L2" else np.sort(scores)[::-1]
    # L2: range_filter <= d < radius; IP/COSINE: radius < s <= range_filter
    inner, outer = float(ranked[10] + ranked[11]) / 2, float(ranked[70] + ranked[71]) / 2  # no float ties
    radius, range_filter = outer, inner
    if metric == "L2":
        truth = set(np.flatnonzero((scores >= inner) & (scores < outer)).tolist())
    else:
        truth = set(np.flatnonzero((scores > outer) & (scores <= inner)).tolist())
    hits = client.search(
        name, data=[q.tolist()], limit=100,
        search_params={"metric_type": metric, "params": {"radius": radius, "range_filter": range_filter}},
    )[0]
    got = {h["id"] for h in hits}
    assert got <= truth, got - truth
    assert len(got) >= 0.9 * len(truth) and any(i >= 1500 for i in got)  # growing rows too
    dist = [h["distance"] for h in hits]
    assert dist == sorted(dist, reverse=metric != "L2")
    assert np.allclose(dist, scores[[h["id"] for h in hits]], rtol=1e-4, atol=1e-4)
    # a radius alone keeps everything better than it, best first, up to limit
    top = client.search(name, data=[q.tolist()], limit=5, search_params={"metric_type": metric, "params": {"radius": radius}})[0]
    assert [h["id"] for h in top] == best_first(scores, metric)[:5].tolist()
    # range_filter on the wrong side of radius is a parameter error
    with pytest.raises(MilvusException) as err:
        client.search(name, data=[q.tolist()], limit=5,
                      search_params={"metric_type": metric, "params": {"radius": inner, "range_filter": outer}})
    assert err.value.code == 1100


# ---------------------------------------------------------------- group by


def test_group_by_group_size_and_strict(client: MilvusClient, name: str) -> None:
    data = dataset(1300, seed=2)
    q = data[0]
    near = best_first(scores_of(data, q, "L2"), "L2")
    grp = np.arange(1300) % 10
    grp[near[:6]] = 100 + np.arange(6)  # the six nearest rows are groups of one
    make_collection(client, name, {"v": data[:1100]}, {"v": data[1100:]}, {"v": ("IVF_FLAT", "L2", {"nlist": 8})}, {"grp": grp})
    sp = {"metric_type": "L2", "params": {"nprobe": 8}}
    hits = client.search(name, data=[q.tolist()], limit=8, group_by_field="grp", group_size=3, output_fields=["grp"], search_params=sp)[0]
    by_group: dict[int, list[int]] = {}
    for h in hits:
        by_group.setdefault(h["entity"]["grp"], []).append(h["id"])
    assert len(by_group) == 8
    expected_groups: list[int] = []
    for i in near:
        if grp[i] not in expected_groups:
            expected_groups.append(int(grp[i]))
    assert set(by_group) == set(expected_groups[:8])
    for g, ids in by_group.items():
        assert ids == [int(i) for i in near if grp[i] == g][:3]  # each group's best rows
    strict = client.search(name, data=[q.tolist()], limit=3, group_by_field="grp", group_size=3,
                           strict_group_size=True, output_fields=["grp"], search_params=sp)[0]
    groups = [h["entity"]["grp"] for h in strict]
    assert len(strict) == 9 and all(groups.count(g) == 3 for g in groups) and max(groups) < 100
    one = client.search(name, data=[q.tolist()], limit=4, group_by_field="grp", output_fields=["grp"], search_params=sp)[0]
    assert [h["id"] for h in one] == near[:4].tolist()


def test_group_by_json_path(client: MilvusClient, name: str) -> None:
    """Group by a path inside a JSON field (`meta['brand']`, or the field with pymilvus's
    `json_path=` and `json_type=`) and by a dynamic key, against the same grouping in numpy."""
    n = 1300
    data = dataset(n, seed=21)
    brand = [f"b{i % 23}" for i in range(n)]
    size = [i % 11 for i in range(n)]
    schema = client.create_schema(enable_dynamic_field=True)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("meta", DataType.JSON)
    index = client.prepare_index_params()
    index.add_index("v", index_type="HNSW", metric_type="L2", params={"M": 16, "efConstruction": 100})
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")

    def row(i: int) -> dict:
        meta: dict = {"brand": brand[i], "size": size[i]}
        if i % 50 == 0:
            meta = {"other": 1}  # no brand: the null group
        elif i % 37 == 0:
            meta["size"] = str(size[i])  # a string where json_type wants Int64: the null group
        return {"id": i, "v": data[i].tolist(), "meta": meta, "color": f"c{i % 7}"}

    client.insert(name, [row(i) for i in range(1100)])
    client.flush(name)
    wait_indexed(client, name, "v")
    client.insert(name, [row(i) for i in range(1100, n)])
    client.load_collection(name)
    q = data[4] + 0.05
    order = best_first(scores_of(data, q, "L2"), "L2")
    sp = {"metric_type": "L2", "params": {"ef": 1300}}

    def expected(key: list, groups: int, size: int) -> list[int]:
        taken: dict = {}
        for i in order.tolist():
            k = key[i]
            if k not in taken and len(taken) == groups:
                continue
            members = taken.setdefault(k, [])
            if len(members) < size:
                members.append(i)
        return [i for members in taken.values() for i in members]

    brand_key = [None if i % 50 == 0 else brand[i] for i in range(n)]
    size_key = [None if i % 50 == 0 or i % 37 == 0 else size[i] for i in range(n)]
    color_key = [f"c{i % 7}" for i in range(n)]
    cases = [
        ({"group_by_field": "meta['brand']"}, brand_key),
        ({"group_by_field": "meta", "json_path": "meta['size']", "json_type": DataType.INT64}, size_key),
        ({"group_by_field": "color"}, color_key),
    ]
    for kwargs, key in cases:
        hits = client.search(name, data=[q.tolist()], limit=5, group_size=2, search_params=sp, **kwargs)[0]
        assert [h["id"] for h in hits] == expected(key, 5, 2), kwargs
    with pytest.raises(MilvusException) as err:
        client.search(name, data=[q.tolist()], limit=5, group_by_field="id", json_type=DataType.INT64, search_params=sp)
    assert err.value.code == 1100


# ---------------------------------------------------------------- search by primary key


def test_search_by_primary_key(client: MilvusClient, name: str) -> None:
    data = dataset(1300, seed=3)
    make_collection(client, name, {"v": data[:1100]}, {"v": data[1100:]}, {"v": ("HNSW", "L2", {"M": 16, "efConstruction": 100})})
    keys = [17, 1200, 5]  # sealed, growing, sealed
    by_id = client.search(name, ids=keys, limit=5, search_params={"metric_type": "L2"})
    by_vector = client.search(name, data=[data[k].tolist() for k in keys], limit=5, search_params={"metric_type": "L2"})
    assert len(by_id) == 3
    for k, a, b in zip(keys, by_id, by_vector, strict=True):
        assert [h["id"] for h in a] == [h["id"] for h in b]
        assert a[0]["id"] == k and a[0]["distance"] == pytest.approx(0.0, abs=1e-4)
    filtered = client.search(name, ids=[17], limit=3, filter="id > 1000", search_params={"metric_type": "L2"})[0]
    assert all(h["id"] > 1000 for h in filtered) and len(filtered) == 3
    with pytest.raises(MilvusException) as err:
        client.search(name, ids=[99999], limit=3)
    assert err.value.code == 1100


# ---------------------------------------------------------------- iterators


@pytest.fixture()
def no_fallback(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fails the test when pymilvus logs or warns anything (e.g. the iterator V1 fallback)."""
    with caplog.at_level(logging.WARNING), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    assert [r for r in caplog.records if r.name.startswith("pymilvus")] == []
    assert [w for w in caught if "pymilvus" in str(w.filename)] == []


@pytest.mark.parametrize("metric", ["L2", "COSINE"])
def test_search_iterator_v2_every_row_once_in_order(
    client: MilvusClient, name: str, metric: str, no_fallback: None
) -> None:
    data = dataset(1600, seed=4)
    data[1400:1450] = data[:50]  # exact duplicates: ties across batch boundaries
    tag = np.arange(1600) % 4
    make_collection(client, name, {"v": data[:1200]}, {"v": data[1200:]}, {"v": ("HNSW", metric, {"M": 16, "efConstruction": 100})}, {"tag": tag})
    q = data[3]
    scores = scores_of(data, q, metric)
    for flt, expected in (("", np.arange(1600)), ("tag == 1", np.flatnonzero(tag == 1))):
        it = client.search_iterator(name, data=[q.tolist()], batch_size=97, filter=flt or None, search_params={"metric_type": metric})
        assert isinstance(it, SearchIteratorV2)
        seen: list[int] = []
        dist: list[float] = []
        while page := it.next():
            seen.extend(h["id"] for h in page)
            dist.extend(h["distance"] for h in page)
        it.close()
        assert len(seen) == len(set(seen)), "a row came back twice"
        assert sorted(seen) == expected.tolist()
        assert dist == sorted(dist, reverse=metric != "L2")
        assert np.allclose(dist, scores[seen], rtol=1e-4, atol=1e-4)


def test_search_iterator_on_ivf_with_limit(client: MilvusClient, name: str, no_fallback: None) -> None:
    data = dataset(1300, seed=5)
    make_collection(client, name, {"v": data[:1100]}, {"v": data[1100:]}, {"v": ("IVF_FLAT", "L2", {"nlist": 16})})
    it = client.search_iterator(name, data=[data[0].tolist()], batch_size=50, limit=120, search_params={"metric_type": "L2", "params": {"nprobe": 16}})
    seen: list[int] = []
    while page := it.next():
        seen.extend(h["id"] for h in page)
    assert seen == best_first(scores_of(data, data[0], "L2"), "L2")[:120].tolist()
    # at the default nprobe too, iterating goes on through every IVF list to the last row
    it = client.search_iterator(name, data=[data[0].tolist()], batch_size=300, search_params={"metric_type": "L2"})
    seen = []
    while page := it.next():
        seen.extend(h["id"] for h in page)
    assert sorted(seen) == list(range(1300))


def test_search_iterator_with_rounded_scores(client: MilvusClient, name: str, no_fallback: None) -> None:
    data = dataset(1300, seed=15)
    make_collection(client, name, {"v": data[:1100]}, {"v": data[1100:]}, {"v": ("FLAT", "L2", {})})
    it = client.search_iterator(name, data=[data[0].tolist()], batch_size=64, round_decimal=0, search_params={"metric_type": "L2"})
    seen: list[int] = []
    dist: list[float] = []
    while page := it.next():
        seen.extend(h["id"] for h in page)
        dist.extend(h["distance"] for h in page)
    assert sorted(seen) == list(range(1300)) and dist == sorted(dist)
    assert all(d == round(d) for d in dist)


def test_search_iterator_bound_echoed_as_a_float32_decimal(client: MilvusClient, name: str) -> None:
    """The Java SDK hands the last bound back as the float32's shortest decimal ("0.7968475"),
    not the float64 pymilvus decodes: every row still comes back once, in order."""
    data = dataset(600, seed=21)
    make_collection(client, name, {"v": data[:500]}, {"v": data[500:]}, {"v": ("FLAT", "L2", {})})
    opts: dict = {"iterator": True, "search_iter_v2": True, "search_iter_batch_size": 50}
    seen: list[int] = []
    dist: list[float] = []
    for _ in range(30):  # 12 pages and an empty one; a bound that re-admits its last row never ends
        res = client.search(name, data=[data[7].tolist()], limit=50, search_params={"metric_type": "L2"}, **opts)
        if not res[0]:
            break
        seen.extend(h["id"] for h in res[0])
        dist.extend(h["distance"] for h in res[0])
        info = res.get_search_iterator_v2_results_info()
        opts.update(search_iter_id=info.token, search_iter_last_bound=str(np.float32(info.last_bound)))
    assert len(seen) == len(set(seen)), "a row came back twice"
    assert sorted(seen) == list(range(600)) and dist == sorted(dist)


def test_query_iterator_every_row_once_by_key(client: MilvusClient, name: str, no_fallback: None) -> None:
    data = dataset(1500, seed=6)
    tag = np.arange(1500) % 3
    make_collection(client, name, {"v": data[:1100]}, {"v": data[1100:]}, {"v": ("FLAT", "L2", {})}, {"tag": tag})
    client.delete(name, filter="id in [4, 1101]")
    it = client.query_iterator(name, batch_size=128, filter="tag != 2", output_fields=["tag"])
    rows: list[dict] = []
    while page := it.next():
        rows.extend(page)
    it.close()
    keys = [r["id"] for r in rows]
    assert keys == sorted(set(np.flatnonzero(tag != 2).tolist()) - {4, 1101})
    assert all(r["tag"] != 2 for r in rows)


# ---------------------------------------------------------------- hybrid search, multi-vector


def test_hybrid_search_rrf_and_weighted(client: MilvusClient, name: str) -> None:
    a, b = dataset(1300, seed=7), dataset(1300, seed=8)
    make_collection(
        client, name, {"a": a[:1100], "b": b[:1100]}, {"a": a[1100:], "b": b[1100:]},
        {"a": ("FLAT", "L2", {}), "b": ("FLAT", "IP", {})},
    )
    qa, qb = a[10] + 0.1, b[20] + 0.1
    sa, sb = scores_of(a, qa, "L2"), scores_of(b, qb, "IP")
    ra, rb = best_first(sa, "L2")[:30], best_first(sb, "IP")[:30]
    # each field is searchable on its own, as in any multi-vector collection
    assert [h["id"] for h in client.search(name, data=[qa.tolist()], anns_field="a", limit=5)[0]] == ra[:5].tolist()
    assert [h["id"] for h in client.search(name, data=[qb.tolist()], anns_field="b", limit=5)[0]] == rb[:5].tolist()
    reqs = [
        AnnSearchRequest([qa.tolist()], "a", {"metric_type": "L2"}, limit=30),
        AnnSearchRequest([qb.tolist()], "b", {"metric_type": "IP"}, limit=30),
    ]
    rrf: dict[int, float] = {}
    for ranked in (ra, rb):
        for rank, i in enumerate(ranked.tolist()):
            rrf[i] = rrf.get(i, 0.0) + 1.0 / (60 + rank + 1)
    hits = client.hybrid_search(name, reqs, RRFRanker(60), limit=10)[0]
    assert [h["distance"] for h in hits] == pytest.approx(sorted(rrf.values(), reverse=True)[:10], rel=1e-5)
    assert all(h["distance"] == pytest.approx(rrf[h["id"]], rel=1e-5) for h in hits)
    # Milvus's weighted ranker normalises L2 as 1 - 2/pi*atan(d) and IP as 0.5 + atan(s)/pi
    weighted: dict[int, float] = {}
    for w, ranked, s, norm in (
        (0.7, ra, sa, lambda d: 1 - 2 * np.arctan(d) / np.pi),
        (0.3, rb, sb, lambda x: 0.5 + np.arctan(x) / np.pi),
    ):
        for i in ranked.tolist():
            weighted[i] = weighted.get(i, 0.0) + w * float(norm(s[i]))
    hits = client.hybrid_search(name, reqs, WeightedRanker(0.7, 0.3), limit=10, output_fields=["a"])[0]
    expect = sorted(weighted.items(), key=lambda kv: -kv[1])[:10]
    assert [h["distance"] for h in hits] == pytest.approx([v for _, v in expect], rel=1e-4)
    assert all(np.allclose(h["entity"]["a"], a[h["id"]]) for h in hits)
    with pytest.raises(MilvusException) as err:
        client.hybrid_search(name, reqs, WeightedRanker(0.7), limit=10)
    assert err.value.code == 1100


def test_hybrid_search_by_primary_key(client: MilvusClient, name: str) -> None:
    """Sub-requests carrying primary keys (`ids`, as pymilvus's Prepare builds them for a search
    by key) search with each key's stored vector of their own field: the same hits as sending
    those vectors."""
    from pymilvus.client.prepare import Prepare

    a, b = dataset(1300, seed=9), dataset(1300, seed=10)
    make_collection(
        client, name, {"a": a[:1100], "b": b[:1100]}, {"a": a[1100:], "b": b[1100:]},
        {"a": ("HNSW", "L2", {"M": 16, "efConstruction": 100}), "b": ("FLAT", "IP", {})},
    )
    keys = [7, 1250]  # sealed, growing
    stub = client._get_connection()._stub

    def by_keys(sub_keys: tuple[list[int] | None, list[int] | None], ranker: object) -> list[list[int]]:
        subs = []
        for field, metric, vecs, ks in (("a", "L2", a, sub_keys[0]), ("b", "IP", b, sub_keys[1])):
            kw = {"ids": ks} if ks is not None else {"data": [vecs[k].tolist() for k in keys]}
            subs.append(Prepare.search_requests_with_expr(name, field, {"metric_type": metric}, 20, **kw))
        reply = stub.HybridSearch(Prepare.hybrid_search_request_with_ranker(name, subs, ranker, 10), timeout=60)
        assert reply.status.code == 0, reply.status
        ids, out, at = list(reply.results.ids.int_id.data), [], 0
        for n in reply.results.topks:
            out.append(ids[at : at + n])
            at += n
        return out

    for ranker in (RRFRanker(), WeightedRanker(0.6, 0.4)):
        reqs = [
            AnnSearchRequest([a[k].tolist() for k in keys], "a", {"metric_type": "L2"}, limit=20),
            AnnSearchRequest([b[k].tolist() for k in keys], "b", {"metric_type": "IP"}, limit=20),
        ]
        expected = [[h["id"] for h in row] for row in client.hybrid_search(name, reqs, ranker, limit=10)]
        assert by_keys((keys, keys), ranker) == expected
        assert by_keys((keys, None), ranker) == expected  # one sub-request by key, one by vector
        assert all(row[0] == k for row, k in zip(expected, keys, strict=True))
    bad = Prepare.search_requests_with_expr(name, "a", {"metric_type": "L2"}, 5, ids=[99999])
    reply = stub.HybridSearch(Prepare.hybrid_search_request_with_ranker(name, [bad], RRFRanker(), 5), timeout=60)
    assert reply.status.code == 1100 and "99999" in reply.status.reason


def test_hybrid_search_group_by(client: MilvusClient, name: str) -> None:
    a, b = dataset(1300, seed=13), dataset(1300, seed=14)
    grp = np.arange(1300) % 37
    make_collection(
        client, name, {"a": a[:1100], "b": b[:1100]}, {"a": a[1100:], "b": b[1100:]},
        {"a": ("HNSW", "L2", {"M": 16, "efConstruction": 100}), "b": ("FLAT", "IP", {})}, {"grp": grp},
    )
    reqs = [
        AnnSearchRequest([a[5].tolist()], "a", {"metric_type": "L2"}, limit=20),
        AnnSearchRequest([b[5].tolist()], "b", {"metric_type": "IP"}, limit=20),
    ]
    for ranker in (RRFRanker(), WeightedRanker(0.5, 0.5)):
        hits = client.hybrid_search(name, reqs, ranker, limit=4, group_by_field="grp", group_size=2, output_fields=["grp"])[0]
        groups = [h["entity"]["grp"] for h in hits]
        assert len(set(groups)) == 4 and all(groups.count(g) <= 2 for g in groups)
        assert all(grp[h["id"]] == h["entity"]["grp"] for h in hits)
        assert hits[0]["id"] == 5  # the query rows themselves win both sub searches
        strict = client.hybrid_search(name, reqs, ranker, limit=4, group_by_field="grp", group_size=2,
                                      strict_group_size=True, output_fields=["grp"])[0]
        sgroups = [h["entity"]["grp"] for h in strict]
        assert len(set(sgroups)) == 4 and all(sgroups.count(g) == 2 for g in sgroups)
        summed = client.hybrid_search(name, reqs, ranker, limit=4, group_by_field="grp", group_size=2,
                                      rank_group_scorer="sum", output_fields=["grp"])[0]
        totals: dict[int, float] = {}
        for h in summed:
            totals[h["entity"]["grp"]] = totals.get(h["entity"]["grp"], 0.0) + h["distance"]
        order = list(dict.fromkeys(h["entity"]["grp"] for h in summed))
        assert [totals[g] for g in order] == sorted(totals.values(), reverse=True)


# ---------------------------------------------------------------- ignore_growing


def test_ignore_growing(client: MilvusClient, name: str) -> None:
    data = dataset(1400, seed=9)
    make_collection(client, name, {"v": data[:1100]}, {"v": data[1100:]}, {"v": ("HNSW", "L2", {"M": 16, "efConstruction": 100})})
    q = data[1200]  # a growing row
    all_hits = client.search(name, data=[q.tolist()], limit=10, search_params={"metric_type": "L2"})[0]
    assert all_hits[0]["id"] == 1200
    sealed_only = client.search(name, data=[q.tolist()], limit=10, search_params={"metric_type": "L2", "ignore_growing": True})[0]
    assert len(sealed_only) == 10 and all(h["id"] < 1100 for h in sealed_only)
    truth = best_first(scores_of(data[:1100], q, "L2"), "L2")[:10]
    assert len({h["id"] for h in sealed_only} & set(truth.tolist())) >= 9
    assert client.query(name, filter="id >= 0", output_fields=["count(*)"], ignore_growing=True)[0]["count(*)"] == 1100
    reqs = [
        AnnSearchRequest([q.tolist()], "v", {"metric_type": "L2", "ignore_growing": True}, limit=10),
        AnnSearchRequest([q.tolist()], "v", {"metric_type": "L2"}, limit=10),
    ]
    fused = client.hybrid_search(name, reqs, RRFRanker(), limit=20)[0]
    by_id = {h["id"]: h["distance"] for h in fused}
    assert by_id[1200] == pytest.approx(1 / 61, rel=1e-5)  # ranked first, by the second request only
    assert all(d <= 1 / 61 + 1e-6 for i, d in by_id.items() if i >= 1100)
    assert fused[0]["id"] < 1100  # sealed rows score in both requests


# ---------------------------------------------------------------- very selective filters


@pytest.fixture(scope="module")
def selective(target_server: Target) -> Iterator[tuple[MilvusClient, str, np.ndarray, np.ndarray]]:
    client = MilvusClient(uri=target_server.uri)
    name = "selective_filter"
    v, w = dataset(10000, seed=10), dataset(10000, seed=11)
    tag = np.arange(10000) % 1000
    make_collection(
        client, name, {"v": v[:9000], "w": w[:9000]}, {"v": v[9000:], "w": w[9000:]},
        {"v": ("HNSW", "L2", {"M": 16, "efConstruction": 100}), "w": ("IVF_FLAT", "L2", {"nlist": 64})}, {"tag": tag},
    )
    yield client, name, v, w
    client.drop_collection(name)
    client.close()


@pytest.mark.parametrize("field", ["v", "w"])
@pytest.mark.parametrize("flt", ["tag == 7", "tag in [3, 500]", "tag < 10"])
def test_very_selective_filter_recall(selective: tuple, field: str, flt: str) -> None:
    client, name, v, w = selective
    data = v if field == "v" else w
    tag = np.arange(10000) % 1000
    keep = {"tag == 7": tag == 7, "tag in [3, 500]": np.isin(tag, [3, 500]), "tag < 10": tag < 10}[flt]
    rng = np.random.default_rng(12)
    queries = data[rng.choice(10000, 10, replace=False)] + 0.1
    allowed = np.flatnonzero(keep)
    found = total = 0
    res = client.search(name, data=queries.tolist(), anns_field=field, limit=10, filter=flt, search_params={"metric_type": "L2"})
    for q, hits in zip(queries, res, strict=True):
        truth = allowed[best_first(scores_of(data[allowed], q, "L2"), "L2")[:10]]
        assert all(keep[h["id"]] for h in hits)
        found += len({h["id"] for h in hits} & set(truth.tolist()))
        total += len(truth)
    assert found / total >= 0.95, found / total
