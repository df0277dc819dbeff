"""ShoalError → `common.Status`: the one place error codes meet the wire.

pymilvus raises when `code != 0 or error_code != 0`; it maps `code` to its exception
classes, and still reads the deprecated `error_code` in a few places (e.g. "collection
not exists" checks), so both are filled. Neighbours: `shoal.errors` (the codes), the
servicer (every handler's error path).
"""

from __future__ import annotations

from pymilvus.grpc_gen import common_pb2

from shoal.errors import Code, ShoalError

_LEGACY: dict[int, int] = {
    Code.SUCCESS: common_pb2.Success,
    Code.RATE_LIMITED: common_pb2.RateLimit,
    Code.QUOTA_EXCEEDED: common_pb2.DiskQuotaExhausted,
    Code.COLLECTION_NOT_FOUND: common_pb2.CollectionNotExists,
    Code.COLLECTION_SCHEMA_MISMATCH: common_pb2.SchemaMismatch,
    Code.INDEX_NOT_FOUND: common_pb2.IndexNotExist,
    Code.PARAMETER_INVALID: common_pb2.IllegalArgument,
    Code.PARAMETER_MISSING: common_pb2.IllegalArgument,
    Code.METRIC_TYPE_MISMATCH: common_pb2.IllegalMetricType,
    Code.PRIVILEGE_NOT_AUTHENTICATED: common_pb2.PermissionDenied,
    Code.PRIVILEGE_NOT_PERMITTED: common_pb2.PermissionDenied,
}

_RETRIABLE = {int(Code.RATE_LIMITED), int(Code.SERVICE_UNAVAILABLE)}  # as merr marks them


def success() -> common_pb2.Status:
    return common_pb2.Status(code=0, error_code=common_pb2.Success, reason="")


_INVALID_SUFFIX = ": invalid parameter"


def from_error(err: ShoalError) -> common_pb2.Status:
    message = err.message
    wrapped = "invalid parameter[" in message  # Milvus's wrapped form (expected/actual, range) has no suffix
    if err.code == Code.PARAMETER_INVALID and not wrapped and not message.endswith(_INVALID_SUFFIX):
        message += _INVALID_SUFFIX  # Milvus ends every code-1100 message so
    return status(err.code, message)


def status(code: int, reason: str) -> common_pb2.Status:
    if code == 0:
        return success()
    legacy = _LEGACY.get(code, common_pb2.UnexpectedError)
    return common_pb2.Status(
        code=code, error_code=legacy, reason=reason, retriable=code in _RETRIABLE
    )


def unexpected(exc: BaseException) -> common_pb2.Status:
    """An internal bug: code 65535 with the message, so the client sees what broke."""
    return status(Code.UNEXPECTED, f"{type(exc).__name__}: {exc}")
