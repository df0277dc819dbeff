"""Blue-green schema migration of one collection: the change is made on a copy, then the alias moves.

A change Milvus cannot make in place (a field's type, the primary key, a removed field, a
non-nullable new field) is made by creating `<name>_v<N>` with the spec's schema and indexes,
copying the rows across in primary-key order (a batch per reconcile pass, resumable from the
last key recorded in status), loading it, and then moving the alias the applications use in
one `alter_alias`. The replaced collection is kept for `migrationRetentionSeconds` (listed
in status.retained), then dropped; a later migration need not wait for that. Pure: the observed collections, the status and the clock come in as arguments;
`collections_client` carries out the steps.

Rows written to the old collection after the copy passed their key are not carried over
(there is no change stream to follow), except that the switch itself first copies the keys
above the last one copied, then moves the alias: append-only writers with growing keys
lose only what lands in that last instant; updates and deletes made during the copy are
not carried. docs/operator.md says so.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shoal_operator.collections_diff import ObservedCollection, ObservedField
from shoal_operator.specs.collection import CollectionSpec, FieldSpec

_INT_WIDTH = {"INT8": 8, "INT16": 16, "INT32": 32, "INT64": 64}
# Integers a float type holds exactly: float32 has a 24-bit significand, float64 a 53-bit one.
_EXACT_INT_BITS = {"FLOAT": 24, "DOUBLE": 53}
_SCALARS_AS_TEXT = {"BOOL", "INT8", "INT16", "INT32", "INT64", "FLOAT", "DOUBLE", "VARCHAR"}

COPY_BATCH_ROWS = 1000


class MigrationRefused(ValueError):
    """The change cannot be made without losing data; the message says which field and why."""


def _lossless(old: ObservedField, new: FieldSpec) -> str | None:
    """Why `old` values cannot become `new` values without loss, or None when they can."""
    a, b = old.data_type, new.data_type
    if a == b:
        if new.dim is not None and old.dim is not None and new.dim != old.dim:
            return f"field {new.name}: vectors cannot change dim ({old.dim} -> {new.dim})"
        if a == "VARCHAR" and old.max_length and new.max_length and new.max_length < old.max_length:
            return f"field {new.name}: maxLength shrinks ({old.max_length} -> {new.max_length}), values may not fit"
        return None
    if a in _INT_WIDTH and b in _INT_WIDTH and _INT_WIDTH[a] <= _INT_WIDTH[b]:
        return None
    if a in _INT_WIDTH and b in _EXACT_INT_BITS and _INT_WIDTH[a] < _EXACT_INT_BITS[b]:
        return None
    if a == "FLOAT" and b == "DOUBLE":
        return None
    if b == "VARCHAR" and a in _SCALARS_AS_TEXT:
        return None
    return f"field {new.name}: {a} -> {b} is not a lossless conversion"


def refusals(spec: CollectionSpec, observed: ObservedCollection) -> list[str]:
    """Every reason the spec's schema cannot be reached by copying the observed collection."""
    schema = spec.collection_schema
    live = {f.name: f for f in observed.fields}
    reasons: list[str] = []
    if schema.auto_id:
        reasons.append("autoId collections cannot be copied with their primary keys")
    pk = schema.primary_key
    if pk not in live:
        reasons.append(f"primary key {pk} does not exist in the collection, so rows have no key to copy")
    for want in schema.fields:
        have = live.get(want.name)
        if have is None:
            if not want.nullable and want.default_value is None and want.name != pk:
                reasons.append(f"field {want.name} is new, not nullable and has no defaultValue")
            continue
        reason = _lossless(have, want)
        if reason:
            reasons.append(reason)
    return reasons


def parse_default(field: FieldSpec) -> Any:
    """A field's `defaultValue` text read as the field's type (None when unset)."""
    text = field.default_value
    if text is None:
        return None
    kind = field.data_type
    try:
        if kind == "BOOL":
            if text.lower() not in ("true", "false"):
                raise ValueError(text)
            return text.lower() == "true"
        if kind in _INT_WIDTH:
            return int(text)
        if kind in ("FLOAT", "DOUBLE"):
            return float(text)
        if kind == "JSON":
            return json.loads(text)
    except ValueError as exc:
        raise MigrationRefused(f"field {field.name}: defaultValue {text!r} is not a {kind}") from exc
    if kind == "VARCHAR":
        return text
    raise MigrationRefused(f"field {field.name}: Milvus has no default values for {kind}")


def convert(value: Any, old_type: str, new: FieldSpec) -> Any:
    """One value of a `old_type` field as the `new` field's type (checked lossless by `refusals`)."""
    if value is None or old_type == new.data_type:
        return value
    if new.data_type == "VARCHAR":
        if old_type == "BOOL":
            text = "true" if value else "false"
        elif old_type in ("FLOAT", "DOUBLE") and math.isfinite(value) and float(value).is_integer():
            text = repr(float(value))
        else:
            text = str(value)
        if new.max_length is not None and len(text.encode()) > new.max_length:
            raise MigrationRefused(f"field {new.name}: {text!r} is longer than maxLength {new.max_length}")
        return text
    if new.data_type in _INT_WIDTH:
        return int(value)
    return float(value)


def convert_row(row: Mapping[str, Any], spec: CollectionSpec, old_types: Mapping[str, str]) -> dict[str, Any]:
    """A source row in the spec's shape: converted fields, defaults for new ones, removed ones
    dropped; keys that are no field stay as dynamic fields when the spec enables them."""
    schema = spec.collection_schema
    out: dict[str, Any] = {}
    names = {f.name for f in schema.fields}
    for f in schema.fields:
        if f.name in row and f.name in old_types:
            out[f.name] = convert(row[f.name], old_types[f.name], f)
        else:
            out[f.name] = parse_default(f)
    if schema.enable_dynamic_field:
        for key, value in row.items():
            if key not in names and key not in old_types:
                out[key] = value
    return out


def next_name(spec_name: str, active: str) -> str:
    """`docs` -> `docs_v2` -> `docs_v3`: the version follows the active collection's."""
    match = re.fullmatch(re.escape(spec_name) + r"_v(\d+)", active)
    return f"{spec_name}_v{int(match.group(1)) + 1 if match else 2}"


# The steps, decided by `next_step` and carried out by `collections_client.migrate`.


@dataclass(frozen=True)
class CreateTarget:
    name: str


@dataclass(frozen=True)
class CopyBatch:
    source: str
    target: str
    after: Any
    """Copy the rows whose primary key is above this one (None: from the first)."""


@dataclass(frozen=True)
class Switch:
    """Copy what came after `after`, then move the alias to `target` in one step."""

    source: str
    target: str
    after: Any


Step = CreateTarget | CopyBatch | Switch


def next_step(state: Mapping[str, Any] | None, now: datetime) -> Step | None:
    """What the migration recorded in `state` (status.migration) does next; None when idle."""
    if not state:
        return None
    phase = state.get("phase")
    if phase == "Creating":
        return CreateTarget(state["target"])
    if phase == "Copying":
        return CopyBatch(state["source"], state["target"], state.get("lastKey"))
    if phase == "Switching":
        return Switch(state["source"], state["target"], state.get("lastKey"))
    return None


def in_progress(state: Mapping[str, Any] | None) -> bool:
    return next_step(state, datetime.min) is not None


def retain(retained: list[Mapping[str, Any]], name: str, spec: CollectionSpec, now: datetime) -> list[dict[str, Any]]:
    """status.retained once `name` was replaced: it is dropped after the retention."""
    drop_after = now + timedelta(seconds=spec.migration_retention_seconds)
    return [dict(r) for r in retained if r.get("name") != name] + [{"name": name, "dropAfter": drop_after.isoformat()}]


def expired(retained: list[Mapping[str, Any]], now: datetime) -> list[str]:
    """The replaced collections whose retention has passed."""
    return [str(r["name"]) for r in retained if datetime.fromisoformat(str(r["dropAfter"])) <= now]


def start(source: str, spec: CollectionSpec, now: datetime, rows_total: int) -> dict[str, Any]:
    return {
        "phase": "Creating",
        "source": source,
        "target": next_name(spec.name, source),
        "rowsCopied": 0,
        "rowsTotal": rows_total,
        "started": now.isoformat(),
    }


def after(state: Mapping[str, Any], step: Step, now: datetime,
          copied: int = 0, last_key: Any = None) -> dict[str, Any]:
    """The state once `step` succeeded (`copied` rows up to `last_key` for a copy batch)."""
    out = dict(state)
    if isinstance(step, CreateTarget):
        out["phase"] = "Copying"
    elif isinstance(step, CopyBatch):
        out["rowsCopied"] = int(out.get("rowsCopied", 0)) + copied
        if copied:
            out["lastKey"] = last_key
        else:
            out["phase"] = "Switching"
    elif isinstance(step, Switch):
        out["rowsCopied"] = int(out.get("rowsCopied", 0)) + copied
        out["phase"] = "Succeeded"
        out["finished"] = now.isoformat()
    return out


def describe(step: Step) -> str:
    if isinstance(step, CreateTarget):
        return f"migration: create {step.name} with the new schema"
    if isinstance(step, CopyBatch):
        return f"migration: copy rows {step.source} -> {step.target}"
    return f"migration: switch the alias from {step.source} to {step.target}"
