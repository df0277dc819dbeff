"""Answers that must equal Milvus's, through real pymilvus against `shoal run`.

One row per primary key (the last written) in every segment layout, defaults of added
fields, VARCHAR auto ids, iterator snapshots, a key in several partitions, the dynamic field
switched on later. Milvus behaviour is taken from its proxy code and docs (see
docs/compat.md).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from pymilvus import DataType, MilvusClient, MilvusException

DIM = 4


def _schema(pk_type: DataType = DataType.INT64, auto_id: bool = False, dynamic: bool = False):
    schema = MilvusClient.create_schema(auto_id=auto_id, enable_dynamic_field=dynamic)
    if pk_type == DataType.VARCHAR:
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
    else:
        schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("tag", DataType.VARCHAR, max_length=32)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
    return schema


def _create(client: MilvusClient, name: str, **kw) -> None:
    index = client.prepare_index_params()
    index.add_index("vec", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=_schema(**kw), index_params=index)


def _row(pk, tag: str, at: float = 0.0) -> dict:
    return {"id": pk, "tag": tag, "vec": [at, 0.0, 0.0, 0.0]}


def _one_row_per_key(client: MilvusClient, name: str, want: dict[int, str]) -> None:
    """query, get, count(*), search and the query iterator all see exactly `want` (id -> tag)."""
    got = client.query(name, filter="id >= 0", output_fields=["tag"])
    assert sorted((r["id"], r["tag"]) for r in got) == sorted(want.items())
    assert client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"] == len(want)
    for pk, tag in want.items():
        rows = client.query(name, filter=f"id == {pk}", output_fields=["tag"])
        assert [r["tag"] for r in rows] == [tag]
    assert sorted(r["id"] for r in client.get(name, ids=list(want))) == sorted(want)
    hits = client.search(name, data=[[0.0, 0.0, 0.0, 0.0]], limit=len(want) + 5, output_fields=["tag"])[0]
    assert sorted((h["id"], h["entity"]["tag"]) for h in hits) == sorted(want.items())
    it = client.query_iterator(name, batch_size=2, filter="id >= 0", output_fields=["tag"])
    seen = []
    while page := it.next():
        seen += [(r["id"], r["tag"]) for r in page]
    it.close()
    assert sorted(seen) == sorted(want.items())


def _compact(client: MilvusClient, name: str) -> None:
    job = client.compact(name)
    deadline = time.monotonic() + 120
    while client.get_compaction_state(job) != "Completed":
        assert time.monotonic() < deadline, "compaction did not finish in 120 s"
        time.sleep(0.2)


def test_duplicate_keys_read_as_the_last_row_written_growing_sealed_compacted(client, name) -> None:
    _create(client, name)
    for i, tag in enumerate(["a", "b", "c"]):  # id=1 three times
        client.insert(name, [_row(1, tag, i)])
    client.insert(name, [_row(2, "x", 1), _row(2, "y", 2), _row(3, "z", 3)])  # a repeat inside one batch
    _one_row_per_key(client, name, {1: "c", 2: "y", 3: "z"})

    client.flush(name)  # sealed
    client.insert(name, [_row(3, "z2", 3)])  # growing shadows sealed
    _one_row_per_key(client, name, {1: "c", 2: "y", 3: "z2"})
    client.flush(name)
    client.insert(name, [_row(1, "d", 0)])
    client.flush(name)
    _one_row_per_key(client, name, {1: "d", 2: "y", 3: "z2"})
    _compact(client, name)
    _one_row_per_key(client, name, {1: "d", 2: "y", 3: "z2"})
    client.drop_collection(name)


def test_duplicate_keys_stay_shadowed_after_a_restart(shoal_process) -> None:
    client = MilvusClient(uri=shoal_process.uri)
    _create(client, "dups", pk_type=DataType.VARCHAR)
    client.insert("dups", [_row("k1", "a"), _row("k2", "a")])
    client.flush("dups")
    client.insert("dups", [_row("k1", "b")])  # shadows a sealed row; only in the WAL
    client.insert("dups", [_row("k2", "b"), _row("k2", "c")])
    client.close()
    shoal_process.restart()
    client = MilvusClient(uri=shoal_process.uri)
    client.load_collection("dups")
    rows = client.query("dups", filter='id != ""', output_fields=["tag"])
    assert sorted((r["id"], r["tag"]) for r in rows) == [("k1", "b"), ("k2", "c")]
    assert client.query("dups", filter="", output_fields=["count(*)"])[0]["count(*)"] == 2
    client.close()


def test_upsert_refuses_repeated_keys_in_one_batch(client, name) -> None:
    _create(client, name)
    with pytest.raises(MilvusException) as err:
        client.upsert(name, [_row(1, "a"), _row(1, "b")])
    assert err.value.code == 1100
    assert "duplicate primary keys are not allowed in the same batch" in err.value.message
    client.drop_collection(name)


@pytest.mark.parametrize("flush", [True, False])
def test_a_key_upserted_into_two_partitions_lives_in_both(client, name, flush: bool) -> None:
    """The suite's test_partition_upsert_same_pk_in_diff_partitions: an upsert deletes only in
    the partition it names, so a key upserted into p1 and then p2 reads the same in each."""
    client.create_collection(name, schema=_schema())
    for p in ("p1", "p2"):
        client.create_partition(name, p)
    client.insert(name, [_row(i, "p1", i) for i in range(1000)], partition_name="p1")
    client.insert(name, [_row(i, "p2", i) for i in range(1000, 2000)], partition_name="p2")
    client.upsert(name, [_row(0, "up")], partition_name="p1")
    client.upsert(name, [_row(0, "up")], partition_name="p2")
    if flush:
        client.flush(name)
    index = client.prepare_index_params()
    index.add_index("vec", index_type="FLAT", metric_type="L2")
    client.create_index(name, index)
    client.load_collection(name)
    in_p1 = client.query(name, filter="id == 0", partition_names=["p1"], output_fields=["tag"])
    in_p2 = client.query(name, filter="id == 0", partition_names=["p2"], output_fields=["tag"])
    assert in_p1 == in_p2 and [r["tag"] for r in in_p1] == ["up"]
    assert client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"] == 2000
    client.drop_collection(name)


def _two_partitions_one_key(client: MilvusClient, name: str) -> None:
    """Key 1 written into p1 ("old") and then into p2 ("new"); key 2 only in p1."""
    _create(client, name)
    client.create_partition(name, "p1")
    client.create_partition(name, "p2")
    client.insert(name, [_row(1, "old"), _row(2, "two", 1.0)], partition_name="p1")
    client.flush(name)  # the older row sealed, the newer growing
    client.upsert(name, [_row(1, "new")], partition_name="p2")


def _partition_reads(client: MilvusClient, name: str, newest: str) -> None:
    """Each partition sees its own row of key 1; reads spanning both see only `newest`."""
    _one_row_per_key(client, name, {1: newest, 2: "two"})
    both = client.query(name, filter="id >= 0", partition_names=["p1", "p2"], output_fields=["tag"])
    assert sorted((r["id"], r["tag"]) for r in both) == [(1, newest), (2, "two")]
    assert client.query(name, filter="", partition_names=["p1", "p2"], output_fields=["count(*)"])[0]["count(*)"] == 2
    p1 = client.query(name, filter="id >= 0", partition_names=["p1"], output_fields=["tag"])
    assert sorted((r["id"], r["tag"]) for r in p1) == [(1, "old"), (2, "two")]
    hits = client.search(name, data=[[0.0] * DIM], limit=5, partition_names=["p1"], output_fields=["tag"])[0]
    assert sorted((h["id"], h["entity"]["tag"]) for h in hits) == [(1, "old"), (2, "two")]
    assert [r["tag"] for r in client.get(name, ids=[1], partition_names=["p2"], output_fields=["tag"])] == ["new"]


def test_reads_spanning_partitions_see_a_keys_newest_row(client, name) -> None:
    _two_partitions_one_key(client, name)
    _partition_reads(client, name, "new")
    client.flush(name)
    _compact(client, name)
    _partition_reads(client, name, "new")
    # deleting p2's row (the newest) brings p1's back to reads that span both
    client.delete(name, filter="id in [1]", partition_name="p2")
    _one_row_per_key(client, name, {1: "old", 2: "two"})
    assert client.query(name, filter="id == 1", partition_names=["p2"]) == []
    client.drop_collection(name)


def test_a_key_in_two_partitions_reads_the_same_after_a_restart(shoal_process) -> None:
    client = MilvusClient(uri=shoal_process.uri)
    _two_partitions_one_key(client, "parts")
    client.flush("parts")  # both rows sealed: recomputed on load
    client.insert("parts", [_row(2, "two-p2", 1.0)], partition_name="p2")  # only in the WAL
    client.close()
    shoal_process.restart()
    client = MilvusClient(uri=shoal_process.uri)
    client.load_collection("parts")
    _one_row_per_key(client, "parts", {1: "new", 2: "two-p2"})
    p1 = client.query("parts", filter="id >= 0", partition_names=["p1"], output_fields=["tag"])
    assert sorted((r["id"], r["tag"]) for r in p1) == [(1, "old"), (2, "two")]
    client.close()


def test_an_added_field_reads_its_default_on_older_rows(client, name) -> None:
    _create(client, name)
    client.insert(name, [_row(1, "a"), _row(2, "a")])
    client.flush(name)
    client.insert(name, [_row(3, "a")])  # growing
    client.add_collection_field(name, "extra", DataType.VARCHAR, max_length=16, nullable=True, default_value="aa")
    client.insert(name, [{**_row(4, "a"), "extra": "bb"}])
    got = {r["id"]: r["extra"] for r in client.query(name, filter="id >= 0", output_fields=["extra"])}
    assert sorted(got) == [1, 2, 3, 4]
    assert (got[1], got[2], got[3], got[4]) == ("aa", "aa", "aa", "bb")
    assert sorted(r["id"] for r in client.query(name, filter='extra == "aa"')) == [1, 2, 3]
    client.flush(name)
    assert sorted(r["id"] for r in client.query(name, filter='extra == "aa"')) == [1, 2, 3]
    client.drop_collection(name)


def test_varchar_auto_id_generates_string_ids_and_upsert_takes_them(client, name) -> None:
    _create(client, name, pk_type=DataType.VARCHAR, auto_id=True)
    res = client.insert(name, [{"tag": "a", "vec": [0.0] * DIM}, {"tag": "b", "vec": [1.0] * DIM}])
    ids = list(res["ids"])
    assert len(ids) == 2 and all(isinstance(i, str) and i.isdigit() for i in ids)
    assert [r["tag"] for r in client.query(name, filter=f'id == "{ids[0]}"', output_fields=["tag"])] == ["a"]
    # as Milvus: an upsert of an auto_id collection deletes the given key and writes new ones
    new = list(client.upsert(name, [{"id": ids[0], "tag": "a2", "vec": [0.0] * DIM}])["ids"])
    assert len(new) == 1 and new[0] != ids[0] and new[0].isdigit()
    rows = client.query(name, filter='id != ""', output_fields=["tag"])
    assert sorted((r["id"], r["tag"]) for r in rows) == sorted([(new[0], "a2"), (ids[1], "b")])
    client.drop_collection(name)


def test_query_iterator_reads_one_snapshot_also_after_a_resume(client, name, tmp_path: Path) -> None:
    _create(client, name)
    client.insert(name, [_row(i, "t") for i in range(300)])
    cp = str(tmp_path / "it.cp")
    it = client.query_iterator(name, batch_size=100, filter="id >= 0", iterator_cp_file=cp)
    seen = [r["id"] for r in it.next()]
    client.insert(name, [_row(i, "t") for i in range(1000, 1200)])  # after the snapshot
    seen += [r["id"] for r in it.next()]
    # a second iterator resumes from the checkpoint file: same snapshot, same cursor
    resumed = client.query_iterator(name, batch_size=100, filter="id >= 0", iterator_cp_file=cp)
    while page := resumed.next():
        seen += [r["id"] for r in page]
    resumed.close()
    assert sorted(seen) == list(range(300))
    client.drop_collection(name)


def test_dynamic_field_switched_on_later_takes_effect(client, name) -> None:
    _create(client, name)
    client.insert(name, [_row(1, "a")])
    with pytest.raises(MilvusException):
        client.insert(name, [{**_row(2, "a"), "color": "red"}])
    client.alter_collection_properties(name, properties={"dynamicfield.enabled": True})
    assert client.describe_collection(name)["enable_dynamic_field"] is True
    client.insert(name, [{**_row(2, "a"), "color": "red"}])
    rows = client.query(name, filter='color == "red"', output_fields=["color"])
    assert [(r["id"], r["color"]) for r in rows] == [(2, "red")]
    assert client.query(name, filter="id == 1", output_fields=["*"])[0]["id"] == 1
    with pytest.raises(MilvusException) as err:
        client.alter_collection_properties(name, properties={"dynamicfield.enabled": False})
    assert err.value.code == 1100
    client.drop_collection(name)


def _decay(**params):
    from pymilvus import Function, FunctionType

    return Function(
        name="decay", input_field_names=["id"], function_type=FunctionType.RERANK,
        params={"reranker": "decay", **params},
    )


def test_decay_rerank_scores_follow_milvus_formula(client, name) -> None:
    import math

    _create(client, name)
    client.insert(name, [_row(i, "t", float(4 - i)) for i in range(5)])  # L2 to the origin: (4 - id)^2
    hits = client.search(
        name, data=[[0.0] * DIM], limit=3, ranker=_decay(function="gauss", origin=0, scale=2, offset=1, decay=0.3)
    )[0]

    def want(pk: int) -> float:
        greater = 1 - 2 * math.atan(float((4 - pk) ** 2)) / math.pi  # a distance turned "greater is better"
        far = max(0.0, abs(pk - 0) - 1)
        return greater * math.exp(far**2 / (2**2 / math.log(0.3)))

    expected = sorted([4, 3, 2], key=lambda pk: -want(pk))  # as Milvus: the limit nearest hits, reordered
    assert [h["id"] for h in hits] == expected
    for h in hits:
        assert h["distance"] == pytest.approx(want(h["id"]), rel=1e-5)
    for fn, formula in (("exp", lambda d: math.exp(math.log(0.5) / 2 * d)), ("linear", lambda d: max(0.5, 1 - 0.25 * d))):
        got = client.search(name, data=[[4.0, 0, 0, 0]], limit=5, ranker=_decay(function=fn, origin=4, scale=2))[0]
        for h in got:  # id 4 sits on the query: distance 0, greater score 1
            greater = 1 - 2 * math.atan(float(h["id"] ** 2)) / math.pi
            assert h["distance"] == pytest.approx(greater * formula(abs(h["id"] - 4)), rel=1e-5)
    client.drop_collection(name)


def test_decay_rerank_of_a_hybrid_search_takes_the_best_sub_score(client, name) -> None:
    import math

    from pymilvus import AnnSearchRequest

    _create(client, name)
    client.insert(name, [_row(i, "t", float(i)) for i in range(6)])
    subs = [AnnSearchRequest([[0.0] * DIM], "vec", {}, 3), AnnSearchRequest([[5.0, 0, 0, 0]], "vec", {}, 3)]
    ranker = _decay(function="exp", origin=5, scale=3, decay=0.4)
    hits = client.hybrid_search(name, subs, ranker, limit=4)[0]

    def greater(d: float) -> float:
        return 1 - 2 * math.atan(d) / math.pi

    found = {}  # each sub search's 3 nearest (L2 is squared), best "greater" score per id
    for centre in (0, 5):
        for pk in sorted(range(6), key=lambda p: (p - centre) ** 2)[:3]:
            found[pk] = max(found.get(pk, 0.0), greater(float((pk - centre) ** 2)))
    want = {pk: g * math.exp(math.log(0.4) / 3 * abs(pk - 5)) for pk, g in found.items()}
    assert [h["id"] for h in hits] == sorted(want, key=lambda p: -want[p])[:4]
    for h in hits:
        assert h["distance"] == pytest.approx(want[h["id"]], rel=1e-5)
    client.drop_collection(name)


def test_invalid_or_unsupported_rerank_functions_are_refused(client, name) -> None:
    _create(client, name)
    client.insert(name, [_row(1, "a")])
    for ranker, code, text in (
        (_decay(function="gauss", scale=2), 65535, "Decay function lost param: origin"),
        (_decay(function="gauss", origin=0, scale=0), 65535, "scale must > 0"),
        (_decay(function="gauss", origin=0, scale=1, decay=1), 65535, "decay must 0 < decay < 1"),
        (_decay(function="cubic", origin=0, scale=1), 65535, "Invaild decay function"),
        (_decay(function="gauss", origin="x", scale=1), 65535, "Param origin:x is not a number"),
    ):
        with pytest.raises(MilvusException) as err:
            client.search(name, data=[[0.0] * DIM], limit=1, ranker=ranker)
        assert err.value.code == code and text in err.value.message
    from pymilvus import Function, FunctionType

    model = Function(name="m", input_field_names=["tag"], function_type=FunctionType.RERANK, params={"reranker": "model"})
    with pytest.raises(MilvusException) as err:
        client.search(name, data=[[0.0] * DIM], limit=1, ranker=model)
    assert err.value.code == 65535 and "missing required param: queries" in err.value.message
    client.drop_collection(name)


def test_vectors_of_shadowed_rows_never_surface_in_search(client, name) -> None:
    _create(client, name)
    rng = np.random.default_rng(7)
    client.insert(name, [{"id": i % 20, "tag": str(i), "vec": rng.random(DIM).tolist()} for i in range(100)])
    hits = client.search(name, data=[[0.5] * DIM], limit=50)[0]
    assert sorted(h["id"] for h in hits) == list(range(20))
    client.drop_collection(name)


def test_a_write_built_for_an_older_schema_is_refused_as_a_schema_mismatch(client, name) -> None:
    """As Milvus's proxy: an insert or upsert naming the schema version it was built for
    (`schema_timestamp`) gets code 109 / SchemaMismatch once the schema changed, so pymilvus
    re-reads the schema and builds the rows again; a client with a stale schema would otherwise
    file a new field's values under the dynamic field."""
    from pymilvus.grpc_gen import common_pb2, milvus_pb2

    client.create_collection(name, dimension=DIM, consistency_level="Strong")
    old = client.describe_collection(name)["update_timestamp"]
    client.add_collection_field(name, "extra", DataType.INT64, nullable=True)
    new = client.describe_collection(name)["update_timestamp"]
    assert new != old
    stub = client._get_connection()._stub
    for call, kind in ((stub.Insert, milvus_pb2.InsertRequest), (stub.Upsert, milvus_pb2.UpsertRequest)):
        status = call(kind(collection_name=name, schema_timestamp=old, num_rows=1)).status
        assert (status.code, status.error_code) == (109, common_pb2.SchemaMismatch)
        assert status.reason == f"collection schema mismatch[collection={name}]"
        assert call(kind(collection_name=name, schema_timestamp=new, num_rows=1)).status.code != 109
    client.insert(name, [{"id": 1, "vector": [0.1] * DIM, "extra": 5}])  # pymilvus with a fresh schema
    assert client.query(name, filter="extra == 5", output_fields=["extra"])[0]["extra"] == 5
    client.drop_collection(name)
