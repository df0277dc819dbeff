"""The gRPC `MilvusService` of a Shoal node: one thin handler per RPC.

Each handler resolves the database (request `db_name`, else the `dbname` header, else
"default"), checks what Milvus's proxy checks, translates the request
(`shoal.api.translate`), calls the engine (`shoal.engine.facade.EngineAPI`) and
translates the answer back. Errors and the RPCs Shoal does not implement are handled by
`shoal.api.handlers.install_handlers`. No domain logic lives here.
"""

from __future__ import annotations

import json
import os
import platform
import threading
import time
from typing import Any

import grpc
from pymilvus.grpc_gen import common_pb2, milvus_pb2, milvus_pb2_grpc, schema_pb2

import shoal
from shoal.api.handlers import install_handlers
from shoal.api.metrics import Metrics
from shoal.api.translate import status as st
from shoal.api.translate.common import dict_to_kv, kv_to_dict, parse_int, template_values
from shoal.api.translate.field_data import fields_data_to_batch
from shoal.api.translate.query import query_from_proto, query_result_to_proto
from shoal.api.translate.schema import field_from_proto, schema_from_proto, schema_to_proto
from shoal.api.translate.search import hybrid_from_proto, search_from_proto, search_result_to_proto
from shoal.api.validate import check_name
from shoal.engine.facade import EngineAPI
from shoal.engine.requests import CollectionInfo, ConsistencyLevel, IndexInfo, MutationResult
from shoal.errors import Code, ShoalError, invalid, not_supported
from shoal.schema import DataType

DEFAULT_DB = "default"
_INDEX_STATE = {
    "Unissued": common_pb2.Unissued,
    "InProgress": common_pb2.InProgress,
    "Finished": common_pb2.Finished,
    "Failed": common_pb2.Failed,
}
_COMPACTION_STATE = {"Executing": common_pb2.Executing, "Completed": common_pb2.Completed}
_TTL_KEY = "collection.ttl.seconds"


def _utc_ms(ts: int) -> int:
    return ts >> 18


def _ok() -> common_pb2.Status:
    return st.success()


@install_handlers
class ShoalServicer(milvus_pb2_grpc.MilvusServiceServicer):
    def __init__(self, engine: EngineAPI, metrics: Metrics | None = None, role: str = "standalone") -> None:
        self.engine = engine
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
        raise ShoalError(Code.COLLECTION_NOT_FOUND, f"can't find collection[collectionID={collection_id}]")

    @staticmethod
    def _mutation(res: MutationResult) -> milvus_pb2.MutationResult:
        out = milvus_pb2.MutationResult(
            status=_ok(),
            insert_cnt=res.insert_count,
            delete_cnt=res.delete_count,
            upsert_cnt=res.upsert_count,
            timestamp=res.timestamp,
        )
        ids = res.ids
        if len(ids) and ids.dtype == object:
            out.IDs.str_id.data.extend(str(x) for x in ids)
        else:
            out.IDs.int_id.data.extend(int(x) for x in ids)
        out.succ_index.extend(range(len(ids)))
        return out

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
        return milvus_pb2.ConnectResponse(status=_ok(), server_info=info, identifier=ident)

    def GetVersion(self, request: Any, context: grpc.ServicerContext) -> Any:
        return milvus_pb2.GetVersionResponse(status=_ok(), version="v2.6.0-shoal")

    def CheckHealth(self, request: Any, context: grpc.ServicerContext) -> Any:
        return milvus_pb2.CheckHealthResponse(status=_ok(), isHealthy=True)

    def AllocTimestamp(self, request: Any, context: grpc.ServicerContext) -> Any:
        return milvus_pb2.AllocTimestampResponse(status=_ok(), timestamp=self.engine.alloc_timestamp())

    def GetComponentStates(self, request: Any, context: grpc.ServicerContext) -> Any:
        info = milvus_pb2.ComponentInfo(nodeID=os.getpid(), role=self.role, state_code=common_pb2.Healthy)
        return milvus_pb2.ComponentStates(state=info, status=_ok())

    def GetMetrics(self, request: milvus_pb2.GetMetricsRequest, context: grpc.ServicerContext) -> Any:
        try:
            kind = json.loads(request.request or "{}").get("metric_type", "system_info")
        except (json.JSONDecodeError, AttributeError):
            raise invalid(f"invalid metrics request: {request.request!r}") from None
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
        return milvus_pb2.GetMetricsResponse(status=_ok(), response=json.dumps(body), component_name="standalone")

    # ------------------------------------------------------------------ databases

    def CreateDatabase(self, request: milvus_pb2.CreateDatabaseRequest, context: grpc.ServicerContext) -> Any:
        check_name(request.db_name, "database")
        self.engine.create_database(request.db_name, kv_to_dict(request.properties))
        return _ok()

    def DropDatabase(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.engine.drop_database(request.db_name)
        return _ok()

    def ListDatabases(self, request: Any, context: grpc.ServicerContext) -> Any:
        dbs = self.engine.list_databases()
        return milvus_pb2.ListDatabasesResponse(
            status=_ok(),
            db_names=[d.name for d in dbs],
            created_timestamp=[d.created_ts for d in dbs],
            db_ids=[d.database_id for d in dbs],
        )

    def DescribeDatabase(self, request: Any, context: grpc.ServicerContext) -> Any:
        d = self.engine.describe_database(request.db_name or DEFAULT_DB)
        return milvus_pb2.DescribeDatabaseResponse(
            status=_ok(), db_name=d.name, dbID=d.database_id, created_timestamp=d.created_ts,
            properties=dict_to_kv(d.properties),
        )

    def AlterDatabase(self, request: milvus_pb2.AlterDatabaseRequest, context: grpc.ServicerContext) -> Any:
        self.engine.alter_database(
            request.db_name or DEFAULT_DB, kv_to_dict(request.properties), list(request.delete_keys)
        )
        return _ok()

    # ------------------------------------------------------------------ collections

    def CreateCollection(self, request: milvus_pb2.CreateCollectionRequest, context: grpc.ServicerContext) -> Any:
        check_name(request.collection_name, "collection")
        proto = schema_pb2.CollectionSchema()
        try:
            proto.ParseFromString(request.schema)
        except Exception:
            raise invalid("failed to parse the collection schema") from None
        if proto.name and proto.name != request.collection_name:
            raise invalid(
                f"collection name [{request.collection_name}] not matches schema name [{proto.name}]"
            )
        schema = schema_from_proto(proto)
        props = kv_to_dict(request.properties)
        _check_properties(props)
        try:
            level = ConsistencyLevel(request.consistency_level)
        except ValueError:
            raise invalid(f"consistency level {request.consistency_level} is invalid") from None
        shards = request.shards_num or 1
        if not 1 <= shards <= 16:
            raise invalid(f"maximum shards's number should be limited to 16, got {shards}")
        partitions = request.num_partitions
        if schema.partition_key_field is not None:
            partitions = partitions or 16
            if not 1 <= partitions <= 1024:
                raise invalid(f"the specified partitions should be greater than 0 and less than 1024, got {partitions}")
        elif partitions:
            raise invalid("num_partitions should only be specified with partition key field enabled")
        self.engine.create_collection(
            self._db(request, context), request.collection_name, schema,
            num_shards=shards, num_partitions=partitions, consistency_level=level, properties=props,
        )
        return _ok()

    def DropCollection(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.engine.drop_collection(self._db(request, context), request.collection_name)
        return _ok()

    def HasCollection(self, request: Any, context: grpc.ServicerContext) -> Any:
        value = self.engine.has_collection(self._db(request, context), request.collection_name)
        return milvus_pb2.BoolResponse(status=_ok(), value=value)

    def DescribeCollection(self, request: milvus_pb2.DescribeCollectionRequest, context: grpc.ServicerContext) -> Any:
        db = self._db(request, context)
        if not request.collection_name and request.collectionID:
            info = self._collection_by_id(request.collectionID)
        else:
            info = self.engine.describe_collection(db, request.collection_name)
        return milvus_pb2.DescribeCollectionResponse(
            status=_ok(),
            schema=schema_to_proto(info.schema, info.name, info.database),
            collectionID=info.collection_id,
            virtual_channel_names=[f"shoal-dml_{i}_{info.collection_id}v{i}" for i in range(info.num_shards)],
            physical_channel_names=[f"shoal-dml_{i}" for i in range(info.num_shards)],
            created_timestamp=info.created_ts,
            created_utc_timestamp=_utc_ms(info.created_ts),
            shards_num=info.num_shards,
            aliases=list(info.aliases),
            consistency_level=int(info.consistency_level),
            collection_name=info.name,
            properties=dict_to_kv(info.properties),
            db_name=info.database,
            num_partitions=info.num_partitions,
        )

    def ShowCollections(self, request: milvus_pb2.ShowCollectionsRequest, context: grpc.ServicerContext) -> Any:
        db = self._db(request, context)
        infos = self.engine.list_collections(db)
        wanted = set(request.collection_names)
        if wanted:
            missing = wanted - {i.name for i in infos}
            if missing:
                raise ShoalError(Code.COLLECTION_NOT_FOUND, f"can't find collection[database={db}][collection={sorted(missing)[0]}]")
            infos = [i for i in infos if i.name in wanted]
        out = milvus_pb2.ShowCollectionsResponse(status=_ok())
        for i in infos:
            loaded = self.engine.load_state(db, i.name) == 3
            if request.type == milvus_pb2.InMemory and not loaded:
                continue
            out.collection_names.append(i.name)
            out.collection_ids.append(i.collection_id)
            out.created_timestamps.append(i.created_ts)
            out.created_utc_timestamps.append(_utc_ms(i.created_ts))
            out.inMemory_percentages.append(100 if loaded else 0)
            out.query_service_available.append(loaded)
            out.shards_num.append(i.num_shards)
        return out

    def RenameCollection(self, request: milvus_pb2.RenameCollectionRequest, context: grpc.ServicerContext) -> Any:
        check_name(request.newName, "collection")
        self.engine.rename_collection(self._db(request, context), request.oldName, request.newName, request.newDBName)
        return _ok()

    def AlterCollection(self, request: milvus_pb2.AlterCollectionRequest, context: grpc.ServicerContext) -> Any:
        props = kv_to_dict(request.properties)
        _check_properties(props)
        if not props and not request.delete_keys:
            raise invalid("no properties or delete properties are provided")
        self.engine.alter_collection(self._db(request, context), request.collection_name, props, list(request.delete_keys))
        return _ok()

    def AddCollectionField(self, request: milvus_pb2.AddCollectionFieldRequest, context: grpc.ServicerContext) -> Any:
        proto = schema_pb2.FieldSchema()
        try:
            proto.ParseFromString(request.schema)
        except Exception:
            raise invalid("failed to parse the field schema") from None
        self._add_field(self._db(request, context), request.collection_name, proto)
        return _ok()

    def AlterCollectionSchema(self, request: milvus_pb2.AlterCollectionSchemaRequest, context: grpc.ServicerContext) -> Any:
        if request.action.HasField("drop_request"):
            raise not_supported("dropping a field")
        add = request.action.add_request
        if len(add.func_schema):
            raise not_supported("adding a function")
        if not add.field_infos:
            raise invalid("no field to add")
        db = self._db(request, context)
        for info in add.field_infos:
            self._add_field(db, request.collection_name, info.field_schema)
            if info.index_name or len(info.extra_params):
                params = _flat_index_params(kv_to_dict(info.extra_params))
                self.engine.create_index(db, request.collection_name, info.field_schema.name, info.index_name, params)
        return milvus_pb2.AlterCollectionSchemaResponse(alter_status=_ok())

    def _add_field(self, db: str, collection: str, proto: schema_pb2.FieldSchema) -> None:
        field = field_from_proto(proto, 0)
        if field.is_primary:
            raise invalid("not support to add pk field")
        if field.dtype.is_vector:
            raise invalid("not support to add vector field")
        if not field.nullable:
            raise invalid(f"added field must be nullable, please check it, field name = {field.name}")
        if field.is_partition_key:
            raise invalid("not support to add partition key field")
        self.engine.add_collection_field(db, collection, field)

    def GetCollectionStatistics(self, request: Any, context: grpc.ServicerContext) -> Any:
        n = self.engine.collection_row_count(self._db(request, context), request.collection_name)
        return milvus_pb2.GetCollectionStatisticsResponse(status=_ok(), stats=dict_to_kv({"row_count": n}))

    # ------------------------------------------------------------------ partitions

    def CreatePartition(self, request: Any, context: grpc.ServicerContext) -> Any:
        check_name(request.partition_name, "partition")
        self.engine.create_partition(self._db(request, context), request.collection_name, request.partition_name)
        return _ok()

    def DropPartition(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.engine.drop_partition(self._db(request, context), request.collection_name, request.partition_name)
        return _ok()

    def HasPartition(self, request: Any, context: grpc.ServicerContext) -> Any:
        value = self.engine.has_partition(self._db(request, context), request.collection_name, request.partition_name)
        return milvus_pb2.BoolResponse(status=_ok(), value=value)

    def ShowPartitions(self, request: milvus_pb2.ShowPartitionsRequest, context: grpc.ServicerContext) -> Any:
        db = self._db(request, context)
        parts = self.engine.list_partitions(db, request.collection_name)
        wanted = set(request.partition_names)
        if wanted:
            parts = [p for p in parts if p.name in wanted]
        out = milvus_pb2.ShowPartitionsResponse(status=_ok())
        for p in parts:
            loaded = self.engine.load_state(db, request.collection_name, [p.name]) == 3
            out.partition_names.append(p.name)
            out.partitionIDs.append(p.partition_id)
            out.created_timestamps.append(p.created_ts)
            out.created_utc_timestamps.append(_utc_ms(p.created_ts))
            out.inMemory_percentages.append(100 if loaded else 0)
        return out

    def GetPartitionStatistics(self, request: Any, context: grpc.ServicerContext) -> Any:
        n = self.engine.partition_row_count(self._db(request, context), request.collection_name, request.partition_name)
        return milvus_pb2.GetPartitionStatisticsResponse(status=_ok(), stats=dict_to_kv({"row_count": n}))

    # ------------------------------------------------------------------ aliases

    def CreateAlias(self, request: Any, context: grpc.ServicerContext) -> Any:
        check_name(request.alias, "alias")
        self.engine.create_alias(self._db(request, context), request.alias, request.collection_name)
        return _ok()

    def AlterAlias(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.engine.alter_alias(self._db(request, context), request.alias, request.collection_name)
        return _ok()

    def DropAlias(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.engine.drop_alias(self._db(request, context), request.alias)
        return _ok()

    def DescribeAlias(self, request: Any, context: grpc.ServicerContext) -> Any:
        db = self._db(request, context)
        collection = self.engine.describe_alias(db, request.alias)
        return milvus_pb2.DescribeAliasResponse(status=_ok(), db_name=db, alias=request.alias, collection=collection)

    def ListAliases(self, request: Any, context: grpc.ServicerContext) -> Any:
        db = self._db(request, context)
        aliases = self.engine.list_aliases(db, request.collection_name)
        return milvus_pb2.ListAliasesResponse(
            status=_ok(), db_name=db, collection_name=request.collection_name, aliases=aliases
        )

    # ------------------------------------------------------------------ load / release

    def LoadCollection(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.engine.load_collection(self._db(request, context), request.collection_name)
        return _ok()

    def ReleaseCollection(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.engine.release_collection(self._db(request, context), request.collection_name)
        return _ok()

    def LoadPartitions(self, request: Any, context: grpc.ServicerContext) -> Any:
        if not request.partition_names:
            raise invalid("partition names should not be empty")
        self.engine.load_partitions(self._db(request, context), request.collection_name, list(request.partition_names))
        return _ok()

    def ReleasePartitions(self, request: Any, context: grpc.ServicerContext) -> Any:
        if not request.partition_names:
            raise invalid("partition names should not be empty")
        self.engine.release_partitions(
            self._db(request, context), request.collection_name, list(request.partition_names)
        )
        return _ok()

    def GetLoadState(self, request: Any, context: grpc.ServicerContext) -> Any:
        state = self.engine.load_state(
            self._db(request, context), request.collection_name, list(request.partition_names) or None
        )
        return milvus_pb2.GetLoadStateResponse(status=_ok(), state=int(state))

    def GetLoadingProgress(self, request: Any, context: grpc.ServicerContext) -> Any:
        progress = self.engine.loading_progress(
            self._db(request, context), request.collection_name, list(request.partition_names) or None
        )
        return milvus_pb2.GetLoadingProgressResponse(status=_ok(), progress=progress, refresh_progress=progress)

    # ------------------------------------------------------------------ writes

    def _check_rows(self, request: Any) -> int:
        n = int(request.num_rows)
        if n <= 0:
            raise invalid("num_rows should be greater than 0")
        if not request.fields_data:
            raise invalid("no field data in the request")
        return n

    def Insert(self, request: milvus_pb2.InsertRequest, context: grpc.ServicerContext) -> Any:
        n = self._check_rows(request)
        batch = fields_data_to_batch(request.fields_data, n)
        res = self.engine.insert(self._db(request, context), request.collection_name, request.partition_name, batch, n)
        if self.metrics is not None:
            self.metrics.inserted_rows.inc(res.insert_count or n)
        return self._mutation(res)

    def Upsert(self, request: milvus_pb2.UpsertRequest, context: grpc.ServicerContext) -> Any:
        n = self._check_rows(request)
        batch = fields_data_to_batch(request.fields_data, n)
        res = self.engine.upsert(
            self._db(request, context), request.collection_name, request.partition_name, batch, n,
            partial_update=request.partial_update,
        )
        if self.metrics is not None:
            self.metrics.inserted_rows.inc(res.upsert_count or n)
        return self._mutation(res)

    def Delete(self, request: milvus_pb2.DeleteRequest, context: grpc.ServicerContext) -> Any:
        if not request.expr.strip():
            raise invalid("expression cannot be empty")
        res = self.engine.delete(
            self._db(request, context), request.collection_name, request.partition_name,
            request.expr, template_values(request.expr_template_values),
        )
        out = self._mutation(res)
        # Milvus ≥ 2.3.2 returns no keys for a delete; pymilvus then reports delete_count
        out.ClearField("IDs")
        del out.succ_index[:]
        return out

    def Flush(self, request: milvus_pb2.FlushRequest, context: grpc.ServicerContext) -> Any:
        db = self._db(request, context)
        flushed = self.engine.flush(db, list(request.collection_names))
        out = milvus_pb2.FlushResponse(status=_ok(), db_name=db)
        for name, (segments, flush_ts) in flushed.items():
            out.coll_segIDs[name].data.extend(segments)
            out.flush_coll_segIDs[name].data.extend(segments)
            out.coll_seal_times[name] = int(time.time())
            out.coll_flush_ts[name] = flush_ts
        return out

    def GetFlushState(self, request: milvus_pb2.GetFlushStateRequest, context: grpc.ServicerContext) -> Any:
        done = self.engine.flush_state(self._db(request, context), request.collection_name, request.flush_ts)
        return milvus_pb2.GetFlushStateResponse(status=_ok(), flushed=done)

    # ------------------------------------------------------------------ reads

    def Query(self, request: milvus_pb2.QueryRequest, context: grpc.ServicerContext) -> Any:
        db = self._db(request, context)
        req = query_from_proto(request)
        info = self.engine.describe_collection(db, request.collection_name)
        if not req.output_fields:  # Milvus returns only the primary key when none are named
            req.output_fields = [info.schema.primary_field.name]
        res = self.engine.query(db, request.collection_name, req)
        if self.metrics is not None:
            self.metrics.queries.inc()
        out = query_result_to_proto(res, req.output_fields, info.schema.primary_field.name, info.name)
        out.status.CopyFrom(_ok())
        return out

    def Search(self, request: milvus_pb2.SearchRequest, context: grpc.ServicerContext) -> Any:
        db = self._db(request, context)
        if len(request.sub_reqs):
            raise invalid("sub requests are only supported by HybridSearch")
        info = self.engine.describe_collection(db, request.collection_name)
        req = search_from_proto(request, info.schema)
        res = self.engine.search(db, request.collection_name, req)
        if self.metrics is not None:
            self.metrics.searches.inc()
            self.metrics.search_nq.inc(len(req.queries))
        out = search_result_to_proto(res, req.output_fields, info.name, info.schema)
        out.status.CopyFrom(_ok())
        return out

    def HybridSearch(self, request: milvus_pb2.HybridSearchRequest, context: grpc.ServicerContext) -> Any:
        db = self._db(request, context)
        info = self.engine.describe_collection(db, request.collection_name)
        req = hybrid_from_proto(request, info.schema)
        res = self.engine.hybrid_search(db, request.collection_name, req)
        if self.metrics is not None:
            self.metrics.searches.inc()
            self.metrics.search_nq.inc(len(req.requests[0].queries))
        out = search_result_to_proto(res, req.output_fields, info.name, info.schema)
        out.status.CopyFrom(_ok())
        return out

    # ------------------------------------------------------------------ indexes

    def CreateIndex(self, request: milvus_pb2.CreateIndexRequest, context: grpc.ServicerContext) -> Any:
        params = _flat_index_params(kv_to_dict(request.extra_params))
        db = self._db(request, context)
        info = self.engine.describe_collection(db, request.collection_name)
        field = info.schema.field(request.field_name)
        if field is None:
            raise invalid(f"cannot create index on non-exist field: {request.field_name}")
        if field.dtype is DataType.JSON and "json_path" not in params:
            raise invalid(f"create index on JSON field {field.name} requires json_path and json_cast_type")
        if request.index_name:
            check_name(request.index_name, "index")
        self.engine.create_index(db, info.name, request.field_name, request.index_name, params)
        return _ok()

    def _indexes(self, request: Any, context: grpc.ServicerContext) -> list[IndexInfo]:
        infos = self.engine.describe_index(
            self._db(request, context), request.collection_name, request.field_name, request.index_name
        )
        if not infos:
            raise ShoalError(Code.INDEX_NOT_FOUND, f"index not found[collection={request.collection_name}]")
        return infos

    def DescribeIndex(self, request: milvus_pb2.DescribeIndexRequest, context: grpc.ServicerContext) -> Any:
        infos = self._indexes(request, context)
        out = milvus_pb2.DescribeIndexResponse(status=_ok())
        for i in infos:
            out.index_descriptions.append(
                milvus_pb2.IndexDescription(
                    index_name=i.index_name, indexID=i.index_id, params=dict_to_kv(i.params),
                    field_name=i.field_name, indexed_rows=i.indexed_rows, total_rows=i.total_rows,
                    state=_INDEX_STATE.get(i.state, common_pb2.IndexStateNone),
                    index_state_fail_reason=i.fail_reason, pending_index_rows=i.pending_index_rows,
                )
            )
        return out

    def GetIndexState(self, request: Any, context: grpc.ServicerContext) -> Any:
        i = self._indexes(request, context)[0]
        return milvus_pb2.GetIndexStateResponse(
            status=_ok(), state=_INDEX_STATE.get(i.state, common_pb2.IndexStateNone), fail_reason=i.fail_reason
        )

    def GetIndexBuildProgress(self, request: Any, context: grpc.ServicerContext) -> Any:
        i = self._indexes(request, context)[0]
        return milvus_pb2.GetIndexBuildProgressResponse(
            status=_ok(), indexed_rows=i.indexed_rows, total_rows=i.total_rows
        )

    def DropIndex(self, request: milvus_pb2.DropIndexRequest, context: grpc.ServicerContext) -> Any:
        self.engine.drop_index(self._db(request, context), request.collection_name, request.field_name, request.index_name)
        return _ok()

    def AlterIndex(self, request: milvus_pb2.AlterIndexRequest, context: grpc.ServicerContext) -> Any:
        self.engine.alter_index(
            self._db(request, context), request.collection_name, request.index_name,
            kv_to_dict(request.extra_params), list(request.delete_keys),
        )
        return _ok()

    # ------------------------------------------------------------------ maintenance

    def ManualCompaction(self, request: milvus_pb2.ManualCompactionRequest, context: grpc.ServicerContext) -> Any:
        if request.collection_name:
            db, name = self._db(request, context), request.collection_name
        else:
            info = self._collection_by_id(request.collectionID)
            db, name = info.database, info.name
        cid = self.engine.compact(db, name)
        return milvus_pb2.ManualCompactionResponse(status=_ok(), compactionID=cid, compactionPlanCount=1)

    def GetCompactionState(self, request: Any, context: grpc.ServicerContext) -> Any:
        s = self.engine.compaction_state(request.compactionID)
        return milvus_pb2.GetCompactionStateResponse(
            status=_ok(), state=_COMPACTION_STATE.get(s.state, common_pb2.UndefiedState),
            executingPlanNo=s.executing_plans, timeoutPlanNo=s.timeout_plans, completedPlanNo=s.completed_plans,
        )


def _flat_index_params(params: dict[str, str]) -> dict[str, str]:
    """Index params arrive flat or with a nested JSON `params`; the engine gets them flat."""
    out = dict(params)
    nested = out.pop("params", "")
    if nested:
        try:
            extra = json.loads(nested)
        except json.JSONDecodeError:
            raise invalid(f"index params are not valid JSON: {nested!r}") from None
        if not isinstance(extra, dict):
            raise invalid("index params must be a JSON object")
        for k, v in extra.items():
            out.setdefault(k, v if isinstance(v, str) else json.dumps(v))
    return out


def _check_properties(props: dict[str, str]) -> None:
    if _TTL_KEY in props:
        ttl = parse_int(props[_TTL_KEY], _TTL_KEY)
        if ttl < 0:
            raise invalid(f"{_TTL_KEY} [{ttl}] is invalid, it should be non-negative")
