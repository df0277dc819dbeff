"""Errors as values with a Milvus status code.

A leaf module: every layer (api, engine, index, expr, storage) may raise `ShoalError`;
the api layer turns it into a `common.Status` with the same code, so pymilvus raises the
exception a Milvus user already handles. Imports nothing from Shoal.
"""

from __future__ import annotations

from enum import IntEnum


class Code(IntEnum):
    """Milvus 2.x `Status.code` values (merr) that pymilvus understands."""

    SUCCESS = 0
    SERVICE_UNAVAILABLE = 2  # merr "service unavailable": a cluster role is gone longer than the proxy retries
    RATE_LIMITED = 8
    QUOTA_EXCEEDED = 9
    NOT_SUPPORTED = 10  # merr "service unimplemented"
    SERVICE_RESOURCE_INSUFFICIENT = 12  # a load asks more replicas than there are streaming nodes
    COLLECTION_NOT_FOUND = 100
    COLLECTION_NOT_LOADED = 101
    COLLECTION_NUM_LIMIT = 102
    COLLECTION_SCHEMA_MISMATCH = 109  # a write made against an older schema (pymilvus re-reads it and retries)
    PARTITION_NOT_FOUND = 200
    PARTITION_NOT_LOADED = 201
    INDEX_NOT_FOUND = 700
    INDEX_NOT_SUPPORTED = 701
    DATABASE_NOT_FOUND = 800
    DATABASE_NUM_LIMIT = 801
    DATABASE_NAME_INVALID = 802
    PARAMETER_INVALID = 1100
    PARAMETER_MISSING = 1101
    METRIC_TYPE_MISMATCH = 1102
    PARAMETER_TOO_LARGE = 1102  # merr's ErrParameterTooLarge shares the number
    RESOURCE_GROUP_NOT_FOUND = 300
    RESOURCE_GROUP_NODE_NOT_ENOUGH = 304  # a load asks more replicas than there are query nodes
    ALIAS_NOT_FOUND = 1600
    FIELD_NAME_INVALID = 1701
    ALIAS_NAME_CONFLICT = 1601
    ALIAS_ALREADY_EXISTS = 1602
    PRIVILEGE_NOT_AUTHENTICATED = 1400
    PRIVILEGE_NOT_PERMITTED = 1401
    UNEXPECTED = 65535


class ShoalError(Exception):
    """An error a user can act on: a Milvus status code and a message."""

    def __init__(self, code: Code | int, message: str) -> None:
        super().__init__(message)
        self.code = int(code)
        self.message = message

    def __repr__(self) -> str:
        return f"ShoalError({self.code}, {self.message!r})"


def invalid(message: str) -> ShoalError:
    """Code 1100: the request carries a bad parameter or value."""
    return ShoalError(Code.PARAMETER_INVALID, message)


def invalid_value(expected: str, actual: str, what: str = "") -> ShoalError:
    """Code 1100 in Milvus's wrapped form: "[what: ]invalid parameter[expected=E][actual=A]"."""
    return invalid(f"{what + ': ' if what else ''}invalid parameter[expected={expected}][actual={actual}]")


def unknown_index_type(index_type: object) -> ShoalError:
    """An index type no index of any field is called: Milvus's proxy refuses it before any field check."""
    return invalid_value("valid index", f"invalid index type: {index_type}")


def not_supported(what: str) -> ShoalError:
    """A feature Shoal does not implement (yet): said plainly, never a silent no-op."""
    return ShoalError(Code.NOT_SUPPORTED, f"{what} is not supported by Shoal")


def collection_not_found(name: str, database: str = "default") -> ShoalError:
    return ShoalError(
        Code.COLLECTION_NOT_FOUND,
        f"collection not found[database={database}][collection={name}]",
    )
