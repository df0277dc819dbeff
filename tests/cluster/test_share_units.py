"""Share mode's pieces together, in one process and without a cluster: an owner and two query
nodes (`Follower`s over one in-memory WAL and one in-memory etcd), the owner's real checkpoint
writer over a directory standing in for S3, the coordinator's `ShareBalancer` and each node's
`ShareHolder`; reads are gathered as the proxy gathers them (`cluster/gather.py`). Checks that
the two nodes end up holding disjoint halves, that gathered answers equal the owner's full
answer, and that when one node leaves, its half loads on the other from the store with the
deletes made since the checkpoint."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from test_roles_units import ListWAL, MemStore

from shoal.cluster import gather, shares
from shoal.cluster.roles import shares_node
from shoal.cluster.roles.catalog_sync import VersionedStore
from shoal.cluster.roles.checkpoint import CheckpointWriter
from shoal.cluster.roles.follower import Follower
from shoal.cluster.roles.share_coord import ShareBalancer
from shoal.cluster.roles.shares_node import ShareHolder
from shoal.config import Config
from shoal.engine.collection_data import READ_SHARE
from shoal.engine.engine import Engine
from shoal.engine.requests import QueryRequest, SearchRequest
from shoal.schema import CollectionSchema, Column, DataType, FieldSchema
from shoal.storage.kafka_wal import TailRecord


class DirS3:
    """put_file/get_file over a directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put_file(self, key: str, path: Path) -> None:
        (self.root / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, self.root / key)

    def get_file(self, key: str, path: Path) -> None:
        shutil.copyfile(self.root / key, path)


class MemCheckpoints(CheckpointWriter):
    def _commit(self, ckpt: dict[str, Any]) -> None:
        self.env.store.put("checkpoint/0", json.dumps(ckpt).encode())


def test_two_nodes_share_the_segments_and_a_leaving_nodes_half_loads_on_the_other(tmp_path: Path,
                                                                                   monkeypatch) -> None:
    monkeypatch.setattr(shares_node, "RELEASE_AFTER_S", 0.0)
    etcd = MemStore()
    live: dict[str, dict[str, str]] = {"query-a": {"address": "a"}, "query-b": {"address": "b"}}

    def env(node_id: str) -> SimpleNamespace:
        return SimpleNamespace(
            node_id=node_id, meta_store=lambda: etcd, store=etcd, prefix="t/",
            cfg=Config(segment_max_rows=50, segment_placement="share"), live_nodes=lambda role: dict(live),
            get_json=lambda k: json.loads(etcd.kv[k]) if k in etcd.kv else None,
            put_json=lambda k, v: etcd.put(k, json.dumps(v).encode()))

    coord = Engine(tmp_path / "coord", meta_store=VersionedStore(etcd))
    wal = ListWAL()
    owner = Follower(env("streaming-1"), tmp_path / "owner", wal=wal, build_indexes=False)  # type: ignore[arg-type]
    nodes = {n: Follower(env(n), tmp_path / n) for n in live}  # type: ignore[arg-type]
    s3 = DirS3(tmp_path / "s3")
    ready = threading.Event()
    ready.set()
    holders = {n: ShareHolder(env(n), nodes[n], s3, tmp_path / f"{n}-cache", ready) for n in live}  # type: ignore[arg-type]
    try:
        coord.create_collection("default", "c", CollectionSchema(fields=[
            FieldSchema(name="id", dtype=DataType.INT64, field_id=100, is_primary=True),
            FieldSchema(name="vec", dtype=DataType.FLOAT_VECTOR, field_id=101, dim=2)]))
        coord.load_collection("default", "c")
        cid = coord.describe_collection("default", "c").collection_id
        for f in (owner, *nodes.values()):
            f.catch_up(0)
        owner.lead()
        # the owner's background flush and compaction would seal and merge on their own thread,
        # racing this test's inserts and tails: here the test makes every seal itself
        owner.engine.background_flush = owner.engine.auto_compact = False
        rng = np.random.default_rng(5)
        for i in range(8):
            ids = np.arange(i * 50, i * 50 + 50, dtype=np.int64)
            owner.engine.insert("default", "c", "", {"id": Column(ids), "vec": Column(rng.random((50, 2), np.float32))}, 50)
        owner.engine.flush("default", ["c"])
        MemCheckpoints(env("streaming-1"), s3, owner.engine, b"", 1, lambda: len(wal.records), None).checkpoint(False)  # type: ignore[arg-type]
        applied = {n: 0 for n in nodes}

        def tail() -> None:
            for n, f in nodes.items():
                for lsn, payload in enumerate(list(wal.records), 1):
                    if lsn > applied[n]:
                        f.apply(TailRecord(lsn, payload, f.version))
                applied[n] = len(wal.records)

        tail()
        etcd.put(f"replicas/{cid}", json.dumps({"collection_id": cid, "database": "default", "name": "c",
                                                "groups": [sorted(live)]}).encode())
        balancer = ShareBalancer(env("coord-1"), lambda *_: None)  # type: ignore[arg-type]
        answering = set(live)
        balancer._held = lambda addresses: {  # type: ignore[method-assign]
            n: {k: set(v) for k, v in holders[n].held().items()} for n in addresses if n in answering}

        def settle() -> None:
            for _ in range(3):
                balancer.step()
                for n in answering:
                    holders[n].step()

        def gathered(method: str, req: Any) -> Any:
            doc = json.loads(etcd.kv[shares.key(cid)])
            plan = shares.read_shares(doc["groups"][0], sorted(live))
            args = ("default", "c", req)
            schema = owner.engine.describe_collection("default", "c").schema
            gather.check(method, args, schema)
            parts = []
            for call, asked in gather.node_calls(method, args, schema):
                parts.append([])
                for n, share in sorted(plan.items()):
                    token = READ_SHARE.set(holders[n].select(share))
                    try:
                        engine = nodes[n].engine
                        parts[-1].append(gather.node_part(engine, call, asked, getattr(engine, call)(*asked)))
                    finally:
                        READ_SHARE.reset(token)
            return gather.merge(method, args, parts, schema)

        def sealed(n: str) -> set[int]:
            return {s.segment_id for s in nodes[n].engine.datas[cid].segments if s.sealed}

        count = QueryRequest(expr="", output_fields=["count(*)"])
        search = SearchRequest(anns_field="vec", queries=rng.random((2, 2), np.float32), topk=7, metric_type="L2",
                               output_fields=["id"])
        settle()
        base = sealed("query-a") | sealed("query-b")
        assert len(base) == 8 and len(sealed("query-a")) == 4 and not sealed("query-a") & sealed("query-b")
        assert gathered("query", count).count == 400
        want = owner.engine.search("default", "c", search)
        got = gathered("search", search)
        assert got.ids.tolist() == want.ids.tolist() and got.topks == want.topks

        # after the checkpoint: a sealed segment and growing rows no share names (every node holds
        # them, the group's first node answers for them), and deletes
        for n in (60, 20):
            ids = np.arange(1000, 1000 + n, dtype=np.int64) + (0 if n == 60 else 100)
            owner.engine.insert("default", "c", "", {"id": Column(ids), "vec": Column(rng.random((n, 2), np.float32))}, n)
        owner.engine.delete("default", "c", "", "id in [1, 120, 399]")
        tail()
        assert len(sealed("query-a") - base) == len(sealed("query-b") - base) == 1
        assert gathered("query", count).count == 477
        b_half = sealed("query-b")
        del live["query-b"]  # query-b drains: out of the group, still answering until query-a holds its half
        etcd.put(f"replicas/{cid}", json.dumps({"collection_id": cid, "database": "default", "name": "c",
                                                "groups": [["query-a"]]}).encode())
        balancer.step()
        assert set(json.loads(etcd.kv[shares.key(cid)])["groups"][0]["serving"].values()) == {"query-a", "query-b"}
        holders["query-a"].step()  # loads query-b's half from the store
        assert sealed("query-a") - base == sealed("query-b") - base and base <= sealed("query-a") and holders["query-a"].loaded_segments == len(b_half & base) == 4
        answering.discard("query-b")
        balancer.step()
        assert set(json.loads(etcd.kv[shares.key(cid)])["groups"][0]["serving"].values()) == {"query-a"}
        assert gathered("query", count).count == 477
        rows = gathered("query", QueryRequest(expr="id in [0, 1, 120, 121, 399]", output_fields=["id"]))
        assert rows.fields["id"].values.tolist() == [0, 121]
        assert gathered("search", search).ids.tolist() == owner.engine.search("default", "c", search).ids.tolist()
    finally:
        for f in (owner, *nodes.values()):
            f.close()
        coord.close()
