"""The cluster roles' pieces that need no cluster: the internal RPC's error and version rules,
and the catalog followers (a streaming or query node) tracking what the coordinator commits."""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from shoal.cluster.roles.catalog_sync import FollowerStore, VersionedStore
from shoal.cluster.roles.follower import Follower
from shoal.cluster.rpc import RpcClient, RpcServer, Unavailable
from shoal.cluster.rpc.wire import PROTOCOL_VERSION
from shoal.config import Config
from shoal.engine import wal_records
from shoal.engine.engine import Engine
from shoal.engine.requests import QueryRequest
from shoal.engine.wal_records import Kind, Record
from shoal.errors import Code, ShoalError
from shoal.schema import CollectionSchema, Column, DataType, FieldSchema
from shoal.storage.kafka_wal import TailRecord


class MemStore:
    """The MetaStore protocol in memory, shared like one etcd."""

    def __init__(self) -> None:
        self.kv: dict[str, bytes] = {}

    def get(self, key: str) -> bytes | None:
        return self.kv.get(key)

    def put(self, key: str, value: bytes) -> None:
        self.kv[key] = value

    def delete(self, key: str) -> None:
        self.kv.pop(key, None)

    def list_prefix(self, prefix: str) -> dict[str, bytes]:
        return {k: v for k, v in sorted(self.kv.items()) if k.startswith(prefix)}

    def commit(self, puts: Mapping[str, bytes], deletes: Iterable[str]) -> None:
        for k in deletes:
            self.kv.pop(k, None)
        self.kv.update(puts)

    def close(self) -> None:
        pass


class ListWAL:
    def __init__(self) -> None:
        self.records: list[bytes] = []

    def append(self, payload: bytes) -> int:
        self.records.append(payload)
        return len(self.records)

    def mark_checkpoint(self, lsn: int) -> int:
        return lsn

    def replay(self, after_lsn: int = 0):  # noqa: ANN201
        return iter(())

    def close(self) -> None:
        pass


# ---- rpc


@pytest.fixture()
def rpc_pair():
    def fail() -> None:
        raise ShoalError(Code.COLLECTION_NOT_FOUND, "collection not found[collection=x]")

    def gone() -> None:
        raise Unavailable("not the owner")

    server = RpcServer("127.0.0.1", 0, {"echo": lambda *a, **k: (a, k), "fail": fail, "gone": gone})
    server.start()
    client = RpcClient(f"127.0.0.1:{server.port}")
    yield client, server
    client.close()
    server.stop(0)


def test_rpc_carries_values_and_errors(rpc_pair) -> None:
    client, _ = rpc_pair
    args, kwargs = client.call("echo", np.arange(3), x={"a": 1})
    assert args[0].tolist() == [0, 1, 2] and kwargs == {"x": {"a": 1}}
    with pytest.raises(ShoalError) as e:
        client.call("fail")
    assert e.value.code == Code.COLLECTION_NOT_FOUND and not isinstance(e.value, Unavailable)
    with pytest.raises(Unavailable):
        client.call("gone")


def test_rpc_unknown_method_or_version_is_not_supported(rpc_pair) -> None:
    client, _ = rpc_pair
    with pytest.raises(ShoalError) as e:
        client.call("method_of_a_newer_version")
    assert e.value.code == Code.NOT_SUPPORTED
    answer = client._stub(pickle.dumps((PROTOCOL_VERSION + 1, "echo", (), {})), timeout=30)
    ok, (code, message, _) = pickle.loads(answer)
    assert not ok and code == Code.NOT_SUPPORTED and "version" in message


def test_rpc_unreachable_peer_is_unavailable() -> None:
    from fixtures_services import free_port

    client = RpcClient(f"127.0.0.1:{free_port()}")
    with pytest.raises(Unavailable):
        client.call("echo", timeout=5)
    client.close()


# ---- catalog followers


def _schema() -> CollectionSchema:
    return CollectionSchema(fields=[
        FieldSchema(name="id", dtype=DataType.INT64, field_id=100, is_primary=True),
        FieldSchema(name="vec", dtype=DataType.FLOAT_VECTOR, field_id=101, dim=2),
    ])


def _ids(engine: Engine, name: str) -> list[int]:
    res = engine.query("default", name, QueryRequest(expr="id >= 0", output_fields=["id"]))
    return sorted(int(v) for v in res.fields["id"].values)


def test_followers_track_the_coordinators_catalog_and_apply_the_owners_records(tmp_path: Path) -> None:
    etcd = MemStore()
    coord = Engine(tmp_path / "coord", meta_store=VersionedStore(etcd))
    wal = ListWAL()
    owner = Engine(tmp_path / "owner", meta_store=FollowerStore(etcd), wal=wal)
    follower = Follower(SimpleNamespace(meta_store=lambda: etcd, cfg=Config()), tmp_path / "reader")  # type: ignore[arg-type]
    reader = follower.engine
    try:
        coord.create_collection("default", "c", _schema())
        coord.create_partition("default", "c", "p1")
        for engine in (owner, reader):
            engine.reload_catalog()
        batch = {"id": Column(np.array([1, 2, 3], dtype=np.int64)),
                 "vec": Column(np.ones((3, 2), dtype=np.float32))}
        owner.insert("default", "c", "p1", batch, 3)
        owner.delete("default", "c", "", "id == 2")
        cid = coord.describe_collection("default", "c").collection_id
        wal.append(wal_records.encode(Record(Kind.FLUSH, cid, 0, owner.tso.allocate(), {})))
        for lsn, payload in enumerate(wal.records, 1):
            follower.apply(0, TailRecord(lsn, payload, follower.version))
        assert follower.applied == {0: len(wal.records)}
        assert [s.path != "" for s in reader.datas[cid].segments] == [True]  # the flush marker persisted it
        coord.load_collection("default", "c")
        follower.catch_up(0)
        assert _ids(reader, "c") == [1, 3]
        with pytest.raises(ShoalError) as e:
            reader.insert("default", "c", "", batch, 3)  # a query node never writes
        assert e.value.code == Code.NOT_SUPPORTED
        version = int(etcd.kv["catalog_version"])
        coord.release_collection("default", "c")
        coord.drop_partition("default", "c", "p1")
        assert int(etcd.kv["catalog_version"]) > version
        reader.reload_catalog()
        assert reader.partition_row_count("default", "c", "_default") == 0
        assert not reader.has_partition("default", "c", "p1")
        coord.drop_collection("default", "c")
        reader.reload_catalog()
        assert not reader.has_collection("default", "c") and not reader.datas
        before = dict(etcd.kv)
        owner.reload_catalog()
        owner.close()
        follower.close()
        assert etcd.kv == before  # followers never write the shared catalog
    finally:
        coord.close()


def _until(done: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, "not done in time"
        time.sleep(0.05)


def _layout(engine: Engine, cid: int) -> list[tuple[int, int, int, bool]]:
    return sorted((s.segment_id, s.partition_id, s.num_rows, bool(s.path)) for s in engine.datas[cid].segments)


def test_every_node_of_the_channel_seals_the_same_segments_under_the_same_ids(tmp_path: Path) -> None:
    """The owner seals at size caps and right after logging a FLUSH record; its followers seal
    at the same records and name each segment by the record that opened it (shares need it)."""
    etcd = MemStore()
    coord = Engine(tmp_path / "coord", meta_store=VersionedStore(etcd))
    env = SimpleNamespace(meta_store=lambda: etcd, cfg=Config(segment_max_rows=7))
    wal = ListWAL()
    owner = Follower(env, tmp_path / "owner", wal=wal, build_indexes=False)  # type: ignore[arg-type]
    readers = [Follower(env, tmp_path / f"reader{i}") for i in range(2)]  # type: ignore[arg-type]
    try:
        coord.create_collection("default", "c", _schema())
        coord.create_partition("default", "c", "p1")
        cid = coord.describe_collection("default", "c").collection_id
        for f in (owner, *readers):
            f.catch_up(0)
        owner.lead()
        owner.engine.background_flush = owner.engine.auto_compact = False  # no seals or merges of its own: the test drives them
        for i in range(12):  # 3-row batches over a 7-row cap: size seals, partitions in turn
            batch = {"id": Column(np.arange(i * 3, i * 3 + 3, dtype=np.int64)),
                     "vec": Column(np.ones((3, 2), dtype=np.float32))}
            owner.engine.insert("default", "c", "p1" if i % 3 else "", batch, 3)
            if i == 5:
                owner.engine.flush("default", ["c"])
        owner.engine.flush("default", ["c"])
        assert [wal_records.decode(p).kind for p in wal.records].count(Kind.FLUSH) >= 2
        for reader in readers:
            for lsn, payload in enumerate(list(wal.records), 1):
                reader.apply(0, TailRecord(lsn, payload, reader.version))
        expected = _layout(owner.engine, cid)
        assert sum(rows for _, _, rows, _ in expected) == 36 and len(expected) >= 6
        assert all(seg_id > 1 << 51 for seg_id, *_ in expected)  # from the WAL position, not a counter
        assert all(_layout(reader.engine, cid) == expected for reader in readers)

        # the owner compacts (deleted rows dropped, small segments merged) and logs each swap;
        # the followers repeat it from the WAL: again the same segments under the same ids
        owner.engine.delete("default", "c", "", "id in [0, 1, 2, 30]")
        applied = len(wal.records)
        compaction = owner.engine.compact("default", "c")
        _until(lambda: owner.engine.compaction_state(compaction).state == "Completed")
        assert Kind.COMPACT in [wal_records.decode(p).kind for p in wal.records[applied:]]
        for reader in readers:
            for lsn, payload in enumerate(list(wal.records), 1):
                if lsn > applied - 1:
                    reader.apply(0, TailRecord(lsn, payload, reader.version))
        compacted = _layout(owner.engine, cid)
        assert compacted != expected and sum(rows for _, _, rows, _ in compacted) == 32
        for reader in readers:
            _until(lambda r=reader: not r.engine.compactor.running(cid))
            assert _layout(reader.engine, cid) == compacted
    finally:
        for f in (owner, *readers):
            f.close()
        coord.close()


def test_every_routed_method_is_an_engine_method_with_one_owner() -> None:
    from shoal.cluster.proxy_engine import ClusterEngine
    from shoal.cluster.routing import COMPACTION_METHODS, COORD_METHODS, READ_METHODS, WRITE_METHODS
    from shoal.engine.facade import EngineAPI

    routed = [*COORD_METHODS, *WRITE_METHODS, *READ_METHODS, *COMPACTION_METHODS]
    assert len(routed) == len(set(routed))
    assert all(callable(getattr(EngineAPI, name, None)) for name in routed)
    # the proxy answers every engine method (a missing one was a 65535 AttributeError)
    public = [n for n in vars(EngineAPI) if not n.startswith("_") and callable(getattr(EngineAPI, n))]
    assert [n for n in public if not hasattr(ClusterEngine, n)] == []


# ---- bulk import in cluster mode (roles/imports.py), with a local object store for S3


class _JobsEnv:
    """What `ClusterImporter` uses of a `ClusterEnv`: an etcd-like store, the config, the prefix."""

    def __init__(self, catalog: MemStore) -> None:
        self.store, self.catalog, self.cfg, self.prefix = MemStore(), catalog, Config(), "shoal/"

    def put_json(self, key: str, value: dict) -> None:
        import json

        self.store.put(key, json.dumps(value).encode())

    def meta_store(self) -> MemStore:
        return self.catalog

    def channels(self) -> int:
        return 1


def _wait_job(importer, job_id: int):  # noqa: ANN001, ANN202
    import time

    deadline = time.monotonic() + 60
    while importer.get(job_id).state not in ("Completed", "Failed"):
        assert time.monotonic() < deadline, "the import job did not finish"
        time.sleep(0.02)
    return importer.get(job_id)


def test_a_cluster_import_commits_with_one_record_and_a_new_owner_settles_unfinished_jobs(tmp_path: Path) -> None:
    import json

    from shoal.cluster.roles.imports import ClusterImporter, job_key, read_job
    from shoal.storage.object_store import LocalObjectStore

    etcd = MemStore()
    env = _JobsEnv(etcd)
    s3 = LocalObjectStore(tmp_path / "bucket")
    coord = Engine(tmp_path / "coord", meta_store=VersionedStore(etcd))
    wal = ListWAL()
    owner = Engine(tmp_path / "owner", meta_store=FollowerStore(etcd), wal=wal)
    follower = Follower(env, tmp_path / "reader")  # type: ignore[arg-type]
    follower.import_source = (s3, tmp_path / "cache")
    committed: list[dict] = []
    importer = ClusterImporter(owner, env, s3, 1, tmp_path / "scratch", committed.extend, lambda why: None, 0)  # type: ignore[arg-type]
    owner.importer.close()
    owner.importer = importer
    try:
        coord.create_collection("default", "c", _schema())
        owner.reload_catalog()
        local = tmp_path / "rows.json"
        local.write_text(json.dumps({"rows": [{"id": i, "vec": [i, 0.5]} for i in range(1, 6)]}))
        (tmp_path / "more.json").write_text(json.dumps([{"id": i, "vec": [i, 0.5]} for i in range(6, 9)]))
        s3.put_file("in/more.json", tmp_path / "more.json")  # a key in the bucket, as Milvus names files
        first = owner.import_files("default", "c", "", [[str(local)]], {})
        second = owner.import_files("default", "c", "", [["in/more.json"]], {})
        missing = owner.import_files("default", "c", "", [["in/absent.json"]], {})
        assert _wait_job(importer, first.job_id).state == "Completed"
        assert _wait_job(importer, second.job_id).state == "Completed"
        failed = _wait_job(importer, missing.job_id)
        assert failed.state == "Failed" and "absent.json" in failed.reason
        assert len(wal.records) == 2  # one record per committed job, none for the failed one
        kinds = [wal_records.decode(r).kind for r in wal.records]
        assert kinds == [Kind.IMPORT, Kind.IMPORT]
        stored = read_job(env, first.job_id)  # type: ignore[arg-type]
        assert stored.state == "Completed" and stored.imported_rows == 5 and stored.commit_lsn == 1
        assert {e["path"].split("/")[-1].split("-")[0] for e in committed} == {f"i{first.job_id}", f"i{second.job_id}"}
        for entry in committed:  # every file the record names is in the bucket, timestamps stamped
            assert {k.rsplit("/", 1)[1] for k in s3.list(entry["key"] + "/")} == set(entry["files"])

        follower.catch_up(0)
        for lsn, payload in enumerate(wal.records, 1):
            follower.apply(0, TailRecord(lsn, payload, follower.version))
        assert follower.imported_jobs == {first.job_id, second.job_id}
        coord.load_collection("default", "c")
        follower.catch_up(0)
        owner.reload_catalog()
        assert _ids(follower.engine, "c") == list(range(1, 9)) == _ids(owner, "c")

        # the owner died: one job was committed but not yet marked so, one never committed
        for job_id in (first.job_id, 42):
            env.store.put(job_key(job_id), json.dumps({**json.loads(env.store.get(job_key(first.job_id))),
                                                      "job_id": job_id, "state": "Importing"}).encode())
        later = ClusterImporter(follower.engine, env, s3, 2, tmp_path / "scratch2", committed.extend,  # type: ignore[arg-type]
                                lambda why: None, 0)
        try:
            later.adopt(follower.imported_jobs)
        finally:
            later.close()
        assert read_job(env, first.job_id).state == "Completed"  # type: ignore[arg-type]
        orphan = read_job(env, 42)  # type: ignore[arg-type]
        assert orphan.state == "Failed" and "run it again" in orphan.reason and orphan.imported_rows == 0
    finally:
        owner.close()
        follower.close()
        coord.close()
