"""The HTTP port (default 9091): `/healthz`, `/metrics` and Milvus's RESTful API v2.

Kubernetes probes call `/healthz` (200 "OK" while the node serves, 503 otherwise);
Prometheus scrapes `/metrics` from the server's `Metrics` registry; `POST /v2/vectordb/...`
goes to `shoal.api.rest` when the server passes one (which checks users and privileges
itself when authorization is on). A stdlib threaded HTTP server in a daemon thread;
started and stopped by `shoal.server`. With an `ssl_context` (tls_mode 1/2) each
connection's handshake runs in its own thread, so a silent client cannot stall the port.
With `authenticate` (authorization on) any other GET path needs an
`Authorization: Bearer user:password` header (401 without one).
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shoal.api.metrics import Metrics


class ManagementServer:
    def __init__(
        self, host: str, port: int, metrics: Metrics, is_serving: Callable[[], bool], rest: Any = None,
        ssl_context: ssl.SSLContext | None = None, authenticate: Callable[[str | None], bool] | None = None,
    ) -> None:
        registry = metrics.registry

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (stdlib name)
                path = self.path.split("?", 1)[0]
                if path in ("/healthz", "/health", "/livez", "/readyz"):
                    ok = is_serving()
                    self._reply(200 if ok else 503, b"OK" if ok else b"NOT SERVING", "text/plain")
                elif path == "/metrics":
                    self._reply(200, generate_latest(registry), CONTENT_TYPE_LATEST)
                elif authenticate is not None and not authenticate(self.headers.get("Authorization")):
                    self._reply(401, b'{"code":1800,"message":"user hasn\'t authenticated"}', "application/json")
                else:
                    self._reply(404, b"not found", "text/plain")

            def do_POST(self) -> None:  # noqa: N802 (stdlib name)
                if rest is None or not self.path.startswith("/v2/"):
                    self._reply(404, b"not found", "text/plain")
                    return
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length > 0 else b""
                status, reply = rest.handle(self.path, raw, self.headers, self.client_address[0])
                self._reply(status, json.dumps(reply).encode(), "application/json")

            def _reply(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # probes every few seconds would flood the log

        self._httpd = _Server((host, port), Handler, ssl_context)
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
    def __init__(self, address: tuple[str, int], handler: Any, ssl_context: ssl.SSLContext | None) -> None:
        self._ssl = ssl_context
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
