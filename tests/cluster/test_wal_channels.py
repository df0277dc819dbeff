"""Several WAL channels shared by the streaming nodes, on a cluster of this module's own
(`shoal cluster run --wal-channels 2 --streaming-nodes 2`, one broker, one query node):
- collections spread over the channels (`routing.channel_of`), each channel owned by another
  streaming node, each checkpointed on its own; a query node started later loads both
  checkpoints and answers both collections as the running one does;
- under the mixed load of the fault tests on one collection per channel (searches, queries,
  inserts, each thread its own pymilvus client at default retry settings): streaming nodes
  2 -> 1 by SIGTERM (the drained node's channel goes to the other), 1 -> 2 (the coordinator
  moves one channel to the new node: balance), then SIGKILL of one channel's owner (its channel
  goes to a live node; the other channel's owner is untouched). Zero failed requests, the reads
  answer as before, every acknowledged insert is there exactly once.
"""

from __future__ import annotations

import itertools
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymilvus import MilvusClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixtures_cluster import ClusterProcess, extra_query_node, own_cluster  # noqa: E402
from loadgen import (  # noqa: E402
    BASE,
    MixedLoad,
    assert_acked_once,
    create_base_collection,
    read_query,
    read_search,
    visible,
    wait_for,
)

from shoal.cluster.routing import channel_of  # noqa: E402
from shoal.cluster.supervisor import admin_call  # noqa: E402

pytestmark = pytest.mark.timeout(1200)
CHANNELS = 2
KINDS = ("search", "query", "insert")
_ids = itertools.count(10**7, 100_000)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterProcess]:
    yield from own_cluster(tmp_path_factory, "channels", streaming_nodes=2,
                           extra_args=["--wal-channels", str(CHANNELS)])  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def collections(cluster: ClusterProcess) -> dict[int, str]:
    """One flushed base collection on each channel: channel -> name."""
    client = MilvusClient(cluster.uri, timeout=60)
    out: dict[int, str] = {}
    try:
        for i in range(6):
            name = f"ch_{i}"
            create_base_collection(client, name, flush=True)
            out.setdefault(channel_of(client.describe_collection(name)["collection_id"], CHANNELS), name)
            if len(out) == CHANNELS:
                return out
    finally:
        client.close()
    raise AssertionError(f"six collections did not cover {CHANNELS} channels: {out}")


def _status(cluster: ClusterProcess) -> dict:
    return admin_call(cluster.data_dir, "GET", "/status")


def _owners(cluster: ClusterProcess) -> dict[int, str]:
    return {int(c): o["owner"] for c, o in _status(cluster)["channels"].items()}


def test_collections_spread_over_channels_owned_by_different_streaming_nodes(
        cluster: ClusterProcess, collections: dict[int, str], tmp_path: Path) -> None:
    owners = wait_for(lambda: (o := _owners(cluster)) and len(set(o.values())) == CHANNELS and o, 60,
                      "each channel owned by its own streaming node")
    assert sorted(owners) == list(range(CHANNELS)), owners
    client = MilvusClient(cluster.uri, timeout=60)
    try:
        answers = {name: (read_search(client, name), read_query(client, name)) for name in collections.values()}
        for channel, name in collections.items():
            ckpt = cluster.etcd_json(f"shoal/checkpoint/{channel}")  # the flush committed the channel's checkpoint
            assert ckpt is not None, channel
            cid = str(client.describe_collection(name)["collection_id"])
            assert cid in ckpt["collections"], (channel, name, sorted(ckpt["collections"]))
            other = cluster.etcd_json(f"shoal/checkpoint/{1 - channel}")
            assert other is None or cid not in other["collections"]  # on its own channel only
        with extra_query_node(cluster, tmp_path / "late") as node:  # loads both checkpoints, tails both
            assert node.startup["segments_loaded"] >= CHANNELS, node.startup
            assert set(node.follower.applied) == set(range(CHANNELS))
            held = node.holdings()
            for name in collections.values():
                assert sum(rows for _, rows in held[f"default.{name}"]["sealed"]) == BASE, (name, held)
        for name, (search, query) in answers.items():  # the running node, unchanged
            assert (read_search(client, name), read_query(client, name)) == (search, query)
    finally:
        client.close()


def test_streaming_nodes_drain_join_and_fail_under_load_without_a_failed_request(
        cluster: ClusterProcess, collections: dict[int, str]) -> None:
    client = MilvusClient(cluster.uri, timeout=60)
    expected = {name: {"search": read_search(client, name), "query": read_query(client, name)}
                for name in collections.values()}
    client.close()
    firsts = {name: next(_ids) for name in collections.values()}
    loads = {name: MixedLoad(cluster.uri, name, firsts[name], expected[name]) for name in collections.values()}
    for load in loads.values():
        load.start()
    steps: list[str] = []
    try:
        deadline = time.monotonic() + 240
        while not all(len(load.successes(k, 0.0)) >= 3 for load in loads.values() for k in KINDS):
            assert time.monotonic() < deadline, "the load did not start"
            time.sleep(0.2)
        began = time.monotonic()

        started = time.monotonic()
        admin_call(cluster.data_dir, "POST", "/scale?role=streaming&count=1")  # SIGTERM: a drain
        owners = wait_for(lambda: (o := _owners(cluster)) and len(set(o.values())) == 1 and o, 60,
                          "both channels on the one streaming node left")
        steps.append(f"2 -> 1 streaming nodes: {owners} in {time.monotonic() - started:.1f}s")

        started = time.monotonic()
        admin_call(cluster.data_dir, "POST", "/scale?role=streaming&count=2")
        owners = wait_for(lambda: (o := _owners(cluster)) and len(set(o.values())) == CHANNELS and o, 120,
                          "a channel moved to the new streaming node (balance)")
        steps.append(f"1 -> 2 streaming nodes: {owners} in {time.monotonic() - started:.1f}s")
        time.sleep(3)

        victim_channel = max(owners)
        victim, kept = owners[victim_channel], owners[1 - victim_channel]
        started = time.monotonic()
        os.kill(cluster.pid(victim), signal.SIGKILL)
        wait_for(lambda: _owners(cluster).get(1 - victim_channel) == kept and _served(cluster, victim_channel),
                 120, "the killed owner's channel served again")
        steps.append(f"SIGKILL {victim} (channel {victim_channel}): {_owners(cluster)} in "
                     f"{time.monotonic() - started:.1f}s")
        time.sleep(5)  # load on the final layout
    finally:
        for load in loads.values():
            load.stop()
    print("\n" + "\n".join(steps))
    client = MilvusClient(cluster.uri, timeout=60)
    try:
        for name, load in loads.items():
            failures = load.failures()
            gaps = {k: round(load.longest_gap(k, began), 1) for k in KINDS}
            print(f"{name}: requests {len(load.requests)}, failed {len(failures)}; longest gap (s): {gaps}")
            assert not failures, f"{name}: requests failed: {[(r.kind, r.error) for r in failures[:5]]}"
            assert not load.answer_changed, f"{name}: reads answered differently: {load.answer_changed[:3]}"
            assert read_search(client, name) == expected[name]["search"]
            assert read_query(client, name) == expected[name]["query"]
            assert_acked_once(load, visible(client, name, firsts[name], load.next_id))
    finally:
        client.close()


def _served(cluster: ClusterProcess, channel: int) -> bool:
    """Whether the streaming node the channel's owner key names serves it now."""
    from shoal.cluster.rpc import RpcClient, Unavailable

    owner = cluster.etcd_json(f"shoal/wal/owner/{channel}")
    if owner is None:
        return False
    client = RpcClient(str(owner["address"]))
    try:
        client.call("position_of", channel, timeout=2)
        return True
    except Unavailable:
        return False
    finally:
        client.close()
