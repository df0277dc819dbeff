"""`shoal cluster run`: a whole local cluster in the foreground, as its children.

    shoal cluster run --data DIR [--port 19530] [--http-port 9091] [--query-nodes N]
                      [--streaming-nodes N] [--proxies N] [--coords N] [--kafka-brokers N]
                      [--config FILE] [--auth] [--shared-proxy-port] [--wal-channels N]

`Supervisor` starts etcd, Kafka and SeaweedFS (`shoal.cluster.deps`), then one
`shoal run --role R` process per role (coords, streaming, query, index, then the proxies),
and prints one line per process with its pid and ports. The last line,
`Shoal cluster listening on HOST:P (http HOST:H)`, comes once the proxy serves: the proxy
opens P only then. A child that dies is started again with the same arguments and ports
(as Kubernetes would), after a back-off that grows to 10 s while it keeps dying. SIGTERM
or SIGINT stops the roles (proxies first, coord last) and then the dependencies.

`--config FILE` (the standalone keys, docs/configuration.md) and `--auth` go to every role:
the proxies apply authorization, TLS and the request quotas, the coordinator the catalog's
limits (`max_collections_per_db`); the roles' internal RPCs stay plaintext and unauthenticated.

At run time (`shoal cluster status|scale|restart --data DIR`, through an admin HTTP port on
127.0.0.1 kept in DIR/ports.json): `scale` adds query nodes or drains the newest by SIGTERM;
`restart` replaces a process as a rolling update does, the replacement first (a proxy's on the
same ports, SO_REUSEPORT), then SIGTERM to the old one, which drains (`roles/launch.py`).
Stopping the cluster sends SIGINT to the roles: they stop at once, without draining.

Every child gets PR_SET_PDEATHSIG, so none outlives a SIGKILLed supervisor; all state is
under DIR (ports in DIR/ports.json), so running again on DIR resumes the same cluster.
A lock on DIR keeps a second supervisor off it.

`--coords 2` adds a standby coordinator: both campaign for the etcd lease, the holder serves,
and when it dies the standby takes over once the lease lapses (`node_lease_s`), without
waiting for the supervisor's restart. The default is 1: on one machine the supervisor
restarts a dead coordinator within seconds anyway, and a failover waits for the lease to
lapse either way, so a standby buys little here and costs a process. A standby matters
where a machine can be lost with its processes (and in the fault tests, which run two).
"""

from __future__ import annotations

import fcntl
import json
import os
import queue
import re
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs

from shoal.cluster.deps import (
    Dependencies,
    DependencyError,
    PortBook,
    Service,
    ensure_bucket,
    prepare_dependencies,
)
from shoal.cluster.rpc import RpcClient, Unavailable
from shoal.config import MAX_WAL_CHANNELS
from shoal.errors import ShoalError
from shoal.http_reply import send_json

ROLE_READY = re.compile(r"^Shoal (\w+) listening on (\S+):(\d+) \(http (\S+):(\d+)\)", re.MULTILINE)
START_TIMEOUT_S = 300.0
STOP_GRACE_S = 15.0
MAX_BACKOFF_S = 10.0
RETIRE_TIMEOUT_S = 60.0  # a draining role exits within its drain_grace_s (20 s); then SIGKILL
ADMIN_TIMEOUT_S = 1800.0
SCALABLE = ("query", "streaming", "proxy", "index", "coord")
START_ATTEMPTS = 5  # a role that exits more often than this while the cluster starts fails the start


@dataclass
class ClusterLayout:
    """How many of each process; the proxy's ports (0: any)."""

    port: int = 19530
    http_port: int = 9091
    query_nodes: int = 1
    streaming_nodes: int = 1
    proxies: int = 1
    coords: int = 1  # more than one: the others are standbys (etcd lease election)
    kafka_brokers: int = 1
    host: str = "127.0.0.1"
    shared_proxy_port: bool = False  # every proxy on proxy-1's ports (SO_REUSEPORT), as pods behind one Service
    wal_channels: int = 0  # WAL channels of a new cluster (0: the configuration's `wal_channels`)
    extra_args: list[str] = field(default_factory=list)  # passed to every role (e.g. --log-level)


def _role_ready(service: Service) -> bool:
    return ROLE_READY.search(service.log_since_start()) is not None


@dataclass
class _Watch:
    """Restart bookkeeping of one child."""

    service: Service
    starting: bool = True  # spawned, not yet answering
    failures: int = 0  # deaths since it last stayed up a minute
    restarts: int = 0
    next_start: float = 0.0  # when a dead one is started again (0: not scheduled)
    spawned_at: float = field(default_factory=time.monotonic)
    up_since: float = 0.0


class Supervisor:
    def __init__(self, data_dir: Path, layout: ClusterLayout, out: IO[str] | None = None,
                 role_command: list[str] | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.layout = layout
        self.out = out or sys.stdout
        self.role_command = role_command or [sys.executable, "-m", "shoal.cli", "run"]
        self.deps: Dependencies | None = None
        self.roles: list[Service] = []
        self._watches: list[_Watch] = []
        self._lock_file: IO[str] | None = None
        self.proxy_port = 0
        self.proxy_http_port = 0
        self._ports: PortBook | None = None
        self._next_index: dict[str, int] = {}  # role -> the number of its next child (names are never reused)
        self._ops: queue.Queue[_Op] = queue.Queue()
        self._admin: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------------ lines on stdout

    def _say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def _announce(self, service: Service, note: str = "") -> None:
        ports = " ".join(f"{k}={v}" for k, v in service.ports.items())
        self._say(f"shoal cluster: {service.name} pid {service.pid} {ports}{note}")

    # ------------------------------------------------------------------ start

    @staticmethod
    def _check_packages() -> None:
        """The roles' Python packages (the `cluster` extra): missing ones fail the start at once."""
        import importlib.util

        missing = [name for name in ("confluent_kafka", "aetcd") if importlib.util.find_spec(name) is None]
        if missing:
            raise DependencyError(f"{', '.join(missing)} not installed; install the cluster extra with: "
                                  "pip install -e '.[cluster]'")

    def _lock(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        lock = open(self.data_dir / ".lock", "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            raise DependencyError(f"another `shoal cluster run` uses {self.data_dir}") from None
        self._lock_file = lock

    def _role_services(self, ports: PortBook) -> list[Service]:
        lay = self.layout
        order = ([("coord", i) for i in range(1, lay.coords + 1)] + [("streaming", i) for i in range(1, lay.streaming_nodes + 1)]
                 + [("query", i) for i in range(1, lay.query_nodes + 1)] + [("index", 1)]
                 + [("proxy", i) for i in range(1, lay.proxies + 1)])
        return [self._role_service(role, i, ports) for role, i in order]

    def _role_service(self, role: str, i: int, ports: PortBook, same_ports: dict[str, int] | None = None) -> Service:
        """`shoal run --role ROLE` as child `ROLE-i`; `same_ports`: a replacement proxy binds its
        predecessor's ports beside it (SO_REUSEPORT), as a second pod behind one Service."""
        assert self.deps is not None
        lay, ep = self.layout, self.deps.endpoints
        env = dict(os.environ, **ep.as_env())
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        name = f"{role}-{i}"
        self._next_index[role] = max(self._next_index.get(role, 1), i + 1)
        if role == "proxy":
            env["SHOAL_REUSE_PORT"] = "true"
        if lay.wal_channels:
            env["SHOAL_WAL_CHANNELS"] = str(lay.wal_channels)
        if same_ports is not None:
            port, http = same_ports["grpc"], same_ports["http"]
        elif role == "proxy" and (i == 1 or lay.shared_proxy_port):
            port = lay.port or ports.get("proxy-1-grpc")
            http = lay.http_port or ports.get("proxy-1-http")
        else:
            port, http = ports.get(f"{name}-grpc"), ports.get(f"{name}-http")
        args = [*self.role_command, "--role", role, "--data", str(self.data_dir / "roles" / name),
                "--host", lay.host, "--port", str(port), "--http-port", str(http),
                "--etcd", ",".join(ep.etcd), "--kafka", ep.kafka_bootstrap, *lay.extra_args]
        return Service(name, args, self.data_dir / "logs" / f"{name}.log", _role_ready, env=env,
                       ports={"grpc": port, "http": http})

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Dependencies, then roles; returns once every process answers (the proxies last)."""
        self._check_packages()
        self._lock()
        deadline = time.monotonic() + timeout_s
        ports = self._ports = PortBook(self.data_dir / "ports.json")
        self.deps = prepare_dependencies(self.data_dir, self.layout.kafka_brokers, ports=ports)
        try:
            for service in self.deps.services():
                service.spawn()
            for service in self.deps.services():
                service.wait_ready(max(1.0, deadline - time.monotonic()))
                self._announce(service, f" (ready in {service.ready_after_s:.1f}s)")
            self._watches = [_Watch(s, starting=False) for s in self.deps.services()]
            ensure_bucket(self.deps.endpoints, deadline - time.monotonic())
            self._start_roles(ports, deadline)
        except BaseException:
            self.stop()
            raise
        host = self.layout.host if self.layout.host not in ("0.0.0.0", "::") else "127.0.0.1"
        self._say(f"Shoal cluster listening on {host}:{self.proxy_port} (http {host}:{self.proxy_http_port})")

    def _start_roles(self, ports: PortBook, deadline: float = 0.0) -> None:
        """Every role process, then the admin port."""
        deadline = deadline or time.monotonic() + START_TIMEOUT_S
        self.roles = self._role_services(ports)
        # Every role but the proxies starts at once (they find each other through etcd); the
        # proxies start last, so their port opens only once the others serve.
        proxies = [s for s in self.roles if s.name.startswith("proxy-")]
        for group in ([s for s in self.roles if s not in proxies], proxies):
            for service in group:
                service.spawn()
                self._watches.append(_Watch(service))
            self._wait_up(group, deadline)
        self.proxy_port, self.proxy_http_port = proxies[0].ports["grpc"], proxies[0].ports["http"]
        self._start_admin(ports.get("supervisor-admin"))

    def _wait_up(self, group: list[Service], deadline: float, stop: threading.Event | None = None) -> None:
        """Run the watch loop until every service of `group` answers; a role that exits while
        the others come up is restarted like later (start-up order is not required)."""
        watches = [w for w in self._watches if w.service in group]
        while any(w.starting for w in watches):
            if stop is not None and stop.is_set():
                raise DependencyError("the cluster is stopping")
            self.check()
            for w in watches:
                if w.failures > START_ATTEMPTS:
                    raise DependencyError(f"{w.service.name} keeps exiting while the cluster starts; its log "
                                          f"{w.service.log_path}:\n{w.service.log_tail()}")
            if time.monotonic() > deadline:
                late = ", ".join(w.service.name for w in watches if w.starting)
                raise DependencyError(f"{late} did not serve in time; see {self.data_dir / 'logs'}")
            time.sleep(0.25)

    # ------------------------------------------------------------------ watch and restart

    def check(self, now: float | None = None) -> None:
        """One pass of the watch loop: restart what died, announce what came (back) up."""
        now = time.monotonic() if now is None else now
        for watch in self._watches:
            service = watch.service
            if service.alive():
                if watch.starting and service.ready(service):
                    watch.starting = False
                    watch.up_since = now
                    note = " (restarted)" if watch.restarts else f" (ready in {now - watch.spawned_at:.1f}s)"
                    self._announce(service, note)
                elif not watch.starting and watch.failures and now - watch.up_since > 60:
                    watch.failures = 0  # up for a minute: the next death starts the back-off again
                continue
            if watch.next_start == 0.0:
                code = service.process.returncode if service.process is not None else None
                watch.failures += 1
                watch.next_start = now + min(MAX_BACKOFF_S, 0.5 * 2 ** (watch.failures - 1))
                self._say(f"shoal cluster: {service.name} exited ({code}); restarting")
            elif now >= watch.next_start:
                watch.next_start = 0.0
                watch.starting = True
                watch.restarts += 1
                watch.spawned_at = now
                service.spawn()

    def serve(self, stop: threading.Event, poll_s: float = 0.5) -> None:
        """Watch the children until `stop` is set, and run the admin calls (from this thread:
        PDEATHSIG follows the spawning thread)."""
        while not stop.wait(poll_s):
            self.check()
            while not stop.is_set():
                try:
                    op = self._ops.get_nowait()
                except queue.Empty:
                    break
                op.run(stop)

    # ------------------------------------------------------------------ stop

    def stop(self) -> None:
        if self._admin is not None:
            self._admin.shutdown()
            self._admin.server_close()
            self._admin = None
        for service in reversed(self.roles):  # proxies first, coord last
            if service.alive():  # SIGINT: stop at once (SIGTERM would drain: hand work to nodes that stop too)
                service.process.send_signal(signal.SIGINT)  # type: ignore[union-attr]
        deadline = time.monotonic() + STOP_GRACE_S
        for service in reversed(self.roles):
            service.stop(max(0.1, deadline - time.monotonic()))
        if self.deps is not None:
            self.deps.stop()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def processes(self) -> dict[str, Service]:
        deps = self.deps.services() if self.deps is not None else []
        return {s.name: s for s in [*deps, *self.roles]}

    # ------------------------------------------------------------------ changes at run time

    def status(self) -> dict[str, Any]:
        watches = {w.service.name: w for w in self._watches}
        coord = self._coord_replicas()  # one call serves both views
        return {"processes": [
            {"name": s.name, "pid": s.pid, "alive": s.alive(), "ports": s.ports,
             "ready": bool(s.name in watches and not watches[s.name].starting and s.alive())}
            for s in [*(self.deps.services() if self.deps is not None else []), *self.roles]],
            "replicas": self._replicas(coord), "channels": self._channels(coord), "holdings": self._holdings(),
            "shares": self._shares(coord)}

    def _channels(self, coord: tuple[dict[str, Any], dict[str, str]] | None) -> dict[str, Any]:
        """Each WAL channel's owner (process name, as the coordinator named it) and epoch."""
        if coord is None:
            return {}
        by_port = {s.ports.get("grpc"): s.name for s in self.roles if s.name.startswith("streaming-")}
        return {c: {"owner": by_port.get(int(str(o["address"]).rsplit(":", 1)[1]), o["node"]), "epoch": o["epoch"]}
                for c, o in coord[0].get("channels", {}).items()}

    def _holdings(self) -> dict[str, Any]:
        """Per query node (by process name): per collection its segment count, sealed and growing
        rows and sealed segment ids, as the node itself answers (a node not answering is left out)."""
        out: dict[str, Any] = {}
        for node in (s for s in self.roles if s.name.startswith("query-") and s.alive()):
            client = RpcClient(f"127.0.0.1:{node.ports['grpc']}")
            try:
                answer = client.call("holdings", timeout=2)
            except (Unavailable, ShoalError):
                continue  # starting, or draining
            finally:
                client.close()
            out[node.name] = {name: {"segments": len(c["sealed"]), "sealed_rows": sum(r for _, r in c["sealed"]),
                                     "growing_rows": c["growing_rows"], "segment_ids": [i for i, _ in c["sealed"]]}
                              for name, c in answer.items()}
        return out

    def _coord_replicas(self) -> tuple[dict[str, Any], dict[str, str]] | None:
        """The active coordinator's `replicas` answer and its query nodes named as this supervisor
        names them (a node it did not start keeps its own id); None when no coordinator answers."""
        by_port = {s.ports.get("grpc"): s.name for s in self.roles if s.name.startswith("query-")}
        for coord in (s for s in self.roles if s.name.startswith("coord-") and s.alive()):
            client = RpcClient(f"127.0.0.1:{coord.ports['grpc']}")
            try:
                answer = client.call("replicas", timeout=2)
            except (Unavailable, ShoalError):
                continue  # a standby, or one that is not up yet
            finally:
                client.close()
            names = {node: by_port.get(int(address.rsplit(":", 1)[1]), node) for node, address in answer["nodes"].items()}
            return answer, names
        return None

    @staticmethod
    def _replicas(coord: tuple[dict[str, Any], dict[str, str]] | None) -> list[dict[str, Any]]:
        """Each loaded collection's replica groups, by process name."""
        if coord is None:
            return []
        answer, names = coord
        return [{"collection": f"{d['database']}.{d['name']}", "version": d["version"],
                 "groups": [[names.get(n, n) for n in g] for g in d["groups"]]} for d in answer["collections"]]

    @staticmethod
    def _shares(coord: tuple[dict[str, Any], dict[str, str]] | None) -> dict[str, Any]:
        """Share mode: per collection and replica group, the rows of sealed segments each query
        node serves (process names); {} in copy mode."""
        if coord is None:
            return {}
        answer, names = coord
        return {c: [{names.get(n, n): rows for n, rows in g.items()} for g in groups]
                for c, groups in answer.get("shares", {}).items()}

    def _add(self, role: str, stop: threading.Event, count: int = 1,
             same_ports: dict[str, int] | None = None) -> list[Service]:
        """Start `count` more `role` children at once and wait until they serve (a query node:
        once it loaded the checkpoint's segments and caught up with the WAL)."""
        assert self._ports is not None
        added = []
        for _ in range(count):
            service = self._role_service(role, self._next_index.get(role, 1), self._ports, same_ports)
            service.spawn()
            self.roles.append(service)
            self._watches.append(_Watch(service))
            added.append(service)
        self._wait_up(added, time.monotonic() + START_TIMEOUT_S, stop)  # their lines say when they serve
        return added

    def _retire(self, service: Service, stop: threading.Event) -> float:
        """SIGTERM one child (it drains: `roles/launch.py`), no restart; seconds until it exited."""
        self._watches = [w for w in self._watches if w.service is not service]
        started = time.monotonic()
        if service.alive():
            service.process.terminate()  # type: ignore[union-attr]
        while service.alive() and time.monotonic() - started < RETIRE_TIMEOUT_S and not stop.is_set():
            self.check()
            time.sleep(0.1)
        service.stop(0.1)  # SIGKILL only if the drain overran every grace period
        self.roles = [s for s in self.roles if s is not service]
        took = time.monotonic() - started
        self._say(f"shoal cluster: {service.name} stopped (drained in {took:.1f}s)")
        shutil.rmtree(self.data_dir / "roles" / service.name, ignore_errors=True)
        return took

    def scale(self, role: str, count: int, stop: threading.Event) -> dict[str, Any]:
        """Add or retire `role` children (newest first) until there are `count`."""
        if role not in SCALABLE or count < 1:
            raise ValueError(f"scale: {role} cannot be scaled to {count} (roles: {', '.join(SCALABLE)}, at least 1)")
        steps: list[dict[str, Any]] = []
        if len(self._of(role)) < count:
            started = time.monotonic()
            added = self._add(role, stop, count - len(self._of(role)))
            steps.append({"added": [s.name for s in added], "seconds": round(time.monotonic() - started, 1)})
        while len(self._of(role)) > count:
            victim = self._of(role)[-1]
            steps.append({"removed": victim.name, "seconds": round(self._retire(victim, stop), 1)})
        return {"role": role, "count": count, "steps": steps}

    def restart(self, name: str, stop: threading.Event) -> dict[str, Any]:
        """Replace child `name` the way a rolling update does (one surge pod, none unavailable):
        start its replacement, wait until it serves, then SIGTERM the old one and wait for its
        drain. A proxy's replacement listens on the same ports."""
        old = next((s for s in self.roles if s.name == name), None)
        if old is None:
            raise ValueError(f"restart: no role process named {name} (have {', '.join(s.name for s in self.roles)})")
        role = name.rsplit("-", 1)[0]
        started = time.monotonic()
        new = self._add(role, stop, same_ports=dict(old.ports) if role == "proxy" else None)[0]
        up = time.monotonic() - started
        drained = self._retire(old, stop)
        return {"restarted": name, "by": new.name, "replacement_up_s": round(up, 1), "drain_s": round(drained, 1)}

    def rolling_restart(self, stop: threading.Event) -> dict[str, Any]:
        """Every role process, one at a time (coordinators first, proxies last)."""
        names = [s.name for s in self.roles]
        return {"steps": [self.restart(name, stop) for name in names if not stop.is_set()]}

    def _of(self, role: str) -> list[Service]:
        return [s for s in self.roles if s.name.rsplit("-", 1)[0] == role]

    def _start_admin(self, port: int) -> None:
        """The admin port (127.0.0.1 only): GET /status, POST /scale?role=query&count=N,
        POST /restart?name=NAME (or name=all); `shoal cluster status|scale|restart` call it."""
        supervisor = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, code: int, body: dict[str, Any]) -> None:
                send_json(self, code, body)

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.path.split("?")[0] == "/status":
                    self._reply(200, supervisor.status())
                else:
                    self._reply(404, {"error": "not found"})

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                path, _, query = self.path.partition("?")
                q = {k: v[-1] for k, v in parse_qs(query).items()}
                if path == "/scale":
                    op = _Op(lambda stop: supervisor.scale(q.get("role", "query"), int(q.get("count", "0")), stop))
                elif path == "/restart" and q.get("name") == "all":
                    op = _Op(supervisor.rolling_restart)
                elif path == "/restart":
                    op = _Op(lambda stop: supervisor.restart(q.get("name", ""), stop))
                else:
                    self._reply(404, {"error": "not found"})
                    return
                supervisor._ops.put(op)
                if not op.done.wait(ADMIN_TIMEOUT_S):
                    self._reply(504, {"error": "still running; see the supervisor's output"})
                elif op.error:
                    self._reply(400, {"error": op.error})
                else:
                    self._reply(200, op.result)

            def log_message(self, *args: Any) -> None:
                pass

        self._admin = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._admin.daemon_threads = True
        threading.Thread(target=self._admin.serve_forever, name="shoal-admin", daemon=True).start()
        self._say(f"shoal cluster: admin http=127.0.0.1:{self._admin.server_address[1]}")


class _Op:
    """One admin call, run by the supervisor's main thread (which spawns the children)."""

    def __init__(self, work: Callable[[threading.Event], dict[str, Any]]) -> None:
        self.work = work
        self.done = threading.Event()
        self.result: dict[str, Any] = {}
        self.error = ""

    def run(self, stop: threading.Event) -> None:
        try:
            self.result = self.work(stop)
        except (ValueError, DependencyError) as e:
            self.error = str(e)
        except Exception as e:
            self.error = f"{type(e).__name__}: {e}"
        finally:
            self.done.set()


# ---------------------------------------------------------------------- the command line


def add_parser(sub: Any) -> None:
    cluster = sub.add_parser("cluster", help="a local cluster").add_subparsers(dest="cluster_command", required=True)
    run = cluster.add_parser("run", help="run etcd, Kafka, S3 and every role under one directory, in the foreground")
    run.add_argument("--data", dest="data_dir", required=True, help="directory for all of the cluster's state")
    run.add_argument("--port", type=int, default=19530, help="the proxy's gRPC port (default 19530; 0 = any)")
    run.add_argument("--http-port", type=int, default=9091, help="the proxy's HTTP port (default 9091; 0 = any)")
    run.add_argument("--host", default="127.0.0.1", help="address the roles listen on (default 127.0.0.1)")
    for flag, what in (("--query-nodes", "query nodes"), ("--streaming-nodes", "streaming nodes"),
                       ("--proxies", "proxies"), ("--coords", "coordinators, one active and the rest standby"),
                       ("--kafka-brokers", "Kafka brokers")):
        run.add_argument(flag, type=int, default=1, help=f"number of {what} (default 1)")
    run.add_argument("--shared-proxy-port", action="store_true",
                     help="every proxy listens on the first one's ports (SO_REUSEPORT: the kernel spreads new "
                     "connections over them, as a Service over pods)")
    run.add_argument("--wal-channels", type=int, default=0,
                     help="WAL channels (Kafka partitions) of a new cluster; collections spread over them and the "
                     "streaming nodes share them (default: the configuration's wal_channels, 1)")
    run.add_argument("--log-level", default=None, help="log level of every role")
    run.add_argument("--config", default=None,
                     help="YAML configuration every role reads (authorization, TLS, quotas: docs/configuration.md)")
    run.add_argument("--auth", action="store_true", help="authorization on at the proxies (authorization_enabled)")
    status = cluster.add_parser("status", help="the processes of a running `shoal cluster run`")
    scale = cluster.add_parser("scale", help="add or gracefully remove (SIGTERM, drain) role processes at run time")
    restart = cluster.add_parser("restart", help="replace role processes one at a time: the replacement starts "
                                 "and serves, then the old one drains (SIGTERM)")
    for p in (status, scale, restart):
        p.add_argument("--data", dest="data_dir", required=True, help="the directory of the running cluster")
    scale.add_argument("--query-nodes", type=int, required=True, help="number of query nodes wanted")
    restart.add_argument("names", nargs="+", help="process names as `shoal cluster run` prints them "
                         "(query-1, proxy-1, ...), or `all`: every role process, coordinators first")


def admin_call(data_dir: Path, method: str, path: str) -> dict[str, Any]:
    """A call to the admin port of the supervisor running on `data_dir` (its port is in ports.json)."""
    import urllib.error
    import urllib.request

    try:
        port = json.loads((Path(data_dir) / "ports.json").read_text())["supervisor-admin"]
    except (OSError, ValueError, KeyError):
        raise DependencyError(f"no `shoal cluster run` has served on {data_dir}") from None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=ADMIN_TIMEOUT_S + 60) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as e:
        raise DependencyError(json.loads(e.read() or b"{}").get("error", str(e))) from None
    except OSError as e:
        raise DependencyError(f"the supervisor of {data_dir} does not answer ({e}); is it running?") from None


def admin(args: Any) -> int:
    """`shoal cluster status|scale|restart`: one admin call, its JSON answer on stdout."""
    try:
        if args.cluster_command == "status":
            answer = admin_call(args.data_dir, "GET", "/status")
        elif args.cluster_command == "scale":
            answer = admin_call(args.data_dir, "POST", f"/scale?role=query&count={args.query_nodes}")
        else:
            answer = {"steps": [admin_call(args.data_dir, "POST", f"/restart?name={name}") for name in args.names]}
    except DependencyError as e:
        print(f"shoal cluster {args.cluster_command}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(answer, indent=2))
    return 0


def run(args: Any) -> int:
    if args.cluster_command != "run":
        return admin(args)
    counts = {k: getattr(args, k) for k in ("query_nodes", "streaming_nodes", "proxies", "coords", "kafka_brokers")}
    bad = [k for k, v in counts.items() if v < 1]
    if bad:
        print(f"shoal cluster run: --{bad[0].replace('_', '-')} must be at least 1", file=sys.stderr)
        return 2
    if not 0 <= args.wal_channels <= MAX_WAL_CHANNELS:
        print(f"shoal cluster run: --wal-channels must be 1 to {MAX_WAL_CHANNELS}", file=sys.stderr)
        return 2
    extra = ["--log-level", args.log_level] if args.log_level else []
    if args.config:
        from shoal.config import ConfigError, load_config

        config = str(Path(args.config).resolve())
        try:
            load_config(config)  # a bad file fails here, once, not in every role's restart loop
        except ConfigError as e:
            print(f"shoal cluster run: {e}", file=sys.stderr)
            return 2
        extra += ["--config", config]
    if args.auth:
        extra.append("--auth")
    layout = ClusterLayout(port=args.port, http_port=args.http_port, host=args.host, extra_args=extra,
                           shared_proxy_port=args.shared_proxy_port, wal_channels=args.wal_channels, **counts)
    supervisor = Supervisor(Path(args.data_dir), layout)
    stop = threading.Event()
    starting = [True]

    def on_signal(signum: int, frame: object) -> None:
        stop.set()
        if starting[0]:  # interrupt the waits of start(); it stops what it started
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        supervisor.start()
    except DependencyError as e:
        print(f"shoal cluster run: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("shoal cluster run: stopped while starting", file=sys.stderr)
        return 130
    starting[0] = False
    try:
        supervisor.serve(stop)
    finally:
        supervisor._say("shoal cluster: stopping")
        supervisor.stop()
    return 0
