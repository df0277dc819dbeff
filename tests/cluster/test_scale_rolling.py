"""Query nodes joining and leaving, and a rolling restart of every role, under load, on a
cluster of this module's own (`shoal cluster run`, one broker, one of each role), changed at
run time through the supervisor's admin port (`shoal cluster scale|restart`).

- Scale query nodes 1 -> 3 under the mixed load of the fault tests (`loadgen.MixedLoad`:
  searches, queries, inserts, each thread with its own pymilvus client at default retry
  settings): the new nodes load the flushed segments from S3 and catch up before they
  register, so no read sees a gap; then 3 -> 1 by SIGTERM (each drains: it withdraws its
  registration and answers for a while before it exits). Zero failed requests.
- A rolling restart of every role (coordinator, streaming node, query node, index node, proxy),
  one at a time as a Kubernetes rolling update does: the replacement serves first, then the
  old process gets SIGTERM and drains. Zero failed requests.
After each: every read during the load gave the answers of before, and every acknowledged
insert is there exactly once. The seconds of each step are printed (figures, not asserted).
"""

from __future__ import annotations

import itertools
import re
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pymilvus import MilvusClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixtures_cluster import ClusterProcess, own_cluster  # noqa: E402
from loadgen import (  # noqa: E402
    MixedLoad,
    assert_acked_once,
    create_base_collection,
    read_query,
    read_search,
    visible,
)

from shoal.cluster.rpc import RpcClient  # noqa: E402
from shoal.cluster.supervisor import admin_call  # noqa: E402

pytestmark = pytest.mark.timeout(1200)
COLL = "scale_load"
KINDS = ("search", "query", "insert")
_ids = itertools.count(10**7, 100_000)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterProcess]:
    yield from own_cluster(tmp_path_factory, "scale")


@pytest.fixture(scope="module")
def expected(cluster: ClusterProcess) -> dict[str, object]:
    client = MilvusClient(cluster.uri, timeout=60)
    create_base_collection(client, COLL, flush=True)
    answers = {"search": read_search(client, COLL), "query": read_query(client, COLL)}
    client.close()
    return answers


def _run_under_load(cluster: ClusterProcess, expected: dict, steps: list[Callable[[], dict]]) -> list[dict]:
    """Run each step (an admin call) in turn while the load runs; returns their answers."""
    first_id = next(_ids)
    load = MixedLoad(cluster.uri, COLL, first_id, expected)
    load.start()
    answers = []
    try:
        deadline = time.monotonic() + 240
        while not all(len(load.successes(k, 0.0)) >= 3 for k in KINDS):
            assert time.monotonic() < deadline, "the load did not start"
            time.sleep(0.2)
        began = time.monotonic()
        for step in steps:
            started = time.monotonic()
            answers.append(step())
            print(f"\n{time.monotonic() - started:.1f}s: {answers[-1]}")
        time.sleep(3)  # a little load on the final layout
    finally:
        load.stop()
    failures = load.failures()
    gaps = {k: round(load.longest_gap(k, began), 1) for k in KINDS}
    print(f"requests {len(load.requests)}, failed {len(failures)}; longest gap between successes (s): {gaps}")
    assert not failures, f"requests failed: {[(r.kind, r.error) for r in failures[:5]]}"
    assert not load.answer_changed, f"reads answered differently: {load.answer_changed[:3]}"
    client = MilvusClient(cluster.uri, timeout=60)
    try:
        assert read_search(client, COLL) == expected["search"]
        assert read_query(client, COLL) == expected["query"]
        assert_acked_once(load, visible(client, COLL, first_id, load.next_id))
    finally:
        client.close()
    return answers


def _processes(cluster: ClusterProcess) -> dict[str, dict]:
    return {p["name"]: p for p in admin_call(cluster.data_dir, "GET", "/status")["processes"]}


def _scale(cluster: ClusterProcess, count: int) -> dict:
    return admin_call(cluster.data_dir, "POST", f"/scale?role=query&count={count}")


def test_scale_query_nodes_1_to_3_and_back_under_load(cluster: ClusterProcess, expected: dict) -> None:
    assert [n for n in _processes(cluster) if n.startswith("query-")] == ["query-1"]
    deadline = time.monotonic() + 60
    while _balance(cluster)["nodes"] != 1:  # the coordinator has seen query-1
        assert time.monotonic() < deadline, _balance(cluster)
        time.sleep(0.5)
    before = _balance(cluster)

    def joined() -> dict:
        answer = _scale(cluster, 3)
        procs = _processes(cluster)
        for name in ("query-2", "query-3"):  # loaded the flushed segments from S3 before serving
            client = RpcClient(f"127.0.0.1:{procs[name]['ports']['grpc']}")
            answer[name] = client.call("startup", timeout=60)
            client.close()
            assert answer[name]["segments_loaded"] >= 1, answer
        return answer

    up, down = _run_under_load(cluster, expected, [joined, lambda: _scale(cluster, 1)])
    assert sorted(up["steps"][0]["added"]) == ["query-2", "query-3"]
    assert [s["removed"] for s in down["steps"]] == ["query-3", "query-2"]
    assert [n for n in _processes(cluster) if n.startswith("query-")] == ["query-1"]
    # the coordinator logged and counted both joins and both leaves (nothing to move: full copies)
    def counted() -> bool:  # at least: a registration that lapsed under load counts as a leave and a join
        now = _balance(cluster)
        return now["join"] >= before["join"] + 2 and now["leave"] >= before["leave"] + 2 and now["nodes"] == 1

    deadline = time.monotonic() + 60
    while not counted():
        assert time.monotonic() < deadline, (before, _balance(cluster))
        time.sleep(0.5)


def _balance(cluster: ClusterProcess) -> dict[str, int]:
    """The active coordinator's counts of query nodes joining and leaving, and of those registered."""
    http = _processes(cluster)["coord-1"]["ports"]["http"]
    with urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics", timeout=30) as resp:
        text = resp.read().decode()
    counts = {"join": 0, "leave": 0, "nodes": 0}
    for event in ("join", "leave"):
        m = re.search(rf'shoal_balance_decisions_total\{{event="{event}",action="none"\}} (\d+)', text)
        counts[event] = int(m.group(1)) if m else 0
    m = re.search(r"^shoal_balance_query_nodes (\d+)", text, re.MULTILINE)
    counts["nodes"] = int(m.group(1)) if m else -1
    return counts


def test_rolling_restart_of_every_role_under_load(cluster: ClusterProcess, expected: dict) -> None:
    before = set(_processes(cluster))
    (answer,) = _run_under_load(cluster, expected, [lambda: admin_call(cluster.data_dir, "POST", "/restart?name=all")])
    restarted = [s["restarted"] for s in answer["steps"]]
    assert {n.rsplit("-", 1)[0] for n in restarted} == {"coord", "streaming", "query", "index", "proxy"}
    after = set(_processes(cluster))
    assert set(restarted) <= before and not set(restarted) & after, (before, after)
