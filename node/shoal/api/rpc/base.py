"""Shared state and helpers of the MilvusService handlers (`shoal.api.rpc.*`).

`RpcBase` holds the engine and metrics and resolves the database of a call; the
handler families subclass it and `shoal.api.servicer` combines them.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import grpc
import numpy as np
from pymilvus.grpc_gen import common_pb2, milvus_pb2

from shoal.api.metrics import Metrics
from shoal.api.translate import status as st
from shoal.api.translate.common import parse_int, parse_json
from shoal.engine.facade import EngineAPI
from shoal.engine.requests import CollectionInfo, MutationResult
from shoal.errors import Code, ShoalError, invalid
from shoal.security.catalog import SecurityCatalog

DEFAULT_DB = "default"
INDEX_STATE = {
    "Unissued": common_pb2.Unissued,
    "InProgress": common_pb2.InProgress,
    "Finished": common_pb2.Finished,
    "Failed": common_pb2.Failed,
}
COMPACTION_STATE = {"Executing": common_pb2.Executing, "Completed": common_pb2.Completed}
_TTL_KEY = "collection.ttl.seconds"


def utc_ms(ts: int) -> int:
    return ts >> 18


def ok() -> common_pb2.Status:
    return st.success()


class RpcBase:
    """The engine and metrics every handler family uses, and small shared helpers."""

    def __init__(self, engine: EngineAPI, metrics: Metrics | None = None, role: str = "standalone",
                 security: SecurityCatalog | None = None) -> None:
        self.engine = engine
        self.security = security
        self.metrics = metrics
        self.role = role
        self._started = time.time()
        self._next_identifier = int(time.time() * 1000) & 0x7FFFFFFF
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _db(request: Any, context: grpc.ServicerContext) -> str:
        name = getattr(request, "db_name", "")
        if not name:
            for key, value in context.invocation_metadata() or ():
                if key == "dbname" and value:
                    name = value if isinstance(value, str) else value.decode()
                    break
        return name or DEFAULT_DB

    def _collection_by_id(self, collection_id: int) -> CollectionInfo:
        for db in self.engine.list_databases():
            for info in self.engine.list_collections(db.name):
                if info.collection_id == collection_id:
                    return info
        raise ShoalError(Code.COLLECTION_NOT_FOUND, f"collection not found[collectionID={collection_id}]")

    @staticmethod
    def _mutation(res: MutationResult) -> milvus_pb2.MutationResult:
        out = milvus_pb2.MutationResult(
            status=ok(),
            insert_cnt=res.insert_count,
            delete_cnt=res.delete_count,
            upsert_cnt=res.upsert_count,
            timestamp=res.timestamp,
        )
        ids = res.ids
        if len(ids) and ids.dtype == object:
            out.IDs.str_id.data.extend(str(x) for x in ids)
        else:
            out.IDs.int_id.data.extend(ids.astype(np.int64, copy=False).tolist())
        out.succ_index.extend(range(len(ids)))
        return out


def flat_index_params(params: dict[str, str]) -> dict[str, str]:
    """Index params arrive flat or with a nested JSON `params`; the engine gets them flat."""
    out = dict(params)
    nested = out.pop("params", "")
    if nested:
        extra = parse_json(nested, "index params")
        if not isinstance(extra, dict):
            raise invalid("index params must be a JSON object")
        for k, v in extra.items():
            out.setdefault(k, v if isinstance(v, str) else json.dumps(v))
    return out


def check_properties(props: dict[str, str]) -> None:
    if _TTL_KEY in props:
        ttl = parse_int(props[_TTL_KEY], _TTL_KEY)
        if ttl < 0:
            raise invalid(f"{_TTL_KEY} [{ttl}] is invalid, it should be non-negative")

