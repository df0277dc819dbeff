"""The cluster roles' pieces that need no cluster: the internal RPC's error and version rules,
and the catalog followers (a streaming or query node) tracking what the coordinator commits."""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Mapping
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
            follower.apply(TailRecord(lsn, payload, follower.version))
        assert follower.applied == len(wal.records)
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


def test_every_routed_method_is_an_engine_method_with_one_owner() -> None:
    from shoal.cluster.proxy_engine import ClusterEngine
    from shoal.cluster.routing import COORD_METHODS, QUERY_FANOUT_METHODS, READ_METHODS, WRITE_METHODS
    from shoal.engine.facade import EngineAPI

    routed = [*COORD_METHODS, *WRITE_METHODS, *READ_METHODS, *QUERY_FANOUT_METHODS]
    assert len(routed) == len(set(routed))
    assert all(callable(getattr(EngineAPI, name, None)) for name in routed)
    # the proxy answers every engine method (a missing one was a 65535 AttributeError)
    public = [n for n in vars(EngineAPI) if not n.startswith("_") and callable(getattr(EngineAPI, n))]
    assert [n for n in public if not hasattr(ClusterEngine, n)] == []
