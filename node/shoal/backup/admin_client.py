"""The client side of the node's backup admin endpoints (`shoal.api.admin_http`)."""

from __future__ import annotations

import http.client
import json
import os
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from shoal.errors import Code, ShoalError

TIMEOUT_S = 3600.0  # a snapshot flushes; a restore commit may cut large segments


class AdminClient:
    """`SHOAL_TOKEN=user:password` (root or an admin) is sent when the node has authorization on."""

    def __init__(self, uri: str) -> None:
        uri = uri if "://" in uri else f"http://{uri}"
        parts = urlsplit(uri)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ShoalError(Code.PARAMETER_INVALID, f"bad server URI {uri!r} (the node's HTTP port, e.g. http://host:9091)")
        self.uri = uri
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 9091)
        token = os.environ.get("SHOAL_TOKEN", "")
        self._auth = {"Authorization": f"Bearer {token}"} if token else {}

    def _conn(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        return cls(self._host, self._port, timeout=TIMEOUT_S, blocksize=1 << 20)

    def _call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        conn = self._conn()
        try:
            if isinstance(body, dict | list):
                body = json.dumps(body).encode()
                headers = {"Content-Type": "application/json", **(headers or {})}
            try:
                conn.request(method, path, body=body, headers={**self._auth, **(headers or {})})
                resp = conn.getresponse()
                raw = resp.read()
            except (OSError, http.client.HTTPException) as e:
                raise ShoalError(Code.UNEXPECTED, f"cannot reach the node's admin endpoint at {self.uri}: {e}") from e
            return _decode(resp.status, raw, self.uri)
        finally:
            conn.close()

    # ---- snapshots
    def snapshot(self, database: str, collections: list[str]) -> dict[str, Any]:
        return self._call("POST", "/admin/backup/snapshots", {"database": database, "collections": collections})

    def open_file(self, snap_id: str, sha: str) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        conn = self._conn()
        try:
            conn.request("GET", f"/admin/backup/snapshots/{snap_id}/files/{sha}", headers=self._auth)
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise ShoalError(Code.UNEXPECTED, f"cannot read file {sha} from {self.uri}: {e}") from e
        if resp.status != 200:
            raw = resp.read()
            conn.close()
            _decode(resp.status, raw, self.uri)
        return conn, resp

    def release(self, snap_id: str) -> None:
        self._call("DELETE", f"/admin/backup/snapshots/{snap_id}")

    # ---- restores
    def restore_begin(self, plan: dict[str, Any]) -> str:
        return str(self._call("POST", "/admin/restores", plan)["id"])

    def restore_put(self, rid: str, sha: str, stream: BinaryIO, size: int) -> None:
        self._call("PUT", f"/admin/restores/{rid}/files/{sha}", stream,
                   {"Content-Length": str(size), "Content-Type": "application/octet-stream"})

    def restore_commit(self, rid: str, plan: dict[str, Any]) -> list[dict[str, Any]]:
        return list(self._call("POST", f"/admin/restores/{rid}/commit", plan)["collections"])

    def restore_abort(self, rid: str) -> None:
        self._call("DELETE", f"/admin/restores/{rid}")


def _decode(status: int, raw: bytes, uri: str) -> Any:
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        raise ShoalError(Code.UNEXPECTED, f"{uri} answered HTTP {status} with no JSON: is it a shoal node's HTTP port?") from None
    if status != 200:
        if isinstance(value, dict) and "message" in value:
            raise ShoalError(int(value.get("code", Code.UNEXPECTED)), str(value["message"]))
        raise ShoalError(Code.UNEXPECTED, f"{uri} answered HTTP {status}")
    return value
