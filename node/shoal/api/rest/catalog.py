"""RESTful v2: collections, partitions, aliases, databases and indexes, through the servicer's handlers."""

from __future__ import annotations

import json
from typing import Any

from pymilvus.grpc_gen import common_pb2, milvus_pb2, schema_pb2

from shoal.api.rest import REST_BAD_TYPE, Call
from shoal.api.translate.common import dict_to_kv
from shoal.errors import ShoalError, invalid

_TYPES = {name.lower(): value for name, value in schema_pb2.DataType.items()}
_LOAD_STATE = {0: "LoadStateNotExist", 1: "LoadStateNotLoad", 2: "LoadStateLoading", 3: "LoadStateLoaded"}
_LEVELS = {name.lower(): value for name, value in common_pb2.ConsistencyLevel.items()}


def _dtype(name: Any, what: str) -> int:
    if not isinstance(name, str) or name.lower() not in _TYPES:
        raise ShoalError(REST_BAD_TYPE, f"{what}: unknown data type {name!r}")
    return _TYPES[name.lower()]


def _field(spec: dict[str, Any]) -> schema_pb2.FieldSchema:
    if not isinstance(spec, dict) or not spec.get("fieldName"):
        raise invalid("every field needs a fieldName")
    name = spec["fieldName"]
    out = schema_pb2.FieldSchema(
        name=name, data_type=_dtype(spec.get("dataType"), name),
        is_primary_key=bool(spec.get("isPrimary")), autoID=bool(spec.get("autoID", spec.get("autoId", False))),
        is_partition_key=bool(spec.get("isPartitionKey")), nullable=bool(spec.get("nullable")),
        description=str(spec.get("description", "")),
    )
    if spec.get("elementDataType"):
        out.element_type = _dtype(spec["elementDataType"], name)
    params = dict(spec.get("elementTypeParams") or {})
    out.type_params.extend(dict_to_kv({k: v for k, v in params.items()}))
    if "defaultValue" in spec and spec["defaultValue"] is not None:
        _default(out, spec["defaultValue"])
    return out


def _default(field: schema_pb2.FieldSchema, value: Any) -> None:
    t = field.data_type
    dv = field.default_value
    if t == schema_pb2.Bool:
        dv.bool_data = bool(value)
    elif t in (schema_pb2.Int8, schema_pb2.Int16, schema_pb2.Int32):
        dv.int_data = int(value)
    elif t == schema_pb2.Int64:
        dv.long_data = int(value)
    elif t == schema_pb2.Float:
        dv.float_data = float(value)
    elif t == schema_pb2.Double:
        dv.double_data = float(value)
    elif t == schema_pb2.VarChar:
        dv.string_data = str(value)
    else:
        raise invalid(f"field {field.name}: a default value is not allowed for this type")


def _quick_schema(c: Call, name: str) -> schema_pb2.CollectionSchema:
    dim = c.get("dimension", kind=int)
    id_type = str(c.get("idType", "Int64"))
    pk = schema_pb2.FieldSchema(name=c.get("primaryFieldName", "id"), data_type=_dtype(id_type, "idType"),
                                is_primary_key=True, autoID=bool(c.get("autoID", c.get("autoId", False))))
    if pk.data_type == schema_pb2.VarChar:
        pk.type_params.extend(dict_to_kv({"max_length": (c.get("params") or {}).get("max_length", 65535)}))
    vec = schema_pb2.FieldSchema(name=c.get("vectorFieldName", "vector"), data_type=schema_pb2.FloatVector)
    vec.type_params.extend(dict_to_kv({"dim": dim}))
    return schema_pb2.CollectionSchema(name=name, fields=[pk, vec], enable_dynamic_field=True)


def create_collection(c: Call) -> None:
    name = c.need("collectionName")
    spec = c.get("schema", kind=dict)
    if spec is not None:
        proto = schema_pb2.CollectionSchema(
            name=name, fields=[_field(f) for f in spec.get("fields") or []],
            enable_dynamic_field=bool(spec.get("enableDynamicField", False)),
            description=str(c.get("description", "")),
        )
        if spec.get("autoId") or spec.get("autoID"):
            for f in proto.fields:
                if f.is_primary_key:
                    f.autoID = True
        index_params = c.get("indexParams", [], list)
    else:
        c.need("dimension", int)
        proto = _quick_schema(c, name)
        index_params = [{"fieldName": proto.fields[1].name, "indexName": proto.fields[1].name,
                         "metricType": c.get("metricType", "COSINE"), "params": {"index_type": "AUTOINDEX"}}]
    params = c.get("params", {}, dict)
    props = {}
    if "ttlSeconds" in params:
        props["collection.ttl.seconds"] = params["ttlSeconds"]
    level = str(params.get("consistencyLevel", "Bounded")).lower()
    if level not in _LEVELS:
        raise invalid(f"consistencyLevel {params.get('consistencyLevel')!r} is not a consistency level")
    c.rpc("CreateCollection", milvus_pb2.CreateCollectionRequest(
        db_name=c.db, collection_name=name, schema=proto.SerializeToString(),
        shards_num=int(params.get("shardsNum", 1)), consistency_level=_LEVELS[level],
        num_partitions=int(params.get("partitionsNum", 0)), properties=dict_to_kv(props),
    ))
    if index_params:
        _create_indexes(c, name, index_params)
        c.rpc("LoadCollection", milvus_pb2.LoadCollectionRequest(db_name=c.db, collection_name=name))


def _create_indexes(c: Call, collection: str, specs: list[Any]) -> None:
    for spec in specs:
        if not isinstance(spec, dict) or not spec.get("fieldName"):
            raise invalid("every index needs a fieldName")
        params = dict(spec.get("params") or {})
        kv = {k: (v if isinstance(v, str) else json.dumps(v)) for k, v in params.items()}
        if spec.get("metricType"):
            kv["metric_type"] = spec["metricType"]
        kv.setdefault("index_type", spec.get("indexType", "AUTOINDEX"))
        c.rpc("CreateIndex", milvus_pb2.CreateIndexRequest(
            db_name=c.db, collection_name=collection, field_name=spec["fieldName"],
            index_name=spec.get("indexName", ""), extra_params=dict_to_kv(kv),
        ))


def describe_collection(c: Call) -> dict[str, Any]:
    name = c.need("collectionName")
    c.rpc("DescribeCollection", milvus_pb2.DescribeCollectionRequest(db_name=c.db, collection_name=name))
    info = c.engine.describe_collection(c.db, name)
    fields = []
    for f in info.schema.fields:
        if f.is_dynamic:
            continue
        params = [{"key": k, "value": str(v)} for k, v in
                  (("dim", f.dim), ("max_length", f.max_length), ("max_capacity", f.max_capacity)) if v is not None]
        entry = {"name": f.name, "type": schema_pb2.DataType.Name(int(f.dtype)), "primaryKey": f.is_primary,
                 "autoId": f.auto_id, "partitionKey": f.is_partition_key, "nullable": f.nullable,
                 "description": f.description or "", "params": params, "id": f.field_id}
        if f.element_type is not None:
            entry["elementType"] = schema_pb2.DataType.Name(int(f.element_type))
        if f.default_value is not None:
            entry["defaultValue"] = f.default_value
        fields.append(entry)
    indexes = [{"fieldName": i.field_name, "indexName": i.index_name, "metricType": i.params.get("metric_type", "")}
               for i in c.engine.describe_index(c.db, name)] if _has_index(c, name) else []
    state = c.engine.load_state(c.db, name)
    return {
        "collectionName": info.name, "collectionID": info.collection_id, "dbName": info.database,
        "description": info.schema.description or "", "autoId": info.schema.primary_field.auto_id,
        "enableDynamicField": info.schema.enable_dynamic_field, "fields": fields, "indexes": indexes,
        "load": _LOAD_STATE.get(int(state), "LoadStateNotExist"), "shardsNum": info.num_shards,
        "partitionsNum": len(info.partitions), "consistencyLevel": common_pb2.ConsistencyLevel.Name(int(info.consistency_level)),
        "properties": [{"key": k, "value": v} for k, v in info.properties.items()], "aliases": info.aliases,
        "createTime": info.created_ts >> 18,
    }


def _has_index(c: Call, name: str) -> bool:
    try:
        return bool(c.engine.describe_index(c.db, name))
    except ShoalError:
        return False


def list_collections(c: Call) -> list[str]:
    reply = c.rpc("ShowCollections", milvus_pb2.ShowCollectionsRequest(db_name=c.db))
    return list(reply.collection_names)


def has_collection(c: Call) -> dict[str, bool]:
    reply = c.rpc("HasCollection", milvus_pb2.HasCollectionRequest(db_name=c.db, collection_name=c.need("collectionName")))
    return {"has": reply.value}


def drop_collection(c: Call) -> None:
    c.rpc("DropCollection", milvus_pb2.DropCollectionRequest(db_name=c.db, collection_name=c.need("collectionName")))


def rename_collection(c: Call) -> None:
    c.rpc("RenameCollection", milvus_pb2.RenameCollectionRequest(
        db_name=c.db, oldName=c.need("collectionName"), newName=c.need("newCollectionName"),
        newDBName=c.get("newDbName", "", str),
    ))


def load_collection(c: Call) -> None:
    c.rpc("LoadCollection", milvus_pb2.LoadCollectionRequest(db_name=c.db, collection_name=c.need("collectionName")))


def release_collection(c: Call) -> None:
    c.rpc("ReleaseCollection", milvus_pb2.ReleaseCollectionRequest(db_name=c.db, collection_name=c.need("collectionName")))


def get_load_state(c: Call) -> dict[str, Any]:
    name = c.need("collectionName")
    parts = c.get("partitionNames", [], list)
    reply = c.rpc("GetLoadState", milvus_pb2.GetLoadStateRequest(db_name=c.db, collection_name=name, partition_names=parts))
    out: dict[str, Any] = {"loadState": _LOAD_STATE.get(int(reply.state), "LoadStateNotExist")}
    if reply.state == common_pb2.LoadStateLoaded:
        out["loadProgress"] = 100
    return out


def collection_stats(c: Call) -> dict[str, int]:
    reply = c.rpc("GetCollectionStatistics", milvus_pb2.GetCollectionStatisticsRequest(
        db_name=c.db, collection_name=c.need("collectionName")))
    return {"rowCount": int({kv.key: kv.value for kv in reply.stats}.get("row_count", 0))}


def truncate_collection(c: Call) -> None:
    c.rpc("TruncateCollection", milvus_pb2.TruncateCollectionRequest(db_name=c.db, collection_name=c.need("collectionName")))


# ---------------------------------------------------------------- partitions

def _partition_request(c: Call, cls: Any) -> Any:
    return cls(db_name=c.db, collection_name=c.need("collectionName"), partition_name=c.need("partitionName"))


def create_partition(c: Call) -> None:
    c.rpc("CreatePartition", _partition_request(c, milvus_pb2.CreatePartitionRequest))


def drop_partition(c: Call) -> None:
    c.rpc("DropPartition", _partition_request(c, milvus_pb2.DropPartitionRequest))


def has_partition(c: Call) -> dict[str, bool]:
    return {"has": c.rpc("HasPartition", _partition_request(c, milvus_pb2.HasPartitionRequest)).value}


def list_partitions(c: Call) -> list[str]:
    reply = c.rpc("ShowPartitions", milvus_pb2.ShowPartitionsRequest(db_name=c.db, collection_name=c.need("collectionName")))
    return list(reply.partition_names)


def load_partitions(c: Call) -> None:
    c.rpc("LoadPartitions", milvus_pb2.LoadPartitionsRequest(
        db_name=c.db, collection_name=c.need("collectionName"), partition_names=c.need("partitionNames", list)))


def release_partitions(c: Call) -> None:
    c.rpc("ReleasePartitions", milvus_pb2.ReleasePartitionsRequest(
        db_name=c.db, collection_name=c.need("collectionName"), partition_names=c.need("partitionNames", list)))


def partition_stats(c: Call) -> dict[str, int]:
    reply = c.rpc("GetPartitionStatistics", _partition_request(c, milvus_pb2.GetPartitionStatisticsRequest))
    return {"rowCount": int({kv.key: kv.value for kv in reply.stats}.get("row_count", 0))}


# ---------------------------------------------------------------- aliases

def create_alias(c: Call) -> None:
    c.rpc("CreateAlias", milvus_pb2.CreateAliasRequest(db_name=c.db, alias=c.need("aliasName"),
                                                       collection_name=c.need("collectionName")))


def alter_alias(c: Call) -> None:
    c.rpc("AlterAlias", milvus_pb2.AlterAliasRequest(db_name=c.db, alias=c.need("aliasName"),
                                                     collection_name=c.need("collectionName")))


def drop_alias(c: Call) -> None:
    c.rpc("DropAlias", milvus_pb2.DropAliasRequest(db_name=c.db, alias=c.need("aliasName")))


def list_aliases(c: Call) -> list[str]:
    reply = c.rpc("ListAliases", milvus_pb2.ListAliasesRequest(db_name=c.db, collection_name=c.get("collectionName", "", str)))
    return list(reply.aliases)


def describe_alias(c: Call) -> dict[str, str]:
    reply = c.rpc("DescribeAlias", milvus_pb2.DescribeAliasRequest(db_name=c.db, alias=c.need("aliasName")))
    return {"aliasName": reply.alias, "collectionName": reply.collection, "dbName": reply.db_name or c.db}


# ---------------------------------------------------------------- databases

def create_database(c: Call) -> None:
    props = c.get("properties", {}, dict)
    c.rpc("CreateDatabase", milvus_pb2.CreateDatabaseRequest(db_name=c.need("dbName"), properties=dict_to_kv(props)))


def drop_database(c: Call) -> None:
    c.rpc("DropDatabase", milvus_pb2.DropDatabaseRequest(db_name=c.need("dbName")))


def list_databases(c: Call) -> list[str]:
    return list(c.rpc("ListDatabases", milvus_pb2.ListDatabasesRequest()).db_names)


def describe_database(c: Call) -> dict[str, Any]:
    reply = c.rpc("DescribeDatabase", milvus_pb2.DescribeDatabaseRequest(db_name=c.need("dbName")))
    return {"dbName": reply.db_name, "dbID": reply.dbID,
            "properties": [{"key": kv.key, "value": kv.value} for kv in reply.properties]}


# ---------------------------------------------------------------- indexes

def create_index(c: Call) -> None:
    _create_indexes(c, c.need("collectionName"), c.need("indexParams", list))


def drop_index(c: Call) -> None:
    c.rpc("DropIndex", milvus_pb2.DropIndexRequest(db_name=c.db, collection_name=c.need("collectionName"),
                                                   index_name=c.need("indexName")))


def list_indexes(c: Call) -> list[str]:
    name = c.need("collectionName")
    c.rpc("DescribeCollection", milvus_pb2.DescribeCollectionRequest(db_name=c.db, collection_name=name))
    return [i.index_name for i in c.engine.describe_index(c.db, name)] if _has_index(c, name) else []


def describe_index(c: Call) -> list[dict[str, Any]]:
    reply = c.rpc("DescribeIndex", milvus_pb2.DescribeIndexRequest(
        db_name=c.db, collection_name=c.need("collectionName"), index_name=c.need("indexName")))
    out = []
    for d in reply.index_descriptions:
        params = {kv.key: kv.value for kv in d.params}
        out.append({
            "fieldName": d.field_name, "indexName": d.index_name, "indexType": params.get("index_type", ""),
            "metricType": params.get("metric_type", ""), "indexState": common_pb2.IndexState.Name(d.state),
            "totalRows": d.total_rows, "indexedRows": d.indexed_rows, "pendingRows": d.pending_index_rows,
            "failReason": d.index_state_fail_reason,
        })
    return out


ROUTES = {
    "collections/create": create_collection, "collections/describe": describe_collection,
    "collections/list": list_collections, "collections/has": has_collection, "collections/drop": drop_collection,
    "collections/rename": rename_collection, "collections/load": load_collection,
    "collections/release": release_collection, "collections/get_load_state": get_load_state,
    "collections/get_stats": collection_stats, "collections/truncate": truncate_collection,
    "partitions/create": create_partition, "partitions/drop": drop_partition, "partitions/has": has_partition,
    "partitions/list": list_partitions, "partitions/load": load_partitions, "partitions/release": release_partitions,
    "partitions/get_stats": partition_stats,
    "aliases/create": create_alias, "aliases/alter": alter_alias, "aliases/drop": drop_alias,
    "aliases/list": list_aliases, "aliases/describe": describe_alias,
    "databases/create": create_database, "databases/drop": drop_database, "databases/list": list_databases,
    "databases/describe": describe_database,
    "indexes/create": create_index, "indexes/drop": drop_index, "indexes/list": list_indexes,
    "indexes/describe": describe_index,
}
