"""Faults on the session's local cluster (`shoal cluster run`, two streaming nodes, three Kafka
brokers; these tests run last, see conftest.py):

- SIGKILL of the WAL channel's owner during a stream of inserts and deletes: once the other
  streaming node took over, every acknowledged insert is there exactly once, every
  acknowledged delete is gone, and a batch that failed is all there or all absent;
- a stale owner (SIGSTOPped until the channel moved, then resumed) cannot write;
- SIGKILL of the Kafka broker leading the WAL partition (replication factor 3): writes go on
  and nothing acknowledged is lost;
- (SIGKILL of the query node, the index node, the active coordinator and the proxy under a
  mixed load: test_faults_roles.py);
- SIGKILL of `shoal cluster run` itself takes every child with it, and running it again on
  the same directory serves the same data.

No timing is asserted; every wait is generous (a loaded 2-core CI machine).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pymilvus import MilvusClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fixtures_cluster import ClusterProcess  # noqa: E402
from loadgen import wait_for  # noqa: E402

# a test may also wait for the session's cluster to start (minutes on a loaded machine)
pytestmark = pytest.mark.timeout(900)
OWNER_KEY = "shoal/wal/owner/0"
WAL_TOPIC = "shoal.wal"
DIM = 4
COLL = "faults"
BATCH = 20


@pytest.fixture(scope="module")
def cluster(shoal_cluster: ClusterProcess) -> ClusterProcess:
    return shoal_cluster


@pytest.fixture(scope="module")
def client(cluster: ClusterProcess) -> Iterator[MilvusClient]:
    c = MilvusClient(cluster.uri, timeout=60)
    if c.has_collection(COLL):
        c.drop_collection(COLL)
    c.create_collection(COLL, dimension=DIM, consistency_level="Strong")
    yield c
    c.close()


def _rows(ids: range) -> list[dict]:
    return [{"id": i, "vector": [float(i % 13), 1.0, 0.0, float(i % 5)]} for i in ids]


def _visible(client: MilvusClient, ids: list[int]) -> dict[int, int]:
    """How many times each id comes back from a Strong query."""
    seen: dict[int, int] = {}
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        rows = client.query(COLL, filter=f"id in {chunk}", output_fields=["id"], consistency_level="Strong")
        for row in rows:
            seen[int(row["id"])] = seen.get(int(row["id"]), 0) + 1
    return seen


def _owner(cluster: ClusterProcess) -> tuple[str, dict]:
    owner = wait_for(lambda: cluster.etcd_json(OWNER_KEY), 120, "a WAL channel owner")
    assert isinstance(owner, dict)
    port = int(str(owner["address"]).rsplit(":", 1)[1])
    return cluster.name_for_port(port), owner


class Writer:
    """Inserts batches of new ids and deletes some acknowledged ones; records every outcome."""

    def __init__(self, client: MilvusClient) -> None:
        self.client = client
        self.next_id = 0
        self.acked: list[int] = []
        self.deleted: set[int] = set()
        self.failed_batches: list[list[int]] = []
        self.failed_deletes: list[list[int]] = []

    def step(self) -> bool:
        ids = range(self.next_id, self.next_id + BATCH)
        self.next_id += BATCH
        ok = True
        try:
            self.client.insert(COLL, _rows(ids), timeout=30)
            self.acked.extend(ids)
        except Exception:
            self.failed_batches.append(list(ids))
            ok = False
        live = [i for i in self.acked if i not in self.deleted]
        if ok and len(live) > 3 * BATCH:
            victims = live[-2 * BATCH:-2 * BATCH + 3]  # three rows of an earlier acknowledged batch
            try:
                self.client.delete(COLL, ids=victims, timeout=30)
                self.deleted.update(victims)
            except Exception:
                self.failed_deletes.append(victims)
                ok = False
        return ok

    def check(self, every: list[int] | None = None) -> None:
        every = list(range(self.next_id)) if every is None else every
        seen = _visible(self.client, every)
        unresolved = {i for d in self.failed_deletes for i in d}
        for i in self.acked:
            if i in self.deleted:
                assert i not in seen, f"acknowledged delete of {i} lost"
            elif i not in unresolved:
                assert seen.get(i) == 1, f"acknowledged insert {i} seen {seen.get(i, 0)} times"
        for batch in self.failed_batches:
            present = [i for i in batch if i in seen]
            assert len(present) in (0, len(batch)), f"a failed batch is half visible: {present}"
            assert all(seen[i] == 1 for i in present)


def test_sigkill_of_the_shard_owner_keeps_every_acknowledged_write_exactly_once(
        cluster: ClusterProcess, client: MilvusClient) -> None:
    writer = Writer(client)
    for _ in range(10):
        writer.step()
    assert writer.acked, "no write was acknowledged before the kill"
    name, owner = _owner(cluster)
    os.kill(cluster.pid(name), signal.SIGKILL)
    killed_at = time.monotonic()

    def moved() -> bool:
        now = cluster.etcd_json(OWNER_KEY) or {}
        return now.get("epoch", 0) > owner["epoch"]

    deadline = time.monotonic() + 240
    acked_after = 0
    while time.monotonic() < deadline and not (moved() and acked_after >= 10):
        if writer.step() and moved():
            acked_after += 1
        else:
            time.sleep(0.2)
    assert moved(), f"the channel did not move after the owner's SIGKILL:\n{cluster.tail()}"
    assert acked_after >= 10, f"writes did not resume on the new owner:\n{cluster.tail()}"
    writer.check()
    print(f"owner kill: {len(writer.acked)} rows and {len(writer.deleted)} deletes acknowledged, "
          f"{len(writer.failed_batches)} insert and {len(writer.failed_deletes)} delete batches failed, "
          f"{time.monotonic() - killed_at:.1f}s from the kill to 10 writes on the new owner")
    assert client.query(COLL, filter="", output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"] == \
        len(_visible(client, list(range(writer.next_id))))


def test_a_stale_owner_cannot_write(cluster: ClusterProcess, client: MilvusClient) -> None:
    from shoal.cluster.rpc import RpcClient, Unavailable
    from shoal.schema import Column

    name, owner = _owner(cluster)
    pid = cluster.pid(name)
    stale_id = 10**9
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_for(lambda: (cluster.etcd_json(OWNER_KEY) or {}).get("epoch", 0) > owner["epoch"], 240,
              "the channel to move away from the stopped owner")
        # The new owner serves once it fenced the old producer (init_transactions) and replayed.
        wait_for(lambda: _try_insert(client, [stale_id + 1]), 240, "a write through the new owner")
    finally:
        os.kill(pid, signal.SIGCONT)
    batch = {"id": Column(np.array([stale_id], dtype=np.int64)), "vector": Column(np.zeros((1, DIM), dtype=np.float32))}
    # Straight to the resumed stale owner, before it can notice anything: refused either by its
    # own ownership check or by Kafka (its transactional producer was fenced).
    with pytest.raises(Unavailable):
        RpcClient(str(owner["address"])).call("write", "insert", 0, ("default", COLL, "", batch, 1), {})
    seen = _visible(client, [stale_id, stale_id + 1])
    assert seen == {stale_id + 1: 1}


def _try_insert(client: MilvusClient, ids: list[int]) -> bool:
    try:
        client.insert(COLL, [{"id": i, "vector": [0.0] * DIM} for i in ids], timeout=30)
        return True
    except Exception:
        return False


def test_losing_the_kafka_broker_that_leads_the_wal_loses_no_acknowledged_write(
        cluster: ClusterProcess, client: MilvusClient) -> None:
    from confluent_kafka.admin import AdminClient

    meta = AdminClient({"bootstrap.servers": cluster.kafka_bootstrap}).list_topics(WAL_TOPIC, timeout=60)
    partition = meta.topics[WAL_TOPIC].partitions[0]
    assert len(partition.replicas) == 3, partition.replicas
    leader = f"kafka-{partition.leader}"
    writer = Writer(client)
    writer.next_id = 2 * 10**6  # clear of the earlier tests' ids
    start = writer.next_id
    for _ in range(5):
        writer.step()
    pid = cluster.pid(leader)
    os.kill(pid, signal.SIGKILL)
    acked_before = len(writer.acked)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(writer.acked) < acked_before + 10 * BATCH:
        if not writer.step():
            time.sleep(0.2)
    assert len(writer.acked) >= acked_before + 10 * BATCH, f"writes did not go on without {leader}"
    every = list(range(start, writer.next_id))
    writer.check(every)
    print(f"broker loss: {len(writer.acked)} rows acknowledged, {len(writer.failed_batches)} batches failed")


def test_sigkill_of_the_supervisor_takes_its_children_and_a_rerun_resumes(
        cluster: ClusterProcess, client: MilvusClient) -> None:
    before = client.query(COLL, filter="", output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"]
    assert before > 0
    cluster.refresh()
    pids = [child.pid for child in cluster.children.values()]
    cluster.kill()

    def all_gone() -> bool:
        for pid in pids:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                continue
            try:  # a zombie waiting for its (dead) parent's reaper counts as gone
                if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
                    continue
            except OSError:
                continue
            return False
        return True

    wait_for(all_gone, 60, "every child of the killed supervisor to exit")
    cluster.start()
    again = MilvusClient(cluster.uri, timeout=60)
    try:
        after = wait_for(lambda: _count_or_none(again), 240, "the resumed cluster to answer")
        assert after == before
    finally:
        again.close()


def _count_or_none(client: MilvusClient) -> int | None:
    try:
        return int(client.query(COLL, filter="", output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"])
    except Exception:
        return None
