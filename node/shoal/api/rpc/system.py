"""Connection, health, timestamps, metrics and databases: the RPCs every client calls first."""

from __future__ import annotations

import json
import os
import platform
import time
from typing import Any

import grpc
from pymilvus.grpc_gen import common_pb2, milvus_pb2

import shoal
from shoal.api.rpc.base import DEFAULT_DB, RpcBase, ok
from shoal.api.translate.common import dict_to_kv, kv_to_dict, parse_json
from shoal.api.validate import check_database_name
from shoal.errors import Code, ShoalError, invalid


class SystemRPCs(RpcBase):
    # ------------------------------------------------------------------ connection, health

    def Connect(self, request: milvus_pb2.ConnectRequest, context: grpc.ServicerContext) -> Any:
        with self._lock:
            self._next_identifier += 1
            ident = self._next_identifier
        info = common_pb2.ServerInfo(
            build_tags=f"shoal-{shoal.__version__}",
            build_time="",
            git_commit="",
            go_version=f"python-{platform.python_version()}",
            deploy_mode="STANDALONE" if self.role == "standalone" else "CLUSTER",
            reserved={"server": "shoal"},
        )
        return milvus_pb2.ConnectResponse(status=ok(), server_info=info, identifier=ident)

    def GetVersion(self, request: Any, context: grpc.ServicerContext) -> Any:
        return milvus_pb2.GetVersionResponse(status=ok(), version="v2.6.0-shoal")

    def CheckHealth(self, request: Any, context: grpc.ServicerContext) -> Any:
        return milvus_pb2.CheckHealthResponse(status=ok(), isHealthy=True)

    def AllocTimestamp(self, request: Any, context: grpc.ServicerContext) -> Any:
        return milvus_pb2.AllocTimestampResponse(status=ok(), timestamp=self.engine.alloc_timestamp())

    def GetComponentStates(self, request: Any, context: grpc.ServicerContext) -> Any:
        info = milvus_pb2.ComponentInfo(nodeID=os.getpid(), role=self.role, state_code=common_pb2.Healthy)
        return milvus_pb2.ComponentStates(state=info, status=ok())

    def GetMetrics(self, request: milvus_pb2.GetMetricsRequest, context: grpc.ServicerContext) -> Any:
        parsed = parse_json(request.request or "{}", "metrics request")
        if not isinstance(parsed, dict):
            raise invalid(f"invalid metrics request: {request.request[:64]!r}")
        kind = str(parsed.get("metric_type", "system_info"))
        body = {
            "metric_type": kind,
            "name": "shoal",
            "role": self.role,
            "version": shoal.__version__,
            "uptime_seconds": round(time.time() - self._started, 3),
            "pid": os.getpid(),
        }
        stats = getattr(self.engine, "stats", None)
        if stats is not None:
            body["stats"] = stats()
        return milvus_pb2.GetMetricsResponse(status=ok(), response=json.dumps(body), component_name=self.role)

    # ------------------------------------------------------------------ databases

    def CreateDatabase(self, request: milvus_pb2.CreateDatabaseRequest, context: grpc.ServicerContext) -> Any:
        check_database_name(request.db_name)
        self.engine.create_database(request.db_name, kv_to_dict(request.properties))
        return ok()

    def DropDatabase(self, request: Any, context: grpc.ServicerContext) -> Any:
        check_database_name(request.db_name)
        self.engine.drop_database(request.db_name)
        return ok()

    def ListDatabases(self, request: Any, context: grpc.ServicerContext) -> Any:
        dbs = self.engine.list_databases()
        return milvus_pb2.ListDatabasesResponse(
            status=ok(),
            db_names=[d.name for d in dbs],
            created_timestamp=[d.created_ts for d in dbs],
            db_ids=[d.database_id for d in dbs],
        )

    def DescribeDatabase(self, request: Any, context: grpc.ServicerContext) -> Any:
        d = self.engine.describe_database(request.db_name or DEFAULT_DB)
        return milvus_pb2.DescribeDatabaseResponse(
            status=ok(), db_name=d.name, dbID=d.database_id, created_timestamp=d.created_ts,
            properties=dict_to_kv(d.properties),
        )

    def AlterDatabase(self, request: milvus_pb2.AlterDatabaseRequest, context: grpc.ServicerContext) -> Any:
        if not request.properties and not request.delete_keys:
            raise invalid(
                "alter database with empty properties and delete keys, expected to set either properties or delete keys"
            )
        self.engine.alter_database(
            request.db_name or DEFAULT_DB, kv_to_dict(request.properties), list(request.delete_keys)
        )
        return ok()


    # ------------------------------------------------------------------ resource groups
    # One node serves everything: the single resource group Milvus always has. Clients and
    # test fixtures list it on every clean-up, so it answers as Milvus's default rather than
    # "not supported". Users and roles are `shoal.api.rpc.security`.

    def ListResourceGroups(self, request: Any, context: grpc.ServicerContext) -> Any:
        return milvus_pb2.ListResourceGroupsResponse(status=ok(), resource_groups=[DEFAULT_RESOURCE_GROUP])

    def DescribeResourceGroup(self, request: Any, context: grpc.ServicerContext) -> Any:
        if request.resource_group != DEFAULT_RESOURCE_GROUP:
            raise ShoalError(
                Code.RESOURCE_GROUP_NOT_FOUND, f"resource group not found[rg={request.resource_group}]"
            )
        db = self._db(request, context)
        loaded = {
            info.name: 1 for info in self.engine.list_collections(db) if self.engine.load_state(db, info.name) == 3
        }
        group = milvus_pb2.ResourceGroup(
            name=DEFAULT_RESOURCE_GROUP, capacity=DEFAULT_RESOURCE_GROUP_CAPACITY, num_available_node=1,
            num_loaded_replica=loaded,
        )
        return milvus_pb2.DescribeResourceGroupResponse(status=ok(), resource_group=group)


DEFAULT_RESOURCE_GROUP = "__default_resource_group"
DEFAULT_RESOURCE_GROUP_CAPACITY = 1_000_000
