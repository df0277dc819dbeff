"""The backup admin endpoints on the management HTTP port, for `shoal backup`.

    POST   /admin/backup/snapshots                  {"database", "collections"} -> snapshot
    GET    /admin/backup/snapshots/<id>/files/<sha> one staged file
    DELETE /admin/backup/snapshots/<id>             release the staging folder
    POST   /admin/restores                          plan -> {"id"} (checks target names first)
    PUT    /admin/restores/<id>/files/<sha>         one file (checked against its SHA-256)
    POST   /admin/restores/<id>/commit              plan -> {"collections": [...]}
    DELETE /admin/restores/<id>                     abandon

Plain HTTP rather than a gRPC service: segment and index files are streamed as request and
response bodies of any size without a message limit or new protos, and the port already
exists in every deployment (probes, metrics). Errors answer JSON {"code", "message"} with
the Milvus status code.
"""

from __future__ import annotations

import json
import logging
import shutil
from http.server import BaseHTTPRequestHandler
from typing import Any

from shoal.errors import Code, ShoalError
from shoal.http_reply import send_json

log = logging.getLogger(__name__)
PREFIXES = ("/admin/backup/", "/admin/restores")


def handle(req: BaseHTTPRequestHandler, method: str, service: Any) -> None:
    path = req.path.split("?", 1)[0].rstrip("/")
    parts = path.strip("/").split("/")
    try:
        if service is None:
            raise ShoalError(Code.NOT_SUPPORTED, "backup is not served by this node")
        if parts[:3] == ["admin", "backup", "snapshots"]:
            _snapshots(req, method, parts[3:], service)
        elif parts[:2] == ["admin", "restores"]:
            _restores(req, method, parts[2:], service)
        else:
            send_json(req, 404, {"code": int(Code.UNEXPECTED), "message": f"no admin endpoint {method} {path}"})
    except ShoalError as e:
        req.close_connection = True  # a request body may be left unread
        status = 409 if "already exists" in e.message else 400
        send_json(req, status, {"code": int(e.code), "message": e.message})
    except (BrokenPipeError, ConnectionResetError):
        pass
    except Exception as e:
        req.close_connection = True
        log.exception("admin request %s %s failed", method, path)
        send_json(req, 500, {"code": int(Code.UNEXPECTED), "message": f"{type(e).__name__}: {e}"})


def _snapshots(req: BaseHTTPRequestHandler, method: str, rest: list[str], service: Any) -> None:
    if method == "POST" and not rest:
        body = _body(req)
        snap = service.snapshot(str(body.get("database", "")), [str(n) for n in body.get("collections", [])])
        send_json(req, 200, snap)
    elif method == "GET" and len(rest) == 3 and rest[1] == "files":
        path = service.snapshot_file(rest[0], rest[2])
        with open(path, "rb") as f:
            req.send_response(200)
            req.send_header("Content-Type", "application/octet-stream")
            req.send_header("Content-Length", str(path.stat().st_size))
            req.end_headers()
            shutil.copyfileobj(f, req.wfile, 1 << 20)
    elif method == "DELETE" and len(rest) == 1:
        service.release(rest[0])
        send_json(req, 200, {})
    else:
        send_json(req, 404, {"code": int(Code.UNEXPECTED), "message": "unknown snapshot request"})


def _restores(req: BaseHTTPRequestHandler, method: str, rest: list[str], service: Any) -> None:
    if method == "POST" and not rest:
        send_json(req, 200, {"id": service.restore_begin(_body(req))})
    elif method == "PUT" and len(rest) == 3 and rest[1] == "files":
        size = int(req.headers.get("Content-Length") or 0)
        service.restore_put(rest[0], rest[2], req.rfile, size)
        send_json(req, 200, {})
    elif method == "POST" and len(rest) == 2 and rest[1] == "commit":
        send_json(req, 200, {"collections": service.restore_commit(rest[0], _body(req))})
    elif method == "DELETE" and len(rest) == 1:
        service.restore_abort(rest[0])
        send_json(req, 200, {})
    else:
        send_json(req, 404, {"code": int(Code.UNEXPECTED), "message": "unknown restore request"})


def _body(req: BaseHTTPRequestHandler) -> dict[str, Any]:
    size = int(req.headers.get("Content-Length") or 0)
    raw = req.rfile.read(size) if size else b"{}"
    try:
        body = json.loads(raw)
    except ValueError as e:
        raise ShoalError(Code.PARAMETER_INVALID, f"request body is not JSON: {e}") from None
    if not isinstance(body, dict):
        raise ShoalError(Code.PARAMETER_INVALID, "request body must be a JSON object")
    return body
