"""Milvus's RESTful API v2 (`POST /v2/vectordb/<family>/<action>`), served on the HTTP port.

`RestAPI(servicer).handle(path, body, headers)` answers `(http_status, reply)` where the
reply is Milvus's `{"code": 0, "data": ...}` or `{"code": <Milvus code>, "message": ...}`.
Every endpoint calls the gRPC servicer's own handler (same checks, same codes) or, for
rows in and out, the engine through the same translate layer the servicer uses: there
is no second implementation. The families live in `catalog` (collections, partitions,
aliases, databases, indexes) and `entities` (insert … hybrid_search, import jobs).

With authorization on (`guard`), each call needs `Authorization: Bearer user:password`
(code 1800 and HTTP 401 without a valid one) and the privilege of the gRPC method the
endpoint stands for (`ROUTE_RPC`, judged by the same `RPC_NEEDS` table as gRPC: code
1401 and HTTP 403 when missing).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from google.protobuf import symbol_database
from pymilvus.exceptions import MilvusException
from pymilvus.grpc_gen import common_pb2, milvus_pb2

from shoal.errors import Code, ShoalError
from shoal.security.guard import AuthError, Guard, current_user, http_header

log = logging.getLogger("shoal.api.rest")
DEFAULT_DB = "default"
# Milvus's RESTful-only codes: a body that is not JSON or has a wrong-typed value, a missing parameter
REST_BAD_BODY = 1801
REST_BAD_TYPE = 1801
REST_MISSING = 1802
_KINDS = {str: "a string", int: "an integer", list: "a list", dict: "an object", bool: "a boolean"}
Handler = Callable[["Call"], Any]
REST_UNAUTHENTICATED = 1800
# the gRPC method each endpoint stands for: its privilege is that method's (security.privileges)
ROUTE_RPC = {
    "entities/insert": "Insert", "entities/upsert": "Upsert", "entities/delete": "Delete",
    "entities/get": "Query", "entities/query": "Query", "entities/search": "Search",
    "entities/hybrid_search": "HybridSearch", "jobs/import/create": "Import",
    "jobs/import/describe": "GetImportState", "jobs/import/get_progress": "GetImportState",
    "jobs/import/list": "ListImportTasks",
    "collections/create": "CreateCollection", "collections/describe": "DescribeCollection",
    "collections/list": "ShowCollections", "collections/has": "HasCollection",
    "collections/drop": "DropCollection", "collections/rename": "RenameCollection",
    "collections/load": "LoadCollection", "collections/release": "ReleaseCollection",
    "collections/get_load_state": "GetLoadState", "collections/get_stats": "GetCollectionStatistics",
    "collections/truncate": "TruncateCollection",
    "partitions/create": "CreatePartition", "partitions/drop": "DropPartition", "partitions/has": "HasPartition",
    "partitions/list": "ShowPartitions", "partitions/load": "LoadPartitions",
    "partitions/release": "ReleasePartitions", "partitions/get_stats": "GetPartitionStatistics",
    "aliases/create": "CreateAlias", "aliases/alter": "AlterAlias", "aliases/drop": "DropAlias",
    "aliases/list": "ListAliases", "aliases/describe": "DescribeAlias",
    "databases/create": "CreateDatabase", "databases/drop": "DropDatabase", "databases/list": "ListDatabases",
    "databases/describe": "DescribeDatabase",
    "indexes/create": "CreateIndex", "indexes/drop": "DropIndex", "indexes/list": "DescribeIndex",
    "indexes/describe": "DescribeIndex",
}
_SERVICE = milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"]
_UNMAPPED = "OperatePrivilege"  # an endpoint missing from ROUTE_RPC needs what granting privileges needs


class Call:
    """One REST request: its body, database, and a gRPC-like context for the servicer."""

    def __init__(self, servicer: Any, body: dict[str, Any], headers: Mapping[str, str]) -> None:
        self.servicer = servicer
        self.engine = servicer.engine
        self.body = body
        self.db = str(body.get("dbName") or headers.get("DB-Name") or headers.get("db-name") or DEFAULT_DB)

    # the servicer asks its context for the `dbname` header
    def invocation_metadata(self) -> list[tuple[str, str]]:
        return [("dbname", self.db)]

    def abort(self, code: Any, details: str) -> None:
        raise ShoalError(Code.UNEXPECTED, details)

    def rpc(self, method: str, request: Any) -> Any:
        """Call a servicer handler; a non-success status becomes a ShoalError with its code."""
        reply = getattr(self.servicer, method)(request, self)
        status = reply if isinstance(reply, common_pb2.Status) else _status_of(reply)
        if status is not None and (status.code or status.error_code):
            raise ShoalError(status.code or status.error_code, status.reason)
        return reply

    def get(self, key: str, default: Any = None, kind: type | tuple[type, ...] | None = None) -> Any:
        value = self.body.get(key, default)
        if kind is not None and value is not None and not isinstance(value, kind):
            kinds = kind if isinstance(kind, tuple) else (kind,)
            wanted = " or ".join(_KINDS.get(k, k.__name__) for k in kinds)
            raise ShoalError(REST_BAD_TYPE, f"{key} must be {wanted}, got {value!r}")
        return value

    def need(self, key: str, kind: type | tuple[type, ...] = str) -> Any:
        value = self.get(key, None, kind)
        if value is None or value == "":
            raise ShoalError(REST_MISSING, f"missing required parameters, error: Key: '{key}' is required")
        return value


def _status_of(reply: Any) -> common_pb2.Status | None:
    for f in reply.DESCRIPTOR.fields:
        if f.message_type is not None and f.message_type.full_name == common_pb2.Status.DESCRIPTOR.full_name:
            return getattr(reply, f.name)
    return None


def _as_request(method: str, body: dict[str, Any], db: str) -> Any:
    """The gRPC request an endpoint stands for, with the names the privilege check reads."""
    cls = symbol_database.Default().GetSymbol(_SERVICE.methods_by_name[method].input_type.full_name)
    fields = cls.DESCRIPTOR.fields_by_name
    values = {"collection_name": body.get("collectionName"), "db_name": body.get("dbName") or db}
    return cls(**{k: str(v) for k, v in values.items() if k in fields and v})


class RestAPI:
    def __init__(self, servicer: Any, guard: Guard | None = None) -> None:
        from shoal.api.rest import catalog, entities

        self.servicer = servicer
        self.guard = guard
        self.routes: dict[str, Handler] = {**catalog.ROUTES, **entities.ROUTES}

    def _check(self, key: str, body: dict[str, Any], headers: Mapping[str, str], peer: str) -> tuple[int, dict] | str:
        """The caller's name, or the (status, reply) that refuses them."""
        assert self.guard is not None
        try:
            user = self.guard.authenticate(http_header(headers.get("Authorization")), f"http:{peer}:0")
            db = str(body.get("dbName") or headers.get("DB-Name") or headers.get("db-name") or "")
            method = ROUTE_RPC.get(key, _UNMAPPED)
            self.guard.authorize(user, method, _as_request(method, body, db), db)
        except AuthError as e:
            if e.kind == "unauthenticated":
                return 401, {"code": REST_UNAUTHENTICATED, "message": f"user hasn't authenticated: {e.message}"}
            return 403, {"code": int(Code.PRIVILEGE_NOT_PERMITTED), "message": e.message}
        return user

    def handle(self, path: str, raw: bytes, headers: Mapping[str, str], peer: str = "") -> tuple[int, dict[str, Any]]:
        route = path.split("?", 1)[0].rstrip("/")
        prefix = "/v2/vectordb/"
        key = route[len(prefix):]
        handler = self.routes.get(key) if route.startswith(prefix) else None
        if handler is None:
            return 404, {"code": int(Code.NOT_SUPPORTED), "message": f"{route} is not supported by Shoal's RESTful API"}
        try:
            body = json.loads(raw or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            return 200, {"code": REST_BAD_BODY, "message": f"can only accept json format request, error: {e}"}
        except RecursionError:
            return 200, {"code": REST_BAD_BODY, "message": "can only accept json format request: nested too deeply"}
        if not isinstance(body, dict):
            return 200, {"code": REST_BAD_BODY, "message": "can only accept json format request: the body must be an object"}
        user = ""
        if self.guard is not None:
            checked = self._check(key, body, headers, peer)
            if isinstance(checked, tuple):
                return checked
            user = checked
        token = current_user.set(user)
        try:
            data = handler(Call(self.servicer, body, headers))
        except ShoalError as e:
            return 200, {"code": int(e.code), "message": e.message}
        except MilvusException as e:  # pymilvus's request builders refuse a bad value
            return 200, {"code": int(Code.PARAMETER_INVALID), "message": e.message}
        except (TypeError, ValueError, KeyError, AttributeError) as e:
            return 200, {"code": int(Code.PARAMETER_INVALID), "message": f"invalid request: {e!r}"}
        except Exception as e:  # a bug must not drop the connection; the client gets the message
            log.exception("RESTful %s raised an unexpected error", route)
            return 200, {"code": int(Code.UNEXPECTED), "message": f"unexpected error: {e!r}"}
        finally:
            current_user.reset(token)
        return 200, {"code": 0, "data": {} if data is None else data}
