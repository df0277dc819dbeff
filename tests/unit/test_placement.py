"""Replica groups (`shoal.cluster.placement`) and the coordinator's re-planning, without a cluster."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from shoal.cluster import placement
from shoal.engine.replicas import check_replica_change, check_replica_number
from shoal.errors import ShoalError


def test_a_load_splits_the_nodes_into_disjoint_groups() -> None:
    doc = placement.new_doc(7, "default", "c", 2, ["query-a", "query-b", "query-c"])
    assert doc["groups"] == [["query-a", "query-c"], ["query-b"]] and doc["version"] == 1
    groups = placement.groups_of(doc, num_shards=1)
    assert [g.replica_id for g in groups] == [7001, 7002]
    assert [g.node_ids for g in groups] == [[0xA, 0xC], [0xB]]


def test_joins_go_to_the_smallest_group_and_nothing_else_moves() -> None:
    assert placement.plan([["query-a"], ["query-b"]], ["query-a", "query-b", "query-c"]) == [
        ["query-a", "query-c"], ["query-b"]]
    assert placement.plan([["query-a", "query-c"], ["query-b"]], ["query-a", "query-b", "query-c"]) == [
        ["query-a", "query-c"], ["query-b"]]


def test_a_group_left_empty_takes_a_node_from_a_larger_group() -> None:
    assert placement.plan([["query-a", "query-c"], ["query-b"]], ["query-a", "query-c"]) == [["query-a"], ["query-c"]]
    # one node for two groups: the second stays empty until a node joins
    assert placement.plan([["query-a"], ["query-b"]], ["query-a"]) == [["query-a"], []]
    assert placement.plan([["query-a"], []], ["query-a", "query-d"]) == [["query-a"], ["query-d"]]


def test_more_replicas_than_nodes_is_milvus_error_304() -> None:
    assert check_replica_number(0, 1) == 1 and check_replica_number(2, 2) == 2
    with pytest.raises(ShoalError) as e:
        check_replica_number(3, 2)
    assert e.value.code == 304
    assert e.value.message == (
        "resource group node not enough[rg=__default_resource_group][currentNodeNum=2][expectedNodeNum=3]")


def test_a_loaded_collection_keeps_its_replica_number() -> None:
    check_replica_change(0, 3)
    check_replica_change(2, 2)
    check_replica_change(1, -1)
    with pytest.raises(ShoalError) as e:
        check_replica_change(1, 2, partitions=True)
    assert e.value.code == 1100 and e.value.message == (
        "can't change the replica number for loaded partitions: invalid parameter[expected=1][actual=2]")


def test_the_coordinator_regroups_when_query_nodes_come_and_go(tmp_path) -> None:
    from shoal.cluster.roles.coord import Coordinator

    kv: dict[str, bytes] = {}
    store = SimpleNamespace(list_prefix=lambda p: {k: v for k, v in kv.items() if k.startswith(p)},
                            put=kv.__setitem__, get=kv.get)
    nodes: dict[str, dict] = {"query-a": {}, "query-b": {}}
    env = SimpleNamespace(node_id="coord-x", live_nodes=lambda role: dict(nodes), store=store,
                          cfg=SimpleNamespace(segment_placement="copy"),
                          get_json=lambda k: json.loads(kv[k]) if k in kv else None,
                          put_json=lambda k, v: kv.__setitem__(k, json.dumps(v).encode()))
    coord = Coordinator(env, tmp_path)  # type: ignore[arg-type]
    kv[placement.key(5)] = json.dumps(placement.new_doc(5, "default", "c", 2, sorted(nodes))).encode()
    coord._balance_once()
    del nodes["query-b"]
    coord._balance_once()
    doc = json.loads(kv[placement.key(5)])
    assert doc["groups"] == [["query-a"], []] and doc["version"] == 2
    nodes["query-c"] = {}
    coord._balance_once()
    doc = json.loads(kv[placement.key(5)])
    assert doc["groups"] == [["query-a"], ["query-c"]] and doc["version"] == 3
    assert coord.balance_decisions[("replan", "regroup")] == 2
    assert 'shoal_replica_group_nodes{database="default",collection="c",replica="5002"} 1' in coord.metrics_text()


def test_the_proxy_alternates_groups_and_falls_back_to_the_other_replica() -> None:
    import itertools
    import threading
    import time

    from shoal.cluster.proxy_engine import ClusterEngine
    from shoal.cluster.rpc import Unavailable

    engine = object.__new__(ClusterEngine)
    engine._lock = threading.Lock()
    engine._rr = itertools.count()
    engine.share_mode = False
    engine._node_addrs = {"query-a": "h:1", "query-b": "h:2", "query-c": "h:3"}
    engine._query_addrs = sorted(engine._node_addrs.values())
    engine._query_seen = time.monotonic() + 3600  # no etcd: the lists above stay current
    engine._groups = {("default", "c"): [["query-a"], ["query-b"]]}
    firsts = [engine._read_order(("default", "c"))[0] for _ in range(4)]
    assert firsts == ["h:1", "h:2", "h:1", "h:2"]  # round robin across the groups
    assert engine._read_order(("default", "c"))[1:] in (["h:2", "h:3"], ["h:1", "h:3"])  # the other group, then the rest

    calls: list[str] = []

    def read_on(node, method, args, kwargs):  # noqa: ANN001, ANN202
        calls.append(node)
        if node == "h:1":
            raise Unavailable("h:1 did not answer search: UNAVAILABLE")
        return "hits"

    engine._client = lambda address: address  # type: ignore[method-assign]
    engine._read_on = read_on  # type: ignore[method-assign]
    engine._rr = itertools.count()
    assert engine._read("search", "default", "c") == "hits" and calls == ["h:1", "h:2"]  # one request, two nodes
