"""The HTTP port (default 9091): `/healthz`, `/metrics`, Milvus's RESTful API v2 and the
backup admin endpoints under `/admin/` (`admin_http`).

Kubernetes probes call `/healthz` (liveness: 200 "OK" while the node serves, 503 otherwise) and
`/readyz` (readiness: also 503 while a cluster proxy drains after SIGTERM);
Prometheus scrapes `/metrics` from the server's `Metrics` registry; `POST /v2/vectordb/...`
goes to `shoal.api.rest` when the server passes one (which checks users and privileges
itself when authorization is on). A stdlib threaded HTTP server in a daemon thread;
started and stopped by `shoal.server`. With an `ssl_context` (tls_mode 1/2) each
connection's handshake runs in its own thread, so a silent client cannot stall the port.
With `authenticate` (authorization on) any other GET path needs an
`Authorization: Bearer user:password` header (401 without one), and with `admin_check`
the backup endpoints need root or the admin role (401 / 403).
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from shoal.api import admin_http
from shoal.api.metrics import Metrics
from shoal.http_reply import send_body


class ManagementServer:
    def __init__(
        self, host: str, port: int, metrics: Metrics, is_serving: Callable[[], bool], rest: Any = None,
        backups: Any = None, ssl_context: ssl.SSLContext | None = None,
        authenticate: Callable[[str | None], bool] | None = None,
        admin_check: Callable[[str | None], int] | None = None,
        is_ready: Callable[[], bool] | None = None, reuse_port: bool = False,
    ) -> None:
        ready = is_ready or is_serving

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: `shoal backup` sends many files

            def _admin(self, method: str) -> bool:
                if not self.path.startswith(admin_http.PREFIXES):
                    return False
                refused = admin_check(self.headers.get("Authorization")) if admin_check is not None else 0
                if refused:
                    self.close_connection = True  # an unread request body must not be taken for the next request
                    message = "user hasn't authenticated" if refused == 401 else "the backup endpoints need root or the admin role"
                    self._reply(refused, json.dumps({"code": 1800 if refused == 401 else 1401, "message": message}).encode(),
                                "application/json")
                    return True
                admin_http.handle(self, method, backups)
                return True

            def do_PUT(self) -> None:  # noqa: N802 (stdlib name)
                if not self._admin("PUT"):
                    self._reply(404, b"not found", "text/plain")

            def do_DELETE(self) -> None:  # noqa: N802 (stdlib name)
                if not self._admin("DELETE"):
                    self._reply(404, b"not found", "text/plain")

            def do_GET(self) -> None:  # noqa: N802 (stdlib name)
                path = self.path.split("?", 1)[0]
                if self._admin("GET"):
                    return
                if path in ("/healthz", "/health", "/livez", "/readyz"):
                    ok = ready() if path == "/readyz" else is_serving()
                    self._reply(200 if ok else 503, b"OK" if ok else b"NOT SERVING", "text/plain")
                elif path == "/metrics":
                    self._reply(200, metrics.render(), CONTENT_TYPE_LATEST)
                elif authenticate is not None and not authenticate(self.headers.get("Authorization")):
                    self._reply(401, b'{"code":1800,"message":"user hasn\'t authenticated"}', "application/json")
                else:
                    self._reply(404, b"not found", "text/plain")

            def do_POST(self) -> None:  # noqa: N802 (stdlib name)
                if self._admin("POST"):
                    return
                if rest is None or not self.path.startswith("/v2/"):
                    self._reply(404, b"not found", "text/plain")
                    return
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length > 0 else b""
                status, reply = rest.handle(self.path, raw, self.headers, self.client_address[0])
                self._reply(status, json.dumps(reply).encode(), "application/json")

            def _reply(self, code: int, body: bytes, ctype: str) -> None:
                send_body(self, code, body, ctype)

            def log_message(self, format: str, *args: object) -> None:
                pass  # probes every few seconds would flood the log

        self._httpd = _Server((host, port), Handler, ssl_context, reuse_port)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="shoal-http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class _Server(ThreadingHTTPServer):
    def __init__(self, address: tuple[str, int], handler: Any, ssl_context: ssl.SSLContext | None,
                 reuse_port: bool = False) -> None:
        self._ssl = ssl_context
        self.allow_reuse_port = reuse_port  # a replacement proxy binds the same port before this one leaves
        super().__init__(address, handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self._ssl is not None:
            request.settimeout(30)
            try:
                request = self._ssl.wrap_socket(request, server_side=True)
            except (TimeoutError, ssl.SSLError, OSError):
                request.close()
                return  # a plaintext or unverified client: the handshake is the answer
        super().finish_request(request, client_address)
