"""Share mode's pieces together, in one process and without a cluster: an owner and two query
nodes (`Follower`s over one in-memory WAL and one in-memory etcd), the owner's real checkpoint
writer over a directory standing in for S3, the coordinator's `ShareBalancer` and each node's
`ShareHolder`; reads are gathered as the proxy gathers them (`cluster/gather.py`). Checks that
the two nodes end up holding disjoint halves, that gathered answers equal the owner's full
answer, and that when one node leaves, its half loads on the other from the store with the
deletes made since the checkpoint; and that a node joining (or restarting) loads from the
store only what no share names and its own share, the answers exact at every step."""

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
from shoal.cluster.roles.checkpoint import CheckpointWriter, resume
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


class Rig:
    """An owner, query nodes and the coordinator's balancer over one in-memory etcd and WAL.
    Every seal is the test's own (the owner's background flush and compaction are off)."""

    def __init__(self, tmp_path: Path, names: list[str]) -> None:
        self.tmp = tmp_path
        self.etcd = MemStore()
        self.live: dict[str, dict[str, str]] = {n: {"address": n} for n in names}
        self.wal = ListWAL()
        self.s3 = DirS3(tmp_path / "s3")
        self.ready = threading.Event()
        self.ready.set()
        self.coord = Engine(tmp_path / "coord", meta_store=VersionedStore(self.etcd))
        self.owner = Follower(self.env("streaming-1"), tmp_path / "owner", wal=self.wal, build_indexes=False)  # type: ignore[arg-type]
        self.nodes: dict[str, Follower] = {}
        self.holders: dict[str, ShareHolder] = {}
        self.applied: dict[str, int] = {}
        self.coord.create_collection("default", "c", CollectionSchema(fields=[
            FieldSchema(name="id", dtype=DataType.INT64, field_id=100, is_primary=True),
            FieldSchema(name="vec", dtype=DataType.FLOAT_VECTOR, field_id=101, dim=2)]))
        self.coord.load_collection("default", "c")
        self.cid = self.coord.describe_collection("default", "c").collection_id
        self.owner.catch_up(0)
        self.owner.lead()
        # the owner's background flush and compaction would seal and merge on their own thread,
        # racing this test's inserts and tails: here the test makes every seal itself
        self.owner.engine.background_flush = self.owner.engine.auto_compact = False
        for n in names:
            self.start(n, from_checkpoint=False)
        self.answering = set(names)
        self.balancer = ShareBalancer(self.env("coord-1"), lambda *_: None)  # type: ignore[arg-type]
        self.balancer._held = lambda addresses: {  # type: ignore[method-assign]
            n: {k: set(v) for k, v in self.holders[n].held().items()} for n in addresses if n in self.answering}
        self.rng = np.random.default_rng(5)
        self.writer = MemCheckpoints(self.env("streaming-1"), 0, self.s3, self.owner.engine, b"", 1,  # type: ignore[arg-type]
                                     lambda: len(self.wal.records), None)
        self.owner.engine.compactor.eligible = self.writer.is_shared  # as the owner in share mode

    def env(self, node_id: str) -> SimpleNamespace:
        etcd = self.etcd
        return SimpleNamespace(
            node_id=node_id, meta_store=lambda: etcd, store=etcd, prefix="t/",
            cfg=Config(segment_max_rows=50, segment_placement="share"), live_nodes=lambda role: dict(self.live),
            get_json=lambda k: json.loads(etcd.kv[k]) if k in etcd.kv else None,
            put_json=lambda k, v: etcd.put(k, json.dumps(v).encode()))

    def start(self, name: str, from_checkpoint: bool = True) -> int:
        """A query node starting as `QueryNode` does: from the newest checkpoint (its share of it),
        then the WAL after it; returns how many segments it loaded from the store."""
        old = self.nodes.pop(name, None)
        if old is not None:
            old.close()
        follower = Follower(self.env(name), self.tmp / f"{name}-{len(self.wal.records)}")  # type: ignore[arg-type]
        holder = ShareHolder(self.env(name), follower, self.s3, self.tmp / f"{name}-cache", self.ready)  # type: ignore[arg-type]
        self.nodes[name], self.holders[name] = follower, holder
        follower.catch_up(0)
        start, loaded = 0, 0
        if from_checkpoint:
            ckpt = json.loads(self.etcd.kv["checkpoint/0"])
            start, loaded = resume(follower, self.env(name), 0, ckpt, self.s3, self.tmp / f"{name}-cache",  # type: ignore[arg-type]
                                   keep=holder.startup_keep(ckpt))
        self.applied[name] = start
        self.tail()
        return loaded

    def insert(self, first: int, n: int) -> None:
        ids = np.arange(first, first + n, dtype=np.int64)
        self.owner.engine.insert("default", "c", "", {"id": Column(ids), "vec": Column(self.rng.random((n, 2), np.float32))}, n)

    def checkpoint(self) -> None:
        self.writer.checkpoint(False)

    def tail(self) -> None:
        for n, f in self.nodes.items():
            for lsn, payload in enumerate(list(self.wal.records), 1):
                if lsn > self.applied[n]:
                    f.apply(0, TailRecord(lsn, payload, f.version))
            self.applied[n] = len(self.wal.records)

    def group(self, members: list[str]) -> None:
        self.etcd.put(f"replicas/{self.cid}", json.dumps({"collection_id": self.cid, "database": "default", "name": "c",
                                                          "groups": [sorted(members)]}).encode())

    def doc(self) -> dict[str, Any]:
        return json.loads(self.etcd.kv[shares.key(self.cid)])

    def settle(self) -> None:
        for _ in range(3):
            self.balancer.step()
            for n in sorted(self.answering):
                self.holders[n].step()

    def gathered(self, method: str, req: Any) -> Any:
        """A read as the proxy gathers it, over the group's live nodes and the current document."""
        members = json.loads(self.etcd.kv[f"replicas/{self.cid}"])["groups"][0]
        plan = shares.read_shares(self.doc()["groups"][0], [n for n in members if n in self.live])
        args = ("default", "c", req)
        schema = self.owner.engine.describe_collection("default", "c").schema
        gather.check(method, args, schema)
        parts = []
        for call, asked in gather.node_calls(method, args, schema):
            parts.append([])
            for n, share in sorted(plan.items()):
                token = READ_SHARE.set(self.holders[n].select(share))
                try:
                    engine = self.nodes[n].engine
                    parts[-1].append(gather.node_part(engine, call, asked, getattr(engine, call)(*asked)))
                finally:
                    READ_SHARE.reset(token)
        return gather.merge(method, args, parts, schema)

    def exact(self) -> None:
        """The gathered count(*), search and query equal the owner's own answers."""
        count = QueryRequest(expr="", output_fields=["count(*)"])
        assert self.gathered("query", count).count == self.owner.engine.query("default", "c", count).count
        search = SearchRequest(anns_field="vec", queries=np.random.default_rng(9).random((2, 2), np.float32), topk=7,
                               metric_type="L2", output_fields=["id"])
        got, want = self.gathered("search", search), self.owner.engine.search("default", "c", search)
        assert got.ids.tolist() == want.ids.tolist() and got.topks == want.topks
        rows = QueryRequest(expr="id < 130 or id >= 1000", output_fields=["id"], limit=1000)
        got_rows, want_rows = self.gathered("query", rows), self.owner.engine.query("default", "c", rows)
        assert got_rows.fields["id"].values.tolist() == want_rows.fields["id"].values.tolist()

    def sealed(self, n: str) -> set[int]:
        return {s.segment_id for s in self.nodes[n].engine.datas[self.cid].segments if s.sealed}

    def shared_base(self) -> None:
        """Eight sealed 50-row segments in a checkpoint, shared out over the live nodes."""
        for i in range(8):
            self.insert(i * 50, 50)
        self.owner.engine.flush("default", ["c"])
        self.checkpoint()
        self.tail()
        self.group(sorted(self.live))
        self.settle()

    def close(self) -> None:
        for f in (self.owner, *self.nodes.values()):
            f.close()
        self.coord.close()


def test_two_nodes_share_the_segments_and_a_leaving_nodes_half_loads_on_the_other(tmp_path: Path,
                                                                                   monkeypatch) -> None:
    monkeypatch.setattr(shares_node, "RELEASE_AFTER_S", 0.0)
    rig = Rig(tmp_path, ["query-a", "query-b"])
    try:
        rig.shared_base()
        base = rig.sealed("query-a") | rig.sealed("query-b")
        assert len(base) == 8 and len(rig.sealed("query-a")) == 4 and not rig.sealed("query-a") & rig.sealed("query-b")
        assert rig.gathered("query", QueryRequest(expr="", output_fields=["count(*)"])).count == 400
        rig.exact()

        # after the checkpoint: a sealed segment and growing rows no share names (every node holds
        # them, the group's first node answers for them), and deletes
        rig.insert(1000, 60)
        rig.insert(1100, 20)
        rig.owner.engine.delete("default", "c", "", "id in [1, 120, 399]")
        rig.tail()
        assert len(rig.sealed("query-a") - base) == len(rig.sealed("query-b") - base) == 1
        assert rig.gathered("query", QueryRequest(expr="", output_fields=["count(*)"])).count == 477
        b_half = rig.sealed("query-b")
        del rig.live["query-b"]  # query-b drains: out of the group, still answering until query-a holds its half
        rig.group(["query-a"])
        rig.balancer.step()
        assert set(rig.doc()["groups"][0]["serving"].values()) == {"query-a", "query-b"}
        rig.holders["query-a"].step()  # loads query-b's half from the store
        assert rig.sealed("query-a") - base == rig.sealed("query-b") - base and base <= rig.sealed("query-a")
        assert rig.holders["query-a"].loaded_segments == len(b_half & base) == 4
        rig.answering.discard("query-b")
        rig.balancer.step()
        assert set(rig.doc()["groups"][0]["serving"].values()) == {"query-a"}
        assert rig.gathered("query", QueryRequest(expr="", output_fields=["count(*)"])).count == 477
        rows = rig.gathered("query", QueryRequest(expr="id in [0, 1, 120, 121, 399]", output_fields=["id"]))
        assert rows.fields["id"].values.tolist() == [0, 121]
        rig.exact()
    finally:
        rig.close()


def test_a_joining_or_restarting_node_loads_only_its_share_and_answers_stay_exact(tmp_path: Path,
                                                                                   monkeypatch) -> None:
    monkeypatch.setattr(shares_node, "RELEASE_AFTER_S", 0.0)
    rig = Rig(tmp_path, ["query-a", "query-b"])
    try:
        rig.shared_base()
        named = {int(s) for s in rig.doc()["groups"][0]["serving"]}
        assert len(named) == 8
        # a segment sealed into a newer checkpoint the document does not name yet, growing rows,
        # and deletes after that checkpoint, in segments of both nodes
        rig.insert(1000, 50)
        rig.owner.engine.flush("default", ["c"])
        rig.checkpoint()
        rig.insert(1100, 30)
        rig.owner.engine.delete("default", "c", "", "id in [1, 120, 260, 399, 1003]")
        rig.tail()

        # query-0 joins (first by name: it answers for the unnamed data once in the group); it loads
        # only the segment no share names, and leaves the 8 shared ones to their nodes
        rig.live["query-0"] = {"address": "query-0"}
        assert rig.start("query-0") == 1
        assert rig.holders["query-0"].skipped_segments == 8 and not rig.sealed("query-0") & named
        rig.exact()  # not in the group yet: query-a and query-b answer
        rig.answering.add("query-0")
        rig.group(sorted(rig.live))
        rig.balancer.step()  # targets move to query-0; reads still go where the segments are
        mine = {int(s) for s, n in rig.doc()["groups"][0]["target"].items() if n == "query-0"}
        serving = {int(s) for s, n in rig.doc()["groups"][0]["serving"].items() if n == "query-0"}
        assert len(mine) > 1 and serving == mine & rig.sealed("query-0") and len(serving) <= 1
        rig.exact()
        rig.holders["query-0"].step()  # loads its share, with the deletes made since the checkpoint
        rig.exact()
        rig.settle()
        rig.exact()
        held = [rig.sealed(n) & (named | mine) for n in sorted(rig.live)]
        assert sum(len(h) for h in held) == len(named | mine) == 9  # each shared segment held once
        assert rig.holders["query-0"].loaded_segments == len(mine & named)  # the 9th it loaded at start

        # query-a restarts under the same name while still in the group: it loads what no share
        # names (nothing now) and its own share, not the whole checkpoint
        a_share = {int(s) for s, n in rig.doc()["groups"][0]["target"].items() if n == "query-a"}
        rig.checkpoint()
        assert rig.start("query-a") == len(a_share) < 9
        rig.exact()
        rig.settle()
        rig.exact()
        assert rig.holders["query-a"].loaded_segments == 0 and rig.sealed("query-a") & (named | mine) == a_share
    finally:
        rig.close()


def test_the_owners_compaction_moves_to_the_target_in_one_step_and_answers_stay_exact(tmp_path: Path,
                                                                                      monkeypatch) -> None:
    monkeypatch.setattr(shares_node, "RELEASE_AFTER_S", 0.0)
    rig = Rig(tmp_path, ["query-a", "query-b"])
    try:
        for i in range(6):  # small segments (20 rows, under half a full one): the compaction merges them
            rig.insert(i * 50, 20)
            rig.owner.engine.flush("default", ["c"])
        rig.insert(1000, 50)
        rig.owner.engine.flush("default", ["c"])
        rig.insert(1100, 15)  # a small segment sealed after the checkpoint: not shared, so not compacted
        rig.owner.engine.delete("default", "c", "", "id in [0, 51, 1003]")
        rig.checkpoint()
        rig.owner.engine.flush("default", ["c"])
        rig.insert(1200, 10)  # growing
        rig.tail()
        rig.group(sorted(rig.live))
        rig.settle()
        before = {int(s) for s in rig.doc()["groups"][0]["serving"]}
        assert len(before) == 7
        rig.exact()

        state = rig.owner.engine.compaction_state(rig.owner.engine.compact("default", "c"))
        for _ in range(200):
            if state.state == "Completed":
                break
            threading.Event().wait(0.05)
        targets = {p.target for p in state.plans if p.state == "Completed"} - {0}
        sources = {s for p in state.plans for s in p.sources}
        assert targets and sources <= before and len(sources) > len(targets)
        rig.owner.engine.delete("default", "c", "", "id in [1, 100, 1004]")  # after the merge
        rig.tail()  # the nodes note the COMPACT records; they keep the sources, still served
        rig.exact()
        rig.checkpoint()  # names the targets, not the sources
        # query-0 starts from that checkpoint before the document names the targets: it loads
        # neither them (their sources answer) nor, of course, the sources; then it answers the rest
        rig.live["query-0"] = {"address": "query-0"}
        rig.start("query-0")
        assert not rig.sealed("query-0") & (targets | sources)
        rig.answering.add("query-0")
        rig.group(sorted(rig.live))
        rig.exact()
        rig.balancer.step()
        doc = rig.doc()["groups"][0]
        assert targets <= {int(s) for s in doc["target"]} and not targets & {int(s) for s in doc["serving"]}
        assert sources <= {int(s) for s in doc["serving"]}  # still answered by the sources
        rig.exact()
        for n in sorted(rig.live):
            rig.holders[n].step()  # the targets' nodes load them (with the deletes since)
        rig.exact()
        rig.balancer.step()  # one version: the targets served, the sources dropped
        doc = rig.doc()["groups"][0]
        assert targets <= {int(s) for s in doc["serving"]} and not sources & {int(s) for s in doc["serving"]}
        rig.exact()
        rig.settle()  # the sources' nodes release them
        rig.exact()
        held = [rig.sealed(n) & targets for n in sorted(rig.live)]
        assert not sources & set().union(*(rig.sealed(n) for n in rig.live))
        assert sum(len(h) for h in held) == len(targets)  # each merged segment held once
        assert rig.gathered("query", QueryRequest(expr="", output_fields=["count(*)"])).count == 6 * 20 + 50 + 15 + 10 - 6
    finally:
        rig.close()


def test_a_merged_segment_no_node_holds_is_answered_by_its_sources() -> None:
    merged = {9: [1, 2]}  # segment 9 is the owner's merge of 1 (served at a) and 2 (never shared out)
    serving = {9: "b"}
    shares.keep_sources(serving, merged, {1: "a"}, {"a": {1, 2}, "b": {2}})
    assert serving == {1: "a", 2: "a"}
    serving = {9: "b"}  # a source no node holds any more: the merged segment is served, reads retry
    shares.keep_sources(serving, merged, {1: "a"}, {"a": {2}, "b": {2}})
    assert serving == {9: "b"}
    serving = {9: "b"}  # once held, the merged segment is served and the sources dropped
    shares.keep_sources(serving, merged, {1: "a"}, {"a": {1, 2}, "b": {9}})
    assert serving == {9: "b"}
