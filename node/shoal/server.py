"""Process edge of a standalone node: engine + gRPC server + management HTTP server.

`NodeServer(config)` opens the engine (`shoal.engine.open_engine`), serves
`MilvusService` (`shoal.api.servicer`) on `config.port` with the metrics interceptor and
64 MB message limits both ways, and `/healthz` + `/metrics` on `config.http_port`.
Users and roles live in the engine's meta store (`shoal.security.catalog`; a cluster's
proxy gets them from its `ClusterEngine.security_catalog`, in etcd); the auth
interceptor (`shoal.api.auth`) and the quota interceptor (`shoal.api.quotas`) are added
only when switched on, and both ports speak TLS under `tls_mode` (`shoal.api.tls`).
`stop()` stops accepting, drains in-flight calls, then closes the engine.
`EmbeddedServer` / `default_server` run the same thing inside a Python process, like
Milvus Lite's `default_server`. The CLI (`shoal.cli`) is the other entry point.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from pymilvus.grpc_gen import milvus_pb2_grpc

from shoal.api import tls
from shoal.api.auth import AuthInterceptor
from shoal.api.http import ManagementServer
from shoal.api.metrics import Metrics, MetricsInterceptor
from shoal.api.quotas import QuotaInterceptor, Quotas
from shoal.api.rest import RestAPI
from shoal.api.servicer import ShoalServicer
from shoal.config import Config
from shoal.security.catalog import SecurityCatalog
from shoal.security.guard import Guard, http_admin_check, http_authenticator
from shoal.security.limits import FailedLogins
from shoal.storage.meta_store import FileMetaStore

log = logging.getLogger("shoal.server")

# pymilvus pings every 10 s even with no call in flight. gRPC's default server policy allows
# such pings once per 2 h and answers the third early one with GOAWAY "too_many_pings",
# which drops the connection and prints an error in the client. Accept pings 1 s apart.
KEEPALIVE_POLICY = [
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 1000),
]


class NodeServer:
    def __init__(self, config: Config, engine_factory: Any = None) -> None:
        self.config = config
        self._engine_factory = engine_factory  # the cluster proxy passes its ClusterEngine
        self.engine: Any = None
        self._grpc: grpc.Server | None = None
        self._http: ManagementServer | None = None
        self._serving = threading.Event()
        self._draining = threading.Event()
        self._stopped = threading.Event()
        self.listen_port = 0
        self.http_port = 0

    def start(self) -> None:
        from shoal.engine import open_engine  # the engine is heavy; import it only when serving

        cfg = self.config
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        if self._engine_factory is not None:
            self.engine = self._engine_factory()
        else:
            self.engine = open_engine(cfg.data_dir, cfg.engine_options())
        try:
            metrics = Metrics(self.engine)
            security, interceptors, guard = self._security(cfg, metrics)
            opts = [
                ("grpc.max_send_message_length", cfg.max_message_bytes),
                ("grpc.max_receive_message_length", cfg.max_message_bytes),
                ("grpc.so_reuseport", 1 if cfg.reuse_port else 0),
                *KEEPALIVE_POLICY,
            ]
            server = grpc.server(
                futures.ThreadPoolExecutor(max_workers=cfg.grpc_workers, thread_name_prefix="shoal-grpc"),
                interceptors=interceptors,
                options=opts,
            )
            servicer = ShoalServicer(self.engine, metrics, security=security)
            milvus_pb2_grpc.add_MilvusServiceServicer_to_server(servicer, server)
            address = f"{_grpc_host(cfg.host)}:{cfg.port}"
            creds = tls.grpc_credentials(cfg)
            try:
                if creds is None:
                    self.listen_port = server.add_insecure_port(address)
                else:
                    self.listen_port = server.add_secure_port(address, creds)
            except RuntimeError as e:  # grpc reports a taken port this way
                raise OSError(f"cannot listen on {cfg.host}:{cfg.port}: the port is in use or not allowed") from e
            if self.listen_port == 0:
                raise OSError(f"cannot listen on {cfg.host}:{cfg.port}")
            self._http = ManagementServer(
                cfg.host, cfg.http_port, metrics, self._serving.is_set, RestAPI(servicer, guard),
                getattr(self.engine, "backups", None), tls.http_context(cfg),
                None if guard is None else http_authenticator(guard),
                None if guard is None else http_admin_check(guard),
                is_ready=lambda: self._serving.is_set() and not self._draining.is_set(), reuse_port=cfg.reuse_port,
            )
            self.http_port = self._http.port
            server.start()
            self._grpc = server
            self._http.start()
        except BaseException:
            self.engine.close()
            raise
        self._serving.set()
        log.info(
            "Shoal %s listening on %s:%d (gRPC), http on %s:%d, data in %s, authorization %s, tls_mode %d",
            cfg.role, cfg.host, self.listen_port, cfg.host, self.http_port, cfg.data_dir,
            "on" if cfg.authorization_enabled else "off", cfg.tls_mode,
        )

    def _security(self, cfg: Config, metrics: Metrics) -> tuple[SecurityCatalog, list[Any], Guard | None]:
        """The users/roles catalog, the interceptors in order, and the guard (None: auth off)."""
        shared = getattr(self.engine, "security_catalog", None)
        if shared is not None:  # a cluster's proxy: the users and roles every proxy shares
            security = shared(cfg.root_password_value() or None)
        else:
            store = getattr(getattr(self.engine, "catalog", None), "store", None)
            if store is None:  # an engine without a meta store of its own
                store = FileMetaStore(cfg.data_dir / "security.db")
            security = SecurityCatalog(store, cfg.root_password_value() or None)
        interceptors: list[Any] = [MetricsInterceptor(metrics)]
        guard = None
        if cfg.authorization_enabled:
            guard = Guard(security, FailedLogins(cfg.auth_max_failed_attempts, cfg.auth_failed_window_s))
            interceptors.append(AuthInterceptor(guard))
        disk_quota_mb = cfg.disk_quota_mb
        if shared is not None and disk_quota_mb > 0:  # a proxy's own directory holds no data
            log.warning("disk_quota_mb is applied by standalone nodes only; this cluster proxy ignores it")
            disk_quota_mb = -1
        quotas = Quotas(
            cfg.data_dir, cfg.max_insert_bytes, cfg.dml_rate_mb_per_collection,
            cfg.search_rate_vps_per_collection, disk_quota_mb,
        )
        if quotas.active:
            interceptors.append(QuotaInterceptor(quotas))
        return security, interceptors, guard

    @property
    def serving(self) -> bool:
        return self._serving.is_set()

    def drain(self, delay: float, grace: float) -> None:
        """SIGTERM (a cluster proxy): report Not Ready on `/readyz` but keep serving for `delay`
        s, while Kubernetes takes this pod out of its Service; then `stop(grace)`: gRPC refuses
        new calls (clients reconnect, to another proxy) and the calls in flight finish."""
        self._draining.set()
        self._stopped.wait(delay)
        self.stop(grace)

    def stop(self, grace: float = 5.0) -> None:
        """Stop accepting calls, let in-flight ones finish (up to `grace` s), close the engine."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._serving.clear()
        if self._grpc is not None:
            self._grpc.stop(grace).wait()
        if self._http is not None:
            self._http.stop()
        if self.engine is not None:
            self.engine.close()
        log.info("Shoal stopped")

    def wait(self) -> None:
        self._stopped.wait()


def _grpc_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


class EmbeddedServer:
    """A standalone Shoal inside this process, on free ports, data in a temp dir by default."""

    def __init__(self, data_dir: str | Path | None = None, port: int = 0, http_port: int = 0,
                 host: str = "127.0.0.1") -> None:
        self._base: Path | None = Path(data_dir) if data_dir is not None else None
        self._tmp: Path | None = None
        self._port = port
        self._http_port = http_port
        self._host = host
        self._node: NodeServer | None = None

    def set_base_dir(self, path: str | Path) -> None:
        if self._node is not None:
            raise RuntimeError("cannot change the data dir of a running server")
        self._base = Path(path)

    @property
    def data_dir(self) -> Path:
        if self._base is not None:
            return self._base
        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="shoal-"))
        return self._tmp

    @property
    def listen_port(self) -> int:
        return self._node.listen_port if self._node is not None else self._port

    @property
    def http_port(self) -> int:
        return self._node.http_port if self._node is not None else self._http_port

    @property
    def uri(self) -> str:
        return f"http://{self._host}:{self.listen_port}"

    @property
    def running(self) -> bool:
        return self._node is not None

    def start(self) -> None:
        if self._node is not None:
            return
        cfg = Config(
            data_dir=self.data_dir, host=self._host, port=self._port, http_port=self._http_port,
            grpc_workers=8,
        )
        node = NodeServer(cfg)
        node.start()
        self._node = node

    def stop(self) -> None:
        if self._node is not None:
            self._node.stop()
            self._node = None

    def cleanup(self) -> None:
        """Stop and remove the data directory (only a temp dir this object created)."""
        self.stop()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> EmbeddedServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


default_server = EmbeddedServer()
