"""Graceful drain's pieces that need no cluster: liveness and readiness of a role's HTTP port,
the in-flight gate a draining role closes, and the operator's probes."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request

import pytest

from shoal.cluster.roles.common import HealthServer, InFlight
from shoal.cluster.rpc import Unavailable


def _status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


def test_readyz_is_not_ready_while_starting_or_draining_and_healthz_stays_live() -> None:
    ready = threading.Event()
    health = HealthServer("127.0.0.1", 0, ready)
    try:
        assert (_status(health.port, "/healthz"), _status(health.port, "/readyz")) == (503, 503)  # starting
        ready.set()
        health.live.set()
        assert (_status(health.port, "/healthz"), _status(health.port, "/readyz")) == (200, 200)  # serving
        ready.clear()  # SIGTERM: draining
        assert (_status(health.port, "/healthz"), _status(health.port, "/livez"), _status(health.port, "/readyz")) \
            == (200, 200, 503)
    finally:
        health.stop()


def test_a_closed_gate_refuses_new_calls_as_unavailable_and_waits_for_running_ones() -> None:
    gate = InFlight("test node")
    entered, release = threading.Event(), threading.Event()

    def call() -> None:
        with gate:
            entered.set()
            release.wait(60)

    t = threading.Thread(target=call)
    t.start()
    assert entered.wait(60)
    gate.close()
    with pytest.raises(Unavailable, match="draining"):
        with gate:
            pass
    assert not gate.wait_idle(0.05)  # the running call holds the drain
    threading.Timer(0.1, release.set).start()
    started = time.monotonic()
    assert gate.wait_idle(60)
    assert time.monotonic() - started < 60
    t.join(60)


def test_operator_probes_liveness_on_healthz_and_readiness_on_readyz() -> None:
    from shoal_operator.builders.workloads import default_probes

    probes = default_probes()
    assert probes["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert probes["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_the_coordinator_logs_and_counts_query_nodes_joining_and_leaving(tmp_path) -> None:
    from types import SimpleNamespace

    from shoal.cluster.roles.coord import Coordinator

    nodes: dict[str, dict] = {"query-a": {}}
    coord = Coordinator(SimpleNamespace(
        node_id="coord-x", live_nodes=lambda role: dict(nodes), store=SimpleNamespace(list_prefix=lambda p: {}),
        cfg=SimpleNamespace(segment_placement="copy")), tmp_path)  # type: ignore[arg-type]
    coord._balance_once()  # the first look: what is there already is no event
    nodes.update({"query-b": {}, "query-c": {}})
    coord._balance_once()
    del nodes["query-b"]
    coord._balance_once()
    nodes.clear()
    coord._balance_once()
    assert coord.balance_decisions == {("join", "none"): 2, ("leave", "none"): 1, ("leave", "wait_for_node"): 2}
    text = coord.metrics_text()
    assert 'shoal_balance_decisions_total{event="join",action="none"} 2' in text
    assert "shoal_balance_query_nodes 0" in text


def test_a_draining_server_is_not_ready_but_live_then_stops(tmp_path) -> None:
    from shoal.config import load_config
    from shoal.server import NodeServer

    cfg = load_config(env={}, overrides={"data_dir": tmp_path / "d", "port": 0, "http_port": 0, "host": "127.0.0.1"})
    node = NodeServer(cfg)
    node.start()
    try:
        assert (_status(node.http_port, "/healthz"), _status(node.http_port, "/readyz")) == (200, 200)
        drain = threading.Thread(target=node.drain, args=(60.0, 5.0))
        drain.start()
        deadline = time.monotonic() + 60
        while _status(node.http_port, "/readyz") != 503:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert _status(node.http_port, "/healthz") == 200  # still serving while Services let go of it
        node.stop()  # ends the drain's wait
        drain.join(60)
        assert not drain.is_alive() and not node.serving
    finally:
        node.stop()
