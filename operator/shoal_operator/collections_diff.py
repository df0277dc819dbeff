"""What to do to make a live collection match its `Collection` spec. Pure.

`diff(spec, observed)` returns the actions that only add (create the collection, add a
nullable field online, partitions, indexes; set properties; load or release; point the
alias) and the drift it will not fix in place because fixing it would drop data or
rebuild an index (a changed field type, a removed field, a different index type). Field
drift is also returned as `offline`: what a blue-green migration (`collections_migration`)
can make on a copy. Neighbours: `collections_client` observes and executes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shoal_operator.specs.collection import CollectionSpec, FieldSpec, IndexSpec


@dataclass(frozen=True)
class ObservedField:
    name: str
    data_type: str
    dim: int | None = None
    max_length: int | None = None
    is_primary: bool = False


@dataclass(frozen=True)
class ObservedIndex:
    name: str
    field_name: str
    index_type: str
    metric_type: str | None = None


@dataclass(frozen=True)
class ObservedCollection:
    fields: tuple[ObservedField, ...]
    aliases: tuple[str, ...] = ()
    partitions: tuple[str, ...] = ("_default",)
    indexes: tuple[ObservedIndex, ...] = ()
    loaded: bool = False
    properties: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CreateCollection:
    pass


@dataclass(frozen=True)
class AddField:
    """Milvus adds a field online only when it is nullable; old rows read its default."""

    field: FieldSpec


@dataclass(frozen=True)
class PointAlias:
    """Create the alias, or move it here from another collection (one atomic alter)."""

    alias: str
    move: bool


@dataclass(frozen=True)
class CreatePartition:
    name: str


@dataclass(frozen=True)
class CreateIndex:
    index: IndexSpec


@dataclass(frozen=True)
class SetProperties:
    properties: Mapping[str, str]


@dataclass(frozen=True)
class Load:
    pass


@dataclass(frozen=True)
class Release:
    pass


Action = CreateCollection | AddField | CreatePartition | CreateIndex | SetProperties | Load | Release | PointAlias


@dataclass(frozen=True)
class Diff:
    actions: list[Action]
    drift: list[str]
    offline: list[str] = field(default_factory=list)
    """The field drift only a migration can apply (a subset of `drift`)."""


def _field_drift(spec: CollectionSpec, observed: ObservedCollection) -> tuple[list[Action], list[str]]:
    actions: list[Action] = []
    drift: list[str] = []
    live = {f.name: f for f in observed.fields}
    schema = spec.collection_schema
    for want in schema.fields:
        have = live.get(want.name)
        if have is None:
            if want.nullable and want.name != schema.primary_key:
                actions.append(AddField(want))
            else:
                drift.append(f"field {want.name} is missing from the collection and Milvus adds only nullable fields")
            continue
        if have.data_type != want.data_type:
            drift.append(f"field {want.name} is {have.data_type} in the collection, spec says {want.data_type}")
        if want.dim is not None and have.dim is not None and have.dim != want.dim:
            drift.append(f"field {want.name} has dim {have.dim}, spec says {want.dim}")
        if want.max_length is not None and have.max_length is not None and have.max_length != want.max_length:
            drift.append(f"field {want.name} has maxLength {have.max_length}, spec says {want.max_length}")
        if have.is_primary != (want.name == schema.primary_key):
            drift.append(f"field {want.name}: primary key differs from the spec")
    wanted = {f.name for f in schema.fields}
    for name in sorted(set(live) - wanted):
        drift.append(f"field {name} exists in the collection but not in the spec")
    return actions, drift


def _index_actions(spec: CollectionSpec, observed: ObservedCollection) -> tuple[list[Action], list[str]]:
    actions: list[Action] = []
    drift: list[str] = []
    live = {i.name: i for i in observed.indexes}
    for want in spec.indexes:
        have = live.get(want.name)
        if have is None:
            actions.append(CreateIndex(want))
        elif have.index_type != want.index_type and want.index_type != "AUTOINDEX":
            drift.append(f"index {want.name} is {have.index_type}, spec says {want.index_type}")
        elif want.metric_type and have.metric_type and have.metric_type != want.metric_type:
            drift.append(f"index {want.name} uses {have.metric_type}, spec says {want.metric_type}")
    return actions, drift


def _alias_actions(spec: CollectionSpec, observed: ObservedCollection, elsewhere: bool) -> list[Action]:
    if spec.alias is None or spec.alias in observed.aliases:
        return []
    return [PointAlias(spec.alias, move=elsewhere)]


def diff(spec: CollectionSpec, observed: ObservedCollection | None, alias_elsewhere: bool = False) -> Diff:
    """`alias_elsewhere`: the spec's alias exists and names another collection."""
    if observed is None:
        actions: list[Action] = [CreateCollection()]
        actions += [CreatePartition(p) for p in spec.partitions if p != "_default"]
        actions += [CreateIndex(i) for i in spec.indexes]
        if spec.properties:
            actions.append(SetProperties(dict(spec.properties)))
        if spec.load_state == "Loaded":
            actions.append(Load())
        if spec.alias is not None:
            actions.append(PointAlias(spec.alias, move=alias_elsewhere))
        return Diff(actions, [])
    actions, drift = _field_drift(spec, observed)
    offline = list(drift)
    actions += [CreatePartition(p) for p in spec.partitions if p not in observed.partitions]
    index_actions, index_drift = _index_actions(spec, observed)
    actions += index_actions
    drift += index_drift
    changed = {k: v for k, v in sorted((spec.properties or {}).items()) if observed.properties.get(k) != v}
    if changed:
        actions.append(SetProperties(changed))
    if spec.load_state == "Loaded" and not observed.loaded:
        actions.append(Load())
    elif spec.load_state == "Released" and observed.loaded:
        actions.append(Release())
    actions += _alias_actions(spec, observed, alias_elsewhere)
    return Diff(actions, drift, offline)
