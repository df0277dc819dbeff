"""`run_role(cfg)`: start one cluster role in this process and serve until SIGTERM/SIGINT.

Each role listens for internal calls on `cfg.port` (the proxy: the Milvus port) and answers
`/healthz` and `/metrics` (`roles.metrics`) on `cfg.http_port`; once it serves it prints one line,
`Shoal <role> listening on HOST:PORT (http HOST:PORT)`, which `shoal cluster run` and tests read.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

from shoal.cluster.roles.common import ClusterEnv, HealthServer, advertise, wait_until
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


def run_role(cfg: Config) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    env = ClusterEnv(cfg, cfg.role)
    if cfg.role == "proxy":
        return _run_proxy(cfg, env, stop)
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
    health.metrics = RoleMetrics(cfg.role, env.node_id, lambda: _engine_of(node)).render
    rpc = RpcServer(cfg.host, cfg.port, node.handlers())
    rpc.start()
    address = advertise(cfg, rpc.port)
    info = {"address": address, "http": advertise(cfg, health.port)}
    try:
        if cfg.role == "coord":
            def standby() -> None:  # a standby serves its part (waiting): it is ready as one
                env.register(info, stop)
                ready.set()
                _announce(cfg, "coord", rpc.port, health.port)
                log.info("coordinator %s is a standby", env.node_id)

            env.campaign(info, stop, on_standby=standby)
            if stop.is_set():
                return 0
            node.become_leader(stop)
            if stop.is_set():
                return 0
            print(f"Shoal coord {env.node_id} is the active coordinator", flush=True)
            if ready.is_set():
                stop.wait()
                return 0
            env.register(info, stop)
        elif cfg.role == "streaming":
            node.start()
            env.register(info, stop)
        elif cfg.role == "query":
            node.start()
            if not wait_until(node.caught_up.is_set, stop, "the WAL tail to catch up"):
                return 0
            env.register(info, stop)
        else:
            node.start()
            env.register(info, stop)
        ready.set()
        _announce(cfg, cfg.role, rpc.port, health.port)
        stop.wait()
    finally:
        ready.clear()
        rpc.stop()
        node.close()
        health.stop()
        env.store.close()
    return 0


def _run_proxy(cfg: Config, env: ClusterEnv, stop: threading.Event) -> int:
    from shoal.cluster.proxy_engine import ClusterEngine
    from shoal.server import NodeServer

    engine = ClusterEngine(env)
    if not wait_until(engine.ready, stop, "the cluster (coordinator, WAL owner, a query node)", period=0.5):
        return 0
    node = NodeServer(cfg, engine_factory=lambda: engine)
    node.start()
    _announce(cfg, "proxy", node.listen_port, node.http_port)
    stop.wait()
    node.stop()
    return 0
