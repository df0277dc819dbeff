"""`run_role(cfg)`: start one cluster role in this process and serve until SIGTERM/SIGINT.

Each role listens for internal calls on `cfg.port` (the proxy: the Milvus port) and answers
`/healthz`, `/readyz` and `/metrics` (`roles.metrics`) on `cfg.http_port`; once it serves it prints
one line, `Shoal <role> listening on HOST:PORT (http HOST:PORT)`, which `shoal cluster run` and
tests read.

SIGTERM (Kubernetes' scale-in and rolling updates) drains: `/readyz` turns 503 at once
(`/healthz` stays 200), the role refuses new work with "unavailable" (the proxy retries it on
another node), hands over what it owns (`drain()` of each role: the coordinator resigns its
lease, the WAL owner gives its channel back to the coordinator, a query node waits for another
query node) and lets the calls in flight finish; the process exits within `drain_grace_s`
whatever happens. SIGINT stops at once (`shoal cluster run` stops a whole cluster that way).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from types import FrameType
from typing import Any

from shoal.cluster.roles.common import ClusterEnv, HealthServer, Registration, advertise, wait_until
from shoal.cluster.roles.metrics import RoleMetrics
from shoal.cluster.rpc import RpcServer
from shoal.config import Config

log = logging.getLogger(__name__)


def _announce(cfg: Config, role: str, port: int, http_port: int) -> None:
    shown = cfg.advertise_host
    print(f"Shoal {role} listening on {shown}:{port} (http {shown}:{http_port})", flush=True)


def _engine_of(node: Any) -> Any:
    """The engine a role's gauges read: the coordinator's catalog engine, a node's follower engine."""
    follower = getattr(node, "follower", None)
    return getattr(follower, "engine", None) if follower is not None else getattr(node, "engine", None)


PROXY_DRAIN_DELAY_S = 3.0  # a draining proxy keeps serving while Services stop sending it connections


class _Drain:
    """Which signal stopped the role: SIGTERM drains, SIGINT does not."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.graceful = False
        self.deadline = 0.0
        self.signalled = False

    def on_signal(self, signum: int) -> None:
        first, self.signalled = not self.signalled, True
        if signum == signal.SIGTERM and first:  # the first signal decides (a SIGINT, then a SIGTERM: no drain)
            self.graceful = True
            grace = float(self.cfg.drain_grace_s)
            self.deadline = time.monotonic() + grace - 1.0  # a second left to close
            log.info("SIGTERM: draining (exit within %.0f s)", grace)
            timer = threading.Timer(grace, lambda: os._exit(0))  # the grace period is a promise
            timer.daemon = True
            timer.start()

    def left(self) -> float:
        return max(0.1, self.deadline - time.monotonic())


def run_role(cfg: Config) -> int:
    stop = threading.Event()
    drain = _Drain(cfg)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        drain.on_signal(signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    env = ClusterEnv(cfg, cfg.role)
    if cfg.role == "proxy":
        return _run_proxy(cfg, env, stop, drain)
    ready = threading.Event()
    health = HealthServer(cfg.host, cfg.http_port, ready)
    node: Any
    data_dir = cfg.data_dir  # one --data per role process: its local cache is wiped at start
    if cfg.role == "coord":
        from shoal.cluster.roles.coord import Coordinator

        node = Coordinator(env, cfg.data_dir / "coord")
    elif cfg.role == "streaming":
        from shoal.cluster.roles.streaming import StreamingNode

        node = StreamingNode(env, data_dir)
    elif cfg.role == "query":
        from shoal.cluster.roles.query import QueryNode

        node = QueryNode(env, data_dir)
    else:
        from shoal.cluster.roles.index_node import IndexNode

        node = IndexNode(env, data_dir)
    health.metrics = RoleMetrics(cfg.role, env.node_id, lambda: _engine_of(node),
                                 getattr(node, "metrics_text", None)).render
    rpc = RpcServer(cfg.host, cfg.port, node.handlers())
    rpc.start()
    address = advertise(cfg, rpc.port)
    info = {"address": address, "http": advertise(cfg, health.port)}
    registration: Registration | None = None
    unregister = threading.Event()  # the registration outlives SIGTERM until the drain withdraws it
    served = False
    try:
        if cfg.role == "coord":
            def standby() -> None:  # a standby serves its part (waiting): it is ready as one
                nonlocal registration
                registration = env.register(info, unregister)
                ready.set()
                health.live.set()
                _announce(cfg, "coord", rpc.port, health.port)
                log.info("coordinator %s is a standby", env.node_id)

            env.campaign(info, stop, on_standby=standby)
            if stop.is_set():
                return 0
            node.become_leader(stop)
            if stop.is_set():
                return 0
            print(f"Shoal coord {env.node_id} is the active coordinator", flush=True)
            if not ready.is_set():
                registration = env.register(info, unregister)
        elif cfg.role == "query":
            node.start()
            if not wait_until(node.caught_up.is_set, stop, "the WAL tail to catch up"):
                return 0
            registration = env.register(info, unregister)
        else:
            node.start()
            registration = env.register(info, unregister)
        if not ready.is_set():
            ready.set()
            health.live.set()
            _announce(cfg, cfg.role, rpc.port, health.port)
        served = True
        stop.wait()
    finally:
        ready.clear()
        if drain.graceful and served:
            try:
                if hasattr(node, "drain"):
                    node.drain(registration, drain.deadline)
                elif registration is not None:  # nothing to hand over (the index node)
                    registration.withdraw()
            except Exception:
                log.exception("draining failed; stopping")
            log.info("drained; stopping")
        unregister.set()
        rpc.stop(drain.left() if drain.graceful else 2.0)
        node.close()
        health.stop()
        env.store.close()
    return 0


def _run_proxy(cfg: Config, env: ClusterEnv, stop: threading.Event, drain: _Drain) -> int:
    from shoal.cluster.proxy_engine import ClusterEngine
    from shoal.server import NodeServer

    engine = ClusterEngine(env)
    if not wait_until(engine.ready, stop, "the cluster (coordinator, WAL owner, a query node)", period=0.5):
        return 0
    node = NodeServer(cfg, engine_factory=lambda: engine)
    node.start()
    _announce(cfg, "proxy", node.listen_port, node.http_port)
    stop.wait()
    if drain.graceful:
        delay = min(PROXY_DRAIN_DELAY_S, drain.left() / 3)
        node.drain(delay, drain.left() - delay)  # the calls in flight get what the grace period leaves
        log.info("drained; stopping")
    node.stop()
    return 0
