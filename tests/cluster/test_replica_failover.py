"""Replica groups on a cluster of this module's own (`shoal cluster run`, one broker, two query
nodes): `load_collection(replica_number=2)` puts each query node in its own group (the failure
domain is the node), `describe_replica` shows them, three replicas on two nodes is Milvus's
error 304, and a SIGKILLed query node under the mixed load of the fault tests
(`loadgen.MixedLoad`) costs no failed request: the proxy answers each read that met the dead
node from the other replica within the same request. The restarted node joins the group left
empty. The longest gap between successful searches is printed (a figure, not asserted).
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymilvus import MilvusClient, MilvusException

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixtures_cluster import ClusterProcess, own_cluster  # noqa: E402
from loadgen import (  # noqa: E402
    MixedLoad,
    assert_acked_once,
    base_rows,
    create_base_collection,
    read_query,
    read_search,
    visible,
    wait_for,
)

from shoal.cluster.supervisor import admin_call  # noqa: E402

pytestmark = pytest.mark.timeout(900)
COLL = "replicas_load"
KINDS = ("search", "query", "insert")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterProcess]:
    yield from own_cluster(tmp_path_factory, "replicas", query_nodes=2)


@pytest.fixture(scope="module")
def client(cluster: ClusterProcess) -> Iterator[MilvusClient]:
    c = MilvusClient(cluster.uri, timeout=120)
    yield c
    c.close()


def _groups(client: MilvusClient) -> list[tuple[int, ...]]:
    return [tuple(sorted(r.group_nodes)) for r in client.describe_replica(COLL)]


def _two_full_groups(client: MilvusClient) -> list[tuple[int, ...]] | None:
    groups = _groups(client)
    return groups if len(groups) == 2 and all(len(g) == 1 for g in groups) and groups[0] != groups[1] else None


def _regroups(cluster: ClusterProcess) -> int:
    with urllib.request.urlopen(f"{cluster.http_endpoints()['coord-1']}/metrics", timeout=30) as resp:
        m = re.search(r'shoal_balance_decisions_total\{event="replan",action="regroup"\} (\d+)', resp.read().decode())
    return int(m.group(1)) if m else 0


def test_two_replicas_survive_a_sigkilled_query_node(cluster: ClusterProcess, client: MilvusClient) -> None:
    create_base_collection(client, COLL, flush=True)
    client.release_collection(COLL)
    assert client.describe_replica(COLL) == []
    # both query nodes registered (the supervisor reports a node once it serves)
    wait_for(lambda: _load_or_none(client, 2), 120, "two query nodes to load two replicas")
    groups = wait_for(lambda: _two_full_groups(client), 60, "two groups of one node each")
    replicas = client.describe_replica(COLL)
    assert len({r.id for r in replicas}) == 2
    assert all(r.resource_group == "__default_resource_group" and len(r.shards) == 1 for r in replicas)
    assert all(r.shards[0].shard_nodes == set(r.group_nodes) for r in replicas)
    segments = client._get_connection().get_query_segment_info(COLL)  # each segment on a node of each group
    assert segments and sum(s.num_rows for s in segments) == len(base_rows())
    assert all(sorted(s.nodeIds) == sorted(g[0] for g in groups) for s in segments)
    # `shoal cluster status`: who serves what, by the supervisor's names
    (shown,) = [r for r in admin_call(cluster.data_dir, "GET", "/status")["replicas"] if r["collection"] == f"default.{COLL}"]
    assert sorted(shown["groups"]) == [["query-1"], ["query-2"]], shown

    client.release_collection(COLL)
    with pytest.raises(MilvusException) as e:
        client.load_collection(COLL, replica_number=3)
    assert e.value.code == 304 and "currentNodeNum=2" in e.value.message and "expectedNodeNum=3" in e.value.message
    client.load_collection(COLL, replica_number=2)
    expected = {"search": read_search(client, COLL), "query": read_query(client, COLL)}

    load = MixedLoad(cluster.uri, COLL, 10**7, expected)
    load.start()
    try:
        wait_for(lambda: all(len(load.successes(k, 0.0)) >= 3 for k in KINDS), 240, "the load to run")
        regroups = _regroups(cluster)
        pid = cluster.pid("query-1")
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        cluster.wait_restarted("query-1", pid, 240)
        # the coordinator saw the lease lapse (a group emptied) and the new node join it
        wait_for(lambda: _regroups(cluster) > regroups and _two_full_groups(client) not in (None, groups), 240,
              "the restarted query node to join the emptied group")
        back = time.monotonic()
        time.sleep(3)
    finally:
        load.stop()
    failures = load.failures()
    gaps = {k: round(load.longest_gap(k, killed), 1) for k in KINDS}
    print(f"\nreplica_number=2, SIGKILL of query-1: groups {groups} -> {_groups(client)}; regrouped again "
          f"{back - killed:.1f}s after the kill; requests {len(load.requests)}, failed {len(failures)}; "
          f"longest gap between successes (s): {gaps}")
    assert not failures, f"requests failed: {[(r.kind, r.error) for r in failures[:5]]}"
    assert not load.answer_changed, f"reads answered differently: {load.answer_changed[:3]}"
    assert read_search(client, COLL) == expected["search"]
    assert_acked_once(load, visible(client, COLL, 10**7, load.next_id))


def _load_or_none(client: MilvusClient, replicas: int) -> bool:
    try:
        client.load_collection(COLL, replica_number=replicas)
        return True
    except MilvusException as e:
        if e.code != 304:
            raise
        return False
