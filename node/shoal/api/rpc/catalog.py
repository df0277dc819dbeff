"""Collections, partitions, aliases and load state: the catalog RPCs."""

from __future__ import annotations

from typing import Any

import grpc
from pymilvus.grpc_gen import milvus_pb2, schema_pb2

from shoal.api.rpc.base import RpcBase, check_properties, flat_index_params, ok, utc_ms
from shoal.api.translate.common import dict_to_kv, kv_to_dict
from shoal.api.translate.schema import field_from_proto, schema_from_proto, schema_to_proto
from shoal.api.validate import check_name, check_partition_name
from shoal.engine.requests import ConsistencyLevel
from shoal.errors import Code, ShoalError, collection_not_found, invalid, not_supported


class CatalogRPCs(RpcBase):
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
        check_properties(props)
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
        return ok()

    def DropCollection(self, request: Any, context: grpc.ServicerContext) -> Any:
        check_name(request.collection_name, "collection")
        self.engine.drop_collection(self._db(request, context), request.collection_name)
        return ok()

    def HasCollection(self, request: Any, context: grpc.ServicerContext) -> Any:
        value = self.engine.has_collection(self._db(request, context), request.collection_name)
        return milvus_pb2.BoolResponse(status=ok(), value=value)

    def DescribeCollection(self, request: milvus_pb2.DescribeCollectionRequest, context: grpc.ServicerContext) -> Any:
        db = self._db(request, context)
        if not request.collection_name and request.collectionID:
            info = self._collection_by_id(request.collectionID)
        else:
            try:
                info = self.engine.describe_collection(db, request.collection_name)
            except ShoalError as e:
                if e.code != Code.COLLECTION_NOT_FOUND:
                    raise
                # Milvus's proxy words a missing collection so for DescribeCollection only
                raise ShoalError(
                    Code.COLLECTION_NOT_FOUND,
                    f"can't find collection[database={db or 'default'}][collection={request.collection_name}]",
                ) from None
        return milvus_pb2.DescribeCollectionResponse(
            status=ok(),
            schema=schema_to_proto(info.schema, info.name, info.database),
            collectionID=info.collection_id,
            virtual_channel_names=[vchannel(info.collection_id, i) for i in range(info.num_shards)],
            physical_channel_names=[f"shoal-dml_{i}" for i in range(info.num_shards)],
            created_timestamp=info.created_ts,
            created_utc_timestamp=utc_ms(info.created_ts),
            shards_num=info.num_shards,
            aliases=list(info.aliases),
            consistency_level=int(info.consistency_level),
            collection_name=info.name,
            properties=dict_to_kv(info.properties),
            db_name=info.database,
            num_partitions=len(info.partitions),
            update_timestamp=info.updated_ts,
        )

    def ShowCollections(self, request: milvus_pb2.ShowCollectionsRequest, context: grpc.ServicerContext) -> Any:
        db = self._db(request, context)
        infos = self.engine.list_collections(db)
        wanted = set(request.collection_names)
        if wanted:
            missing = wanted - {i.name for i in infos}
            if missing:
                raise collection_not_found(sorted(missing)[0], db)
            infos = [i for i in infos if i.name in wanted]
        out = milvus_pb2.ShowCollectionsResponse(status=ok())
        for i in infos:
            loaded = self.engine.load_state(db, i.name) == 3
            if request.type == milvus_pb2.InMemory and not loaded:
                continue
            out.collection_names.append(i.name)
            out.collection_ids.append(i.collection_id)
            out.created_timestamps.append(i.created_ts)
            out.created_utc_timestamps.append(utc_ms(i.created_ts))
            out.inMemory_percentages.append(100 if loaded else 0)
            out.query_service_available.append(loaded)
            out.shards_num.append(i.num_shards)
        return out

    def RenameCollection(self, request: milvus_pb2.RenameCollectionRequest, context: grpc.ServicerContext) -> Any:
        check_name(request.newName, "collection")
        db = self._db(request, context)
        if request.oldName == request.newName and (request.newDBName or db) == db:
            raise invalid("collection name or database name should be different")
        self.engine.rename_collection(self._db(request, context), request.oldName, request.newName, request.newDBName)
        return ok()

    def AlterCollection(self, request: milvus_pb2.AlterCollectionRequest, context: grpc.ServicerContext) -> Any:
        props = kv_to_dict(request.properties)
        check_properties(props)
        if not props and not request.delete_keys:
            raise invalid("no properties or delete keys provided")
        self.engine.alter_collection(self._db(request, context), request.collection_name, props, list(request.delete_keys))
        return ok()

    def AddCollectionField(self, request: milvus_pb2.AddCollectionFieldRequest, context: grpc.ServicerContext) -> Any:
        proto = schema_pb2.FieldSchema()
        try:
            proto.ParseFromString(request.schema)
        except Exception:
            raise invalid("failed to parse the field schema") from None
        self._add_field(self._db(request, context), request.collection_name, proto)
        return ok()

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
                params = flat_index_params(kv_to_dict(info.extra_params))
                self.engine.create_index(db, request.collection_name, info.field_schema.name, info.index_name, params)
        return milvus_pb2.AlterCollectionSchemaResponse(alter_status=ok())

    def _add_field(self, db: str, collection: str, proto: schema_pb2.FieldSchema) -> None:
        if proto.is_primary_key:
            raise invalid(f"not support to add pk field, field name = {proto.name}")
        field = field_from_proto(proto, 0)
        if field.dtype.is_vector:
            raise invalid("not support to add vector field")
        if not field.nullable:
            raise invalid(f"added field must be nullable, please check it, field name = {field.name}")
        if field.is_partition_key:
            raise invalid("not support to add partition key field")
        self.engine.add_collection_field(db, collection, field)

    def GetCollectionStatistics(self, request: Any, context: grpc.ServicerContext) -> Any:
        n = self.engine.collection_row_count(self._db(request, context), request.collection_name)
        return milvus_pb2.GetCollectionStatisticsResponse(status=ok(), stats=dict_to_kv({"row_count": n}))

    # ------------------------------------------------------------------ partitions

    def CreatePartition(self, request: Any, context: grpc.ServicerContext) -> Any:
        check_partition_name(request.partition_name)
        self.engine.create_partition(self._db(request, context), request.collection_name, request.partition_name)
        return ok()

    def DropPartition(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.engine.drop_partition(self._db(request, context), request.collection_name, request.partition_name)
        return ok()

    def HasPartition(self, request: Any, context: grpc.ServicerContext) -> Any:
        value = self.engine.has_partition(self._db(request, context), request.collection_name, request.partition_name)
        return milvus_pb2.BoolResponse(status=ok(), value=value)

    def ShowPartitions(self, request: milvus_pb2.ShowPartitionsRequest, context: grpc.ServicerContext) -> Any:
        db = self._db(request, context)
        parts = self.engine.list_partitions(db, request.collection_name)
        wanted = set(request.partition_names)
        if wanted:
            parts = [p for p in parts if p.name in wanted]
        out = milvus_pb2.ShowPartitionsResponse(status=ok())
        for p in parts:
            loaded = self.engine.load_state(db, request.collection_name, [p.name]) == 3
            out.partition_names.append(p.name)
            out.partitionIDs.append(p.partition_id)
            out.created_timestamps.append(p.created_ts)
            out.created_utc_timestamps.append(utc_ms(p.created_ts))
            out.inMemory_percentages.append(100 if loaded else 0)
        return out

    def GetPartitionStatistics(self, request: Any, context: grpc.ServicerContext) -> Any:
        n = self.engine.partition_row_count(self._db(request, context), request.collection_name, request.partition_name)
        return milvus_pb2.GetPartitionStatisticsResponse(status=ok(), stats=dict_to_kv({"row_count": n}))

    # ------------------------------------------------------------------ aliases

    def CreateAlias(self, request: Any, context: grpc.ServicerContext) -> Any:
        check_name(request.alias, "alias")
        self.engine.create_alias(self._db(request, context), request.alias, request.collection_name)
        return ok()

    def AlterAlias(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.engine.alter_alias(self._db(request, context), request.alias, request.collection_name)
        return ok()

    def DropAlias(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.engine.drop_alias(self._db(request, context), request.alias)
        return ok()

    def DescribeAlias(self, request: Any, context: grpc.ServicerContext) -> Any:
        db = self._db(request, context)
        collection = self.engine.describe_alias(db, request.alias)
        return milvus_pb2.DescribeAliasResponse(status=ok(), db_name=db, alias=request.alias, collection=collection)

    def ListAliases(self, request: Any, context: grpc.ServicerContext) -> Any:
        db = self._db(request, context)
        aliases = self.engine.list_aliases(db, request.collection_name)
        return milvus_pb2.ListAliasesResponse(
            status=ok(), db_name=db, collection_name=request.collection_name, aliases=aliases
        )

    # ------------------------------------------------------------------ load / release

    def LoadCollection(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.engine.load_collection(
            self._db(request, context), request.collection_name, replica_number=request.replica_number or 1
        )
        return ok()

    def ReleaseCollection(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.engine.release_collection(self._db(request, context), request.collection_name)
        return ok()

    def LoadPartitions(self, request: Any, context: grpc.ServicerContext) -> Any:
        if not request.partition_names:
            raise invalid("failed to load partition, due to no partition specified")
        self.engine.load_partitions(
            self._db(request, context), request.collection_name, list(request.partition_names),
            replica_number=request.replica_number or 1,
        )
        return ok()

    def ReleasePartitions(self, request: Any, context: grpc.ServicerContext) -> Any:
        if not request.partition_names:
            raise invalid("invalid parameter[expected=any partition][actual=empty partition list]")
        self.engine.release_partitions(
            self._db(request, context), request.collection_name, list(request.partition_names)
        )
        return ok()

    def GetReplicas(self, request: Any, context: grpc.ServicerContext) -> Any:
        """pymilvus's `describe_replica` names the collection by id; the name also works."""
        if request.collection_name:
            db, name = self._db(request, context), request.collection_name
        else:
            info = self._collection_by_id(request.collectionID)
            db, name = info.database, info.name
        replicas = [
            milvus_pb2.ReplicaInfo(
                replicaID=g.replica_id, collectionID=g.collection_id, node_ids=g.node_ids,
                resource_group_name=g.resource_group,
                shard_replicas=[
                    milvus_pb2.ShardReplica(
                        leaderID=g.node_ids[0] if g.node_ids else 0,
                        dm_channel_name=vchannel(g.collection_id, i),
                        node_ids=g.node_ids if request.with_shard_nodes else [],
                    )
                    for i in range(g.num_shards)
                ],
            )
            for g in self.engine.describe_replicas(db, name)
        ]
        return milvus_pb2.GetReplicasResponse(status=ok(), replicas=replicas)

    def GetLoadState(self, request: Any, context: grpc.ServicerContext) -> Any:
        state = self.engine.load_state(
            self._db(request, context), request.collection_name, list(request.partition_names) or None
        )
        return milvus_pb2.GetLoadStateResponse(status=ok(), state=int(state))

    def GetLoadingProgress(self, request: Any, context: grpc.ServicerContext) -> Any:
        progress = self.engine.loading_progress(
            self._db(request, context), request.collection_name, list(request.partition_names) or None
        )
        return milvus_pb2.GetLoadingProgressResponse(status=ok(), progress=progress, refresh_progress=progress)


def vchannel(collection_id: int, shard: int) -> str:
    """A shard's virtual channel name, as describe_collection and GetReplicas report it."""
    return f"shoal-dml_{shard}_{collection_id}v{shard}"
