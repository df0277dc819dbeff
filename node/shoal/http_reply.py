"""Answers of the small HTTP servers (health, admin, REST): a body with its type and length."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any


def send_body(req: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str) -> None:
    req.send_response(status)
    req.send_header("Content-Type", content_type)
    req.send_header("Content-Length", str(len(body)))
    req.end_headers()
    req.wfile.write(body)


def send_json(req: BaseHTTPRequestHandler, status: int, value: Any) -> None:
    send_body(req, status, json.dumps(value).encode(), "application/json")
