"""Observes and changes one collection through pymilvus' MilvusClient.

Translates pymilvus' describe results into `collections_diff` observations and carries
out its actions. The only module of the operator that speaks the Milvus protocol.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from pymilvus import DataType, MilvusClient

from shoal_operator import collections_migration as migration
from shoal_operator.collections_diff import (
    Action,
    AddField,
    CreateCollection,
    CreateIndex,
    CreatePartition,
    Load,
    ObservedCollection,
    ObservedField,
    ObservedIndex,
    PointAlias,
    Release,
    SetProperties,
)
from shoal_operator.specs.collection import CollectionSpec, FieldSpec, IndexSpec


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
        aliases=tuple(client.list_aliases(name).get("aliases") or ()),
        partitions=tuple(client.list_partitions(name)),
        indexes=tuple(indexes),
        loaded=getattr(state, "name", str(state)) == "Loaded",
        properties={str(k): str(v) for k, v in (info.get("properties") or {}).items()},
    )


def alias_target(client: MilvusClient, alias: str) -> str | None:
    """The collection `alias` names, or None when there is no such alias."""
    if alias not in (client.list_aliases().get("aliases") or ()):  # describe_alias would log an error
        return None
    return str(client.describe_alias(alias).get("collection_name") or "") or None


def _field_kwargs(f: FieldSpec) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"description": f.description}
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
    if f.default_value is not None:
        default = migration.parse_default(f)
        kwargs["default_value"] = _PROTO_KIND.get(f.data_type, lambda v: v)(default)
    return kwargs


# pymilvus sends a plain int as an INT64 default and a plain float by the field's type; Milvus
# refuses a default whose kind is not the field's, so a narrow int goes as its numpy type.
_PROTO_KIND: dict[str, Any] = {"INT8": np.int8, "INT16": np.int16, "INT32": np.int32}


def _create(client: MilvusClient, spec: CollectionSpec, name: str) -> None:
    schema_spec = spec.collection_schema
    schema = MilvusClient.create_schema(
        auto_id=schema_spec.auto_id,
        enable_dynamic_field=schema_spec.enable_dynamic_field,
        description=schema_spec.description,
    )
    for f in schema_spec.fields:
        kwargs = _field_kwargs(f)
        if f.name == schema_spec.primary_key:
            kwargs["is_primary"] = True
            kwargs["auto_id"] = schema_spec.auto_id
        if f.name == schema_spec.partition_key:
            kwargs["is_partition_key"] = True
        schema.add_field(f.name, DataType[f.data_type], **kwargs)
    client.create_collection(name, schema=schema)


def _create_index(client: MilvusClient, name: str, index: IndexSpec) -> None:
    params = client.prepare_index_params()
    extra: dict[str, Any] = {}
    if index.metric_type:
        extra["metric_type"] = index.metric_type
    params.add_index(
        field_name=index.field_name,
        index_type=index.index_type,
        index_name=index.name,
        params=dict(index.params or {}),
        **extra,
    )
    client.create_index(name, params)


def execute(client: MilvusClient, spec: CollectionSpec, action: Action, name: str | None = None) -> None:
    """Carry out `action` on collection `name` (the live one; the spec's name by default)."""
    name = name or spec.name
    if isinstance(action, CreateCollection):
        _create(client, spec, name)
    elif isinstance(action, AddField):
        f = action.field
        kwargs = _field_kwargs(f)
        client.add_collection_field(name, f.name, DataType[f.data_type], desc=kwargs.pop("description"), **kwargs)
    elif isinstance(action, CreatePartition):
        client.create_partition(name, action.name)
    elif isinstance(action, CreateIndex):
        _create_index(client, name, action.index)
    elif isinstance(action, PointAlias):
        if action.move:
            client.alter_alias(name, action.alias)
        else:
            client.create_alias(name, action.alias)
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


def _copy_batch(client: MilvusClient, spec: CollectionSpec, source: str, target: str,
                after: Any) -> tuple[int, Any]:
    """Copy the next batch of rows above key `after` in key order; (rows copied, last key)."""
    pk = spec.collection_schema.primary_key
    live = observe(client, source)
    if live is None:
        raise migration.MigrationRefused(f"the collection being migrated, {source}, is gone")
    old_types = {f.name: f.data_type for f in live.fields}
    expr = "" if after is None else f"{pk} > {json.dumps(after)}"
    iterator = client.query_iterator(source, batch_size=migration.COPY_BATCH_ROWS, filter=expr,
                                     output_fields=["*"])
    try:
        rows = iterator.next()
    finally:
        iterator.close()
    if not rows:
        return 0, after
    keys = [row[pk] for row in rows]
    if keys != sorted(keys):  # resuming from the last key is only safe in key order
        raise migration.MigrationRefused(f"{source} returned rows out of primary-key order; copy stopped")
    # Upsert: a batch repeated after an operator restart writes the same rows again, not twice.
    client.upsert(target, [migration.convert_row(row, spec, old_types) for row in rows])
    return len(rows), keys[-1]


def migrate(client: MilvusClient, spec: CollectionSpec, step: migration.Step) -> tuple[int, Any]:
    """Carry out one migration step; (rows copied, last key copied) for the copying ones."""
    if isinstance(step, migration.CreateTarget):
        if client.has_collection(step.name):  # a retry after a half-done step starts clean
            client.drop_collection(step.name)
        _create(client, spec, step.name)
        for p in spec.partitions:
            if p != "_default":
                client.create_partition(step.name, p)
        for index in spec.indexes:
            _create_index(client, step.name, index)
        if spec.properties:
            client.alter_collection_properties(step.name, dict(spec.properties))
        client.load_collection(step.name)
        return 0, None
    if isinstance(step, migration.CopyBatch):
        return _copy_batch(client, spec, step.source, step.target, step.after)
    copied, last = 0, step.after
    while True:
        n, last = _copy_batch(client, spec, step.source, step.target, last)
        copied += n
        if n == 0:
            break
    client.flush(step.target)
    assert spec.alias is not None  # the CRD requires it with blueGreen
    if alias_target(client, spec.alias) is None:
        client.create_alias(step.target, spec.alias)
    else:
        client.alter_alias(step.target, spec.alias)
    return copied, last


def describe(action: Action) -> str:
    if isinstance(action, AddField):
        return f"add field {action.field.name} ({action.field.data_type})"
    if isinstance(action, PointAlias):
        return f"point alias {action.alias} here"
    if isinstance(action, CreatePartition):
        return f"create partition {action.name}"
    if isinstance(action, CreateIndex):
        return f"create index {action.index.name} ({action.index.index_type})"
    if isinstance(action, SetProperties):
        return "set properties " + json.dumps(dict(action.properties), sort_keys=True)
    return {CreateCollection: "create collection", Load: "load", Release: "release"}[type(action)]
