"""`shoal cluster run`: a whole local cluster in the foreground, as its children.

    shoal cluster run --data DIR [--port 19530] [--http-port 9091] [--query-nodes N]
                      [--streaming-nodes N] [--proxies N] [--coords N] [--kafka-brokers N]
                      [--config FILE] [--auth]

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
import os
import re
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from shoal.cluster.deps import (
    Dependencies,
    DependencyError,
    PortBook,
    Service,
    ensure_bucket,
    prepare_dependencies,
)

ROLE_READY = re.compile(r"^Shoal (\w+) listening on (\S+):(\d+) \(http (\S+):(\d+)\)", re.MULTILINE)
START_TIMEOUT_S = 300.0
STOP_GRACE_S = 15.0
MAX_BACKOFF_S = 10.0
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
        assert self.deps is not None
        lay, ep = self.layout, self.deps.endpoints
        env = dict(os.environ, **ep.as_env())
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        order = ([("coord", i) for i in range(1, lay.coords + 1)] + [("streaming", i) for i in range(1, lay.streaming_nodes + 1)]
                 + [("query", i) for i in range(1, lay.query_nodes + 1)] + [("index", 1)]
                 + [("proxy", i) for i in range(1, lay.proxies + 1)])
        services = []
        for role, i in order:
            name = f"{role}-{i}"
            if role == "proxy" and i == 1:
                port = lay.port or ports.get(f"{name}-grpc")
                http = lay.http_port or ports.get(f"{name}-http")
            else:
                port, http = ports.get(f"{name}-grpc"), ports.get(f"{name}-http")
            args = [*self.role_command, "--role", role, "--data", str(self.data_dir / "roles" / name),
                    "--host", lay.host, "--port", str(port), "--http-port", str(http),
                    "--etcd", ",".join(ep.etcd), "--kafka", ep.kafka_bootstrap, *lay.extra_args]
            services.append(Service(name, args, self.data_dir / "logs" / f"{name}.log", _role_ready, env=env,
                                    ports={"grpc": port, "http": http}))
        return services

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Dependencies, then roles; returns once every process answers (the proxies last)."""
        self._check_packages()
        self._lock()
        deadline = time.monotonic() + timeout_s
        ports = PortBook(self.data_dir / "ports.json")
        self.deps = prepare_dependencies(self.data_dir, self.layout.kafka_brokers, ports=ports)
        try:
            for service in self.deps.services():
                service.spawn()
            for service in self.deps.services():
                service.wait_ready(max(1.0, deadline - time.monotonic()))
                self._announce(service, f" (ready in {service.ready_after_s:.1f}s)")
            self._watches = [_Watch(s, starting=False) for s in self.deps.services()]
            ensure_bucket(self.deps.endpoints, deadline - time.monotonic())
            self.roles = self._role_services(ports)
            # Every role but the proxies starts at once (they find each other through etcd); the
            # proxies start last, so their port opens only once the others serve.
            proxies = [s for s in self.roles if s.name.startswith("proxy-")]
            for group in ([s for s in self.roles if s not in proxies], proxies):
                for service in group:
                    service.spawn()
                    self._watches.append(_Watch(service))
                self._wait_up(group, deadline)
        except BaseException:
            self.stop()
            raise
        first = proxies[0]
        self.proxy_port, self.proxy_http_port = first.ports["grpc"], first.ports["http"]
        host = self.layout.host if self.layout.host not in ("0.0.0.0", "::") else "127.0.0.1"
        self._say(f"Shoal cluster listening on {host}:{self.proxy_port} (http {host}:{self.proxy_http_port})")

    def _wait_up(self, group: list[Service], deadline: float) -> None:
        """Run the watch loop until every service of `group` answers; a role that exits while
        the others come up is restarted like later (start-up order is not required)."""
        watches = [w for w in self._watches if w.service in group]
        while any(w.starting for w in watches):
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
        """Watch the children until `stop` is set (from this thread: PDEATHSIG follows the spawning thread)."""
        while not stop.wait(poll_s):
            self.check()

    # ------------------------------------------------------------------ stop

    def stop(self) -> None:
        for service in reversed(self.roles):  # proxies first, coord last
            if service.alive():
                service.process.terminate()  # type: ignore[union-attr]
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
    run.add_argument("--log-level", default=None, help="log level of every role")
    run.add_argument("--config", default=None,
                     help="YAML configuration every role reads (authorization, TLS, quotas: docs/configuration.md)")
    run.add_argument("--auth", action="store_true", help="authorization on at the proxies (authorization_enabled)")


def run(args: Any) -> int:
    counts = {k: getattr(args, k) for k in ("query_nodes", "streaming_nodes", "proxies", "coords", "kafka_brokers")}
    bad = [k for k, v in counts.items() if v < 1]
    if bad:
        print(f"shoal cluster run: --{bad[0].replace('_', '-')} must be at least 1", file=sys.stderr)
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
    layout = ClusterLayout(port=args.port, http_port=args.http_port, host=args.host, extra_args=extra, **counts)
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
