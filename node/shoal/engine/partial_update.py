"""Partial upsert (`upsert(..., partial_update=True)`): complete a batch from the stored rows.

`complete_partial(schema, batch, n, fetch)` returns a full batch: every field the caller
left out is taken from the stored row with the same primary key (nulls stay null), and a
row whose key is new gets the field's default or null (a field with neither is an error
naming it). Dynamic keys merge: the stored keys stay and the given ones replace theirs.
`fetch(keys, fields)` reads the stored rows; the engine calls this under the collection's
write lock so nothing lands between the read and the upsert. Pure apart from `fetch`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from shoal.engine.requests import QueryResult
from shoal.engine.validation import normalize_insert
from shoal.errors import invalid
from shoal.schema import (
    DYNAMIC_FIELD,
    SCALAR_DTYPES,
    VECTOR_DTYPES,
    Batch,
    CollectionSchema,
    Column,
    DataType,
    FieldSchema,
    object_array,
)

Fetch = Callable[[np.ndarray, list[str]], QueryResult]


def complete_partial(schema: CollectionSchema, batch: Batch, n: int, fetch: Fetch) -> Batch:
    pk = schema.primary_field
    if pk.name not in batch:
        raise invalid(f"partial update requires the primary key field ({pk.name}) in every row")
    given = normalize_insert(schema, batch, n, for_upsert=True, partial=True)
    keys = np.asarray(given[pk.name].values)
    missing = [f for f in schema.fields if f.name not in given and not f.is_dynamic]
    dynamic = schema.enable_dynamic_field
    wanted = [f.name for f in missing] + ([DYNAMIC_FIELD] if dynamic else [])
    if not wanted:
        return dict(batch)
    stored = fetch(keys, wanted)
    stored_keys = np.asarray(stored.fields[pk.name].values).tolist() if pk.name in stored.fields else []
    where = {k: i for i, k in enumerate(stored_keys)}
    rows = np.array([where.get(k, -1) for k in keys.tolist()], dtype=np.int64)
    out: Batch = {name: col for name, col in batch.items() if name in given or name == pk.name}
    for f in missing:
        out[f.name] = _column_from_stored(f, stored.fields.get(f.name), rows, keys)
    if dynamic:
        out[DYNAMIC_FIELD] = _merge_dynamic(stored.fields.get(DYNAMIC_FIELD), given[DYNAMIC_FIELD], rows)
        for name in [k for k in batch if k != DYNAMIC_FIELD and schema.field(k) is None]:
            out.pop(name, None)  # now inside $meta
    return out


def _column_from_stored(f: FieldSchema, stored: Column | None, rows: np.ndarray, keys: np.ndarray) -> Column:
    n = len(rows)
    new = rows < 0
    if new.any() and f.default_value is None and not f.nullable:
        key = keys[int(np.flatnonzero(new)[0])]
        raise invalid(
            f"partial update: the row with primary key {key!r} does not exist yet and field ({f.name}) "
            "is missing, has no default value and is not nullable"
        )
    have = np.flatnonzero(~new)
    valid = np.zeros(n, dtype=bool)
    if stored is None or not len(have):
        return Column(_empty_like(f, None, n), valid)
    src = rows[have]
    values = _empty_like(f, stored.values, n)
    if values.dtype == object:
        for i, j in zip(have.tolist(), src.tolist(), strict=True):
            values[i] = stored.values[j]
    else:
        values[have] = np.asarray(stored.values)[src]
    valid[have] = True if stored.valid is None else np.asarray(stored.valid)[src]
    return Column(values, None if valid.all() else valid)


def _empty_like(f: FieldSchema, sample: Any, n: int) -> np.ndarray:
    if isinstance(sample, np.ndarray) and sample.dtype != object:
        return np.zeros((n, *sample.shape[1:]), dtype=sample.dtype)
    if sample is None and f.dtype.is_dense_vector:
        return np.zeros((n, f.vector_width()), dtype=VECTOR_DTYPES[f.dtype])
    if sample is None and f.dtype in SCALAR_DTYPES:
        return np.zeros(n, dtype=SCALAR_DTYPES[f.dtype])
    fill: Any = "" if f.dtype.is_string else ({} if f.dtype is DataType.SPARSE_FLOAT_VECTOR else None)
    return object_array([fill] * n)


def _merge_dynamic(stored: Column | None, given: Column, rows: np.ndarray) -> Column:
    merged: list[dict[str, Any]] = []
    for i, j in enumerate(rows.tolist()):
        base = {}
        if stored is not None and j >= 0 and (stored.valid is None or stored.valid[j]):
            base = dict(stored.values[j] or {})
        base.update(given.values[i] or {})
        merged.append(base)
    return Column(object_array(merged))
