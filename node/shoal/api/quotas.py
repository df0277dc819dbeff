"""Milvus's quota settings on the gRPC port: request size, DML and search rates, disk.

Installed by `shoal.server` only when a quota is set, so the default server pays nothing.
- `max_insert_bytes`: an Insert/Upsert larger than this → code 1102 (Milvus's
  "insert request size exceeds maxInsertSize").
- `dml_rate_mb_per_collection`: Insert/Upsert/Delete bytes per second per collection,
  `search_rate_vps_per_collection`: Search/HybridSearch query vectors per second per
  collection → code 8 "rate limit exceeded" (pymilvus retries it unless told not to).
- `disk_quota_mb`: when the data directory holds more, writes → code 9 "quota exceeded"
  (its size is measured at most every 5 s; in between, the bytes of accepted writes are
  added to the last measure).
Collections per database are the catalog's rule (`max_collections_per_db`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from shoal.api.handlers import error_response
from shoal.api.translate import status as st
from shoal.errors import Code, ShoalError
from shoal.security.limits import TokenBucket

_WRITES = ("Insert", "Upsert")
_DML = ("Insert", "Upsert", "Delete")
_SEARCHES = ("Search", "HybridSearch")


def _dir_bytes(root: Path) -> int:
    total = 0
    for base, _dirs, files in os.walk(root):
        for f in files:
            try:
                total += os.stat(os.path.join(base, f)).st_size
            except OSError:
                pass  # a file removed by compaction while we walk
    return total


def _nq(request: Any) -> int:
    if hasattr(request, "nq") and request.nq:
        return int(request.nq)
    return sum(_nq(r) for r in getattr(request, "requests", ())) or 1


class Quotas:
    def __init__(self, data_dir: Path, max_insert_bytes: int = -1, dml_rate_mb: float = 0.0,
                 search_rate_vps: float = 0.0, disk_quota_mb: int = -1) -> None:
        self.data_dir = data_dir
        self.max_insert_bytes = max_insert_bytes
        self.dml_rate = dml_rate_mb * 1024 * 1024
        self.search_rate = search_rate_vps
        self.disk_quota = disk_quota_mb * 1024 * 1024 if disk_quota_mb > 0 else -1
        self._buckets: dict[tuple[str, str, str], TokenBucket] = {}
        self._disk = (-1e9, 0)
        self._written = 0  # bytes accepted since the last measure
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return self.max_insert_bytes > 0 or self.dml_rate > 0 or self.search_rate > 0 or self.disk_quota > 0

    def check(self, method: str, request: Any) -> None:
        if method in _WRITES:
            size = request.ByteSize()
            if 0 < self.max_insert_bytes < size:
                raise ShoalError(
                    Code.PARAMETER_TOO_LARGE,
                    f"insert request size exceeds maxInsertSize[size={size}][limit={self.max_insert_bytes}]",
                )
            if self.disk_quota > 0:
                if self._disk_bytes() > self.disk_quota:
                    raise ShoalError(
                        Code.QUOTA_EXCEEDED,
                        "quota exceeded[reason=disk quota exceeded, please allocate more resources]"
                        f"[limit={self.disk_quota >> 20} MB]",
                    )
                with self._lock:
                    self._written += size
        if method in _DML and self.dml_rate > 0:
            self._take("dml", request, request.ByteSize(), self.dml_rate)
        elif method in _SEARCHES and self.search_rate > 0:
            self._take("search", request, _nq(request), self.search_rate)

    def _take(self, kind: str, request: Any, amount: float, rate: float) -> None:
        key = (kind, getattr(request, "db_name", ""), request.collection_name)
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = TokenBucket(rate)
        if not bucket.take(amount):
            raise ShoalError(
                Code.RATE_LIMITED,
                f"rate limit exceeded[rate={rate:g}] for {kind} on collection {request.collection_name}",
            )

    def _disk_bytes(self) -> int:
        with self._lock:
            at, size = self._disk
            if time.monotonic() - at < 5.0:
                return size + self._written
        size = _dir_bytes(self.data_dir)
        with self._lock:
            self._disk = (time.monotonic(), size)
            self._written = 0
        return size


class QuotaInterceptor(grpc.ServerInterceptor):
    def __init__(self, quotas: Quotas) -> None:
        self._q = quotas

    def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Any], details: grpc.HandlerCallDetails
    ) -> Any:
        handler = continuation(details)
        method = details.method.rsplit("/", 1)[-1]
        if handler is None or handler.unary_unary is None or method not in (*_DML, *_SEARCHES):
            return handler
        inner, quotas = handler.unary_unary, self._q

        def limited(request: Any, context: grpc.ServicerContext) -> Any:
            try:
                quotas.check(method, request)
            except ShoalError as e:
                return error_response(method, st.from_error(e))
            return inner(request, context)

        return grpc.unary_unary_rpc_method_handler(
            limited, request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
