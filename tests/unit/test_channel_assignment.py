"""How the coordinator gives WAL channels to streaming nodes (roles/coord.py `_assign_once`),
over an in-memory etcd: a channel without a live owner goes to the node with the fewest, epoch
+ 1; once every channel has one, one channel per round moves from the node with the most to
the one with the fewest while they differ by two or more."""

from __future__ import annotations

import json
from typing import Any

from shoal.cluster.roles.common import OWNER_PREFIX
from shoal.cluster.roles.coord import Coordinator
from shoal.cluster.routing import channel_of


class FakeEnv:
    def __init__(self, channels: int, nodes: list[str]) -> None:
        self.kv: dict[str, bytes] = {}
        self._channels = channels
        self.nodes = nodes
        self.store = self

    def channels(self) -> int:
        return self._channels

    def live_nodes(self, role: str) -> dict[str, dict[str, Any]]:
        assert role == "streaming"
        return {n: {"address": f"{n}:1"} for n in self.nodes}

    def list_prefix(self, prefix: str) -> dict[str, bytes]:
        return {k: v for k, v in self.kv.items() if k.startswith(prefix)}

    def put_json(self, key: str, value: dict[str, Any]) -> None:
        self.kv[key] = json.dumps(value).encode()

    def owners(self) -> dict[int, tuple[str, int]]:
        return {int(k.rsplit("/", 1)[1]): (json.loads(v)["node"], json.loads(v)["epoch"])
                for k, v in self.list_prefix(OWNER_PREFIX).items()}


def coordinator(env: FakeEnv) -> Coordinator:
    coord = Coordinator.__new__(Coordinator)
    coord.env = env  # type: ignore[assignment]
    coord.balance_decisions = {}
    return coord


def per_node(env: FakeEnv) -> dict[str, int]:
    out = dict.fromkeys(env.nodes, 0)
    for node, _ in env.owners().values():
        out[node] += 1
    return out


def test_new_channels_spread_over_the_live_nodes() -> None:
    env = FakeEnv(4, ["s1", "s2"])
    coordinator(env)._assign_once()
    assert per_node(env) == {"s1": 2, "s2": 2}
    assert {epoch for _, epoch in env.owners().values()} == {1}


def test_a_gone_owners_channels_go_to_the_others_with_a_new_epoch() -> None:
    env = FakeEnv(4, ["s1", "s2", "s3"])
    coord = coordinator(env)
    coord._assign_once()
    before = env.owners()
    gone = before[0][0]
    env.nodes = [n for n in env.nodes if n != gone]
    coord._assign_once()
    after = env.owners()
    assert all(node != gone for node, _ in after.values())
    for channel, (node, epoch) in before.items():
        if node == gone:
            assert after[channel][1] == epoch + 1  # the new owner's producer fences the old one
        else:
            assert after[channel] == (node, epoch)  # the others are not touched
    assert max(per_node(env).values()) - min(per_node(env).values()) <= 1


def test_a_joining_node_gets_channels_one_per_round_until_even() -> None:
    env = FakeEnv(4, ["s1"])
    coord = coordinator(env)
    coord._assign_once()
    assert per_node(env) == {"s1": 4}
    env.nodes = ["s1", "s2"]
    coord._assign_once()
    assert per_node(env) == {"s1": 3, "s2": 1}  # one move per round
    coord._assign_once()
    assert per_node(env) == {"s1": 2, "s2": 2}
    moved = env.owners()
    coord._assign_once()  # even: nothing moves
    assert env.owners() == moved
    assert coord.balance_decisions == {("channel", "assign"): 4, ("channel", "move"): 2}


def test_an_odd_spread_is_left_alone() -> None:
    env = FakeEnv(3, ["s1", "s2"])
    coord = coordinator(env)
    coord._assign_once()
    assert sorted(per_node(env).values()) == [1, 2]
    before = env.owners()
    coord._assign_once()
    assert env.owners() == before


def test_a_collection_keeps_its_channel() -> None:
    assert [channel_of(cid, 4) for cid in (2, 5, 8, 11, 14)] == [2, 1, 0, 3, 2]
    assert {channel_of(cid, 1) for cid in range(100)} == {0}
