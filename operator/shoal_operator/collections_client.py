"""Observes and changes one collection through pymilvus' MilvusClient.

Translates pymilvus' describe results into `collections_diff` observations and carries
out its actions. The only module of the operator that speaks the Milvus protocol.
"""

from __future__ import annotations

import json
from typing import Any

from pymilvus import DataType, MilvusClient

from shoal_operator.collections_diff import (
    Action,
    CreateCollection,
    CreateIndex,
    CreatePartition,
    Load,
    ObservedCollection,
    ObservedField,
    ObservedIndex,
    Release,
    SetProperties,
)
from shoal_operator.specs.collection import CollectionSpec


def connect(uri: str, database: str, token: str = "", user: str = "", password: str = "") -> MilvusClient:
    return MilvusClient(uri=uri, token=token, user=user, password=password, db_name=database, timeout=10)


def _type_name(value: Any) -> str:
    try:
        return DataType(int(value)).name
    except (TypeError, ValueError):
        return str(getattr(value, "name", value))


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def observe(client: MilvusClient, name: str) -> ObservedCollection | None:
    if not client.has_collection(name):
        return None
    info = client.describe_collection(name)
    fields = tuple(
        ObservedField(
            name=f["name"],
            data_type=_type_name(f["type"]),
            dim=_int((f.get("params") or {}).get("dim")),
            max_length=_int((f.get("params") or {}).get("max_length")),
            is_primary=bool(f.get("is_primary")),
        )
        for f in info.get("fields", [])
        if not f.get("is_dynamic")
    )
    indexes = []
    for index_name in client.list_indexes(name):
        desc = client.describe_index(name, index_name) or {}
        indexes.append(
            ObservedIndex(
                name=index_name,
                field_name=str(desc.get("field_name", "")),
                index_type=str(desc.get("index_type", "")),
                metric_type=desc.get("metric_type"),
            )
        )
    state = client.get_load_state(name).get("state")
    return ObservedCollection(
        fields=fields,
        partitions=tuple(client.list_partitions(name)),
        indexes=tuple(indexes),
        loaded=getattr(state, "name", str(state)) == "Loaded",
        properties={str(k): str(v) for k, v in (info.get("properties") or {}).items()},
    )


def _create(client: MilvusClient, spec: CollectionSpec) -> None:
    schema_spec = spec.collection_schema
    schema = MilvusClient.create_schema(
        auto_id=schema_spec.auto_id,
        enable_dynamic_field=schema_spec.enable_dynamic_field,
        description=schema_spec.description,
    )
    for f in schema_spec.fields:
        kwargs: dict[str, Any] = {"description": f.description}
        if f.name == schema_spec.primary_key:
            kwargs["is_primary"] = True
            kwargs["auto_id"] = schema_spec.auto_id
        if f.name == schema_spec.partition_key:
            kwargs["is_partition_key"] = True
        if f.dim is not None:
            kwargs["dim"] = f.dim
        if f.max_length is not None:
            kwargs["max_length"] = f.max_length
        if f.element_type is not None:
            kwargs["element_type"] = DataType[f.element_type]
        if f.max_capacity is not None:
            kwargs["max_capacity"] = f.max_capacity
        if f.nullable:
            kwargs["nullable"] = True
        schema.add_field(f.name, DataType[f.data_type], **kwargs)
    client.create_collection(spec.name, schema=schema)


def execute(client: MilvusClient, spec: CollectionSpec, action: Action) -> None:
    name = spec.name
    if isinstance(action, CreateCollection):
        _create(client, spec)
    elif isinstance(action, CreatePartition):
        client.create_partition(name, action.name)
    elif isinstance(action, CreateIndex):
        params = client.prepare_index_params()
        extra: dict[str, Any] = {}
        if action.index.metric_type:
            extra["metric_type"] = action.index.metric_type
        params.add_index(
            field_name=action.index.field_name,
            index_type=action.index.index_type,
            index_name=action.index.name,
            params=dict(action.index.params or {}),
            **extra,
        )
        client.create_index(name, params)
    elif isinstance(action, SetProperties):
        client.alter_collection_properties(name, dict(action.properties))
    elif isinstance(action, Load):
        client.load_collection(name)
    elif isinstance(action, Release):
        client.release_collection(name)


def progress(client: MilvusClient, name: str) -> dict[str, Any]:
    """Rows and per-index build progress, for status."""
    stats = client.get_collection_stats(name)
    indexes: dict[str, Any] = {}
    for index_name in client.list_indexes(name):
        desc = client.describe_index(name, index_name) or {}
        indexes[index_name] = {
            "indexedRows": _int(desc.get("indexed_rows")) or 0,
            "totalRows": _int(desc.get("total_rows")) or 0,
            "state": str(desc.get("state", "")),
        }
    return {"rows": _int(stats.get("row_count")) or 0, "indexes": indexes}


def describe(action: Action) -> str:
    if isinstance(action, CreatePartition):
        return f"create partition {action.name}"
    if isinstance(action, CreateIndex):
        return f"create index {action.index.name} ({action.index.index_type})"
    if isinstance(action, SetProperties):
        return "set properties " + json.dumps(dict(action.properties), sort_keys=True)
    return {CreateCollection: "create collection", Load: "load", Release: "release"}[type(action)]
