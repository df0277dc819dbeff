"""What every role shares: etcd keys, leased registration, the coordinator election, /healthz.

etcd layout under `cluster_prefix` (default "shoal/"):
- `meta/...`               the catalog (engine.catalog keys) + `catalog_version`
- `nodes/<role>/<id>`      JSON {address, pid, http}; leased, so a dead node disappears
- `coord/leader`           JSON of the active coordinator; leased (active-standby election)
- `wal/owner/<channel>`    JSON {node, address, epoch}: the streaming node that owns a channel
                           (channels: the WAL topic's partitions, `routing.channel_of`)
- `security/state`         users, roles, grants, privilege groups (`security.catalog`), which
                           every proxy reads and changes by compare-and-swap
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from shoal.config import Config
from shoal.http_reply import send_body
from shoal.storage.kafka_wal import client_config, topic_partitions
from shoal.storage.meta_store import EtcdMetaStore

log = logging.getLogger(__name__)

LEADER_KEY = "coord/leader"
OWNER_PREFIX = "wal/owner/"


def owner_key(channel: int) -> str:
    return f"{OWNER_PREFIX}{channel}"


class ClusterEnv:
    """Endpoints and etcd access of one role process."""

    def __init__(self, cfg: Config, role: str) -> None:
        if not cfg.etcd_endpoints:
            raise ValueError(f"role {role} needs etcd_endpoints (--etcd HOST:PORT)")
        if role != "index" and not cfg.kafka_bootstrap:
            raise ValueError(f"role {role} needs kafka_bootstrap (--kafka HOST:PORT)")
        self.cfg = cfg
        self.role = role
        self.node_id = f"{role}-{uuid.uuid4().hex[:8]}"
        self.prefix = cfg.cluster_prefix
        self.store = EtcdMetaStore(cfg.etcd_endpoints, self.prefix)
        self.topic = self.prefix.strip("/").replace("/", ".") + ".wal"
        self.kafka = client_config(cfg.kafka_bootstrap, cfg.kafka_username, cfg.kafka_password)
        self._leader_lease: Any = None
        self._channels: int | None = None

    def transactional_id(self, channel: int) -> str:
        """The Kafka producer id of a channel's owner: a new owner's producer fences the old one."""
        return f"{self.prefix}wal-{channel}"

    def channels(self) -> int:
        """How many WAL channels the cluster has: the topic's partitions (once it exists)."""
        if self._channels is None:
            self._channels = topic_partitions(self.kafka, self.topic)
        return self._channels

    def meta_store(self) -> EtcdMetaStore:
        return EtcdMetaStore(self.cfg.etcd_endpoints, self.prefix + "meta/")

    # ---- plain JSON keys
    def get_json(self, key: str) -> dict[str, Any] | None:
        raw = self.store.get(key)
        return None if raw is None else json.loads(raw)

    def put_json(self, key: str, value: dict[str, Any]) -> None:
        self.store.put(key, json.dumps(value).encode())

    def live_nodes(self, role: str) -> dict[str, dict[str, Any]]:
        return {k.rsplit("/", 1)[1]: json.loads(v) for k, v in self.store.list_prefix(f"nodes/{role}/").items()}

    # ---- leases
    def _lease(self, ttl: int) -> Any:
        return self.store._call(lambda c: c.lease(ttl))

    def _refresh(self, lease: Any) -> bool:
        reply = self.store._call(lambda c: c.refresh_lease(lease.id))
        return reply is not None and reply.TTL > 0

    def _put_leased(self, key: str, value: dict[str, Any], lease: Any, only_if_absent: bool) -> bool:
        raw = self.store._key(key)
        data = json.dumps(value).encode()

        async def txn(c: Any) -> bool:
            compare = [c.transactions.create(raw) == 0] if only_if_absent else []
            ok, _ = await c.transaction(compare=compare, success=[c.transactions.put(raw, data, lease=lease)], failure=[])
            return bool(ok)

        return self.store._call(txn)

    def register(self, info: dict[str, Any], stop: threading.Event) -> Registration:
        """Keep `nodes/<role>/<id>` alive while this process runs (re-registering after a lapse),
        until `stop` is set or `Registration.withdraw()` removes it (a graceful drain)."""
        registration = Registration(self, f"nodes/{self.role}/{self.node_id}", {**info, "pid": os.getpid()}, stop)
        registration.thread.start()
        return registration

    def campaign(self, info: dict[str, Any], stop: threading.Event, on_standby: Any = None) -> None:
        """Block until this process holds `coord/leader`; a thread then keeps it, and ends the
        process if the lease lapses (a standby may already have taken over). `on_standby()` is
        called once, when another coordinator is found to hold it."""
        ttl = self.cfg.node_lease_s
        while not stop.is_set():
            try:
                lease = self._lease(ttl)
                if self._put_leased(LEADER_KEY, {**info, "node": self.node_id, "pid": os.getpid()}, lease, True):
                    self._leader_lease = lease
                    break
                self.store._call(lambda c, lid=lease.id: c.revoke_lease(lid))  # not to pile up a lease per try
                if on_standby is not None:
                    on_standby()
                    on_standby = None
            except Exception as e:
                log.warning("coordinator election: %s", e)
            stop.wait(0.5)
        else:
            return

        def keep() -> None:
            while not stop.wait(max(0.3, ttl / 4)):
                try:
                    alive = self._refresh(lease)
                except Exception as e:
                    log.warning("coordinator lease refresh failed: %s", e)
                    continue
                if not alive and not stop.is_set():  # resigned on purpose (a drain) once stop is set
                    log.error("lost the coordinator lease; exiting so a standby serves alone")
                    os._exit(3)

        threading.Thread(target=keep, name="shoal-leader", daemon=True).start()

    def resign(self) -> None:
        """Give up `coord/leader` now (a drain), so a standby takes over without waiting for the
        lease to lapse; call once `stop` is set, or the keeper exits the process."""
        lease, self._leader_lease = self._leader_lease, None
        if lease is not None:
            self.store._call(lambda c: c.revoke_lease(lease.id))


class Registration:
    """A role's leased `nodes/<role>/<id>` key, kept by a thread until `stop` or `withdraw()`."""

    def __init__(self, env: ClusterEnv, key: str, info: dict[str, Any], stop: threading.Event) -> None:
        self.env, self.key, self.info = env, key, info
        self._stop = stop
        self._withdrawn = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="shoal-register", daemon=True)

    def _loop(self) -> None:
        env, ttl, lease = self.env, self.env.cfg.node_lease_s, None
        while not (self._stop.is_set() or self._withdrawn.is_set()):
            try:
                if lease is None or not env._refresh(lease):
                    lease = env._lease(ttl)
                    env._put_leased(self.key, self.info, lease, only_if_absent=False)
            except Exception as e:
                log.warning("registration of %s failed: %s", self.key, e)
                lease = None
            self._withdrawn.wait(max(0.3, ttl / 4))
        if self._withdrawn.is_set() and lease is not None:
            try:
                env.store._call(lambda c: c.revoke_lease(lease.id))  # the key goes with its lease
            except Exception as e:
                log.warning("withdrawing %s: %s", self.key, e)

    def withdraw(self) -> None:
        """Remove the key now (others stop routing here at once, not after the lease's TTL)."""
        if self._withdrawn.is_set():
            return
        self._withdrawn.set()
        self.thread.join(10)
        try:
            self.env.store.delete(self.key)  # also when the loop had no lease at that moment
        except Exception as e:
            log.warning("withdrawing %s: %s", self.key, e)


def advertise(cfg: Config, port: int) -> str:
    return f"{cfg.advertise_host}:{port}"


class HealthServer:
    """Liveness (`/healthz`, `/livez`): 200 once the role served, also while it drains; readiness
    (`/readyz`): 200 only while it serves, 503 while it starts or drains (Kubernetes then sends
    it no new traffic); `/metrics` once `metrics` is set."""

    def __init__(self, host: str, port: int, ready: threading.Event) -> None:
        self.metrics: Any = None  # () -> bytes, Prometheus text (`roles.metrics.RoleMetrics.render`)
        self.live = threading.Event()  # set with `ready` the first time; never cleared while the process runs
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                path = self.path.split("?")[0]
                ctype = "text/plain"
                if path == "/metrics" and server.metrics is not None:
                    code, body = 200, server.metrics()
                    ctype = "text/plain; version=0.0.4; charset=utf-8"
                else:
                    if path == "/readyz":
                        ok = ready.is_set()
                    else:
                        ok = path in ("/healthz", "/livez") and server.live.is_set()
                    code, body = (200, b"ok") if ok else (503, b"not serving" if path != "/readyz" else b"not ready")
                send_body(self, code, body, ctype)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, name="shoal-health", daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class InFlight:
    """Counts a role's calls in progress; `close()` refuses new ones (Unavailable: the proxy
    retries them elsewhere) and `wait_idle()` waits for those already running (a drain)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.closed = False
        self._count = 0
        self._cond = threading.Condition()

    def __enter__(self) -> InFlight:
        from shoal.cluster.rpc import Unavailable

        with self._cond:
            if self.closed:
                raise Unavailable(f"{self.what} is draining (shutting down)")
            self._count += 1
        return self

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._count -= 1
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self.closed = True

    def wait_idle(self, timeout_s: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._count == 0, max(0.0, timeout_s))


def wait_until(check: Any, stop: threading.Event, what: str, period: float = 0.3) -> bool:
    """Poll `check()` until truthy (True) or `stop` is set (False); logs what it waits for."""
    last_log = 0.0
    while not stop.is_set():
        try:
            if check():
                return True
        except Exception as e:
            log.debug("waiting for %s: %s", what, e)
        if time.monotonic() - last_log > 10:
            log.info("waiting for %s", what)
            last_log = time.monotonic()
        stop.wait(period)
    return False
