"""Insert/upsert batch checks: a decoded `Batch` against the collection's schema.

`normalize_insert` is pure: it never mutates its input, and returns a batch with one
column per schema field (plus `$meta` when the dynamic field is on) in the schema's
dtypes, defaults filled, nulls masked. Every error is code 1100 and names the field.
The engine's write path calls it on every insert and upsert; the api layer only decodes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from shoal.engine.fulltext import fill_outputs, function_outputs
from shoal.errors import invalid, invalid_value
from shoal.geometry import geometry_wkt
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
from shoal.timestamptz import parse_iso

_ELEMENT_CHECK: dict[DataType, tuple[type, ...]] = {
    DataType.BOOL: (bool, np.bool_),
    DataType.INT8: (int, np.integer),
    DataType.INT16: (int, np.integer),
    DataType.INT32: (int, np.integer),
    DataType.INT64: (int, np.integer),
    DataType.FLOAT: (int, float, np.integer, np.floating),
    DataType.DOUBLE: (int, float, np.integer, np.floating),
    DataType.VARCHAR: (str,),
}

_INT_RANGE: dict[DataType, tuple[int, int]] = {
    dt: (int(np.iinfo(SCALAR_DTYPES[dt]).min), int(np.iinfo(SCALAR_DTYPES[dt]).max))
    for dt in (DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64)
}


def normalize_insert(
    schema: CollectionSchema,
    batch: Batch,
    num_rows: int,
    *,
    for_upsert: bool = False,
    partial: bool = False,
    timezone: str | None = None,
) -> Batch:
    """Check `batch` against `schema`; return it cast, defaults filled, dynamic keys merged.

    `partial` (partial upsert) lets non-primary fields be absent; they stay absent.
    """
    if num_rows <= 0:
        raise invalid("the number of rows to insert must be positive")
    for name, col in batch.items():
        if len(col) != num_rows:
            raise invalid(
                f"the num_rows ({len(col)}) of field ({name}) is not equal to passed num_rows ({num_rows})"
            )
        if col.valid is not None and len(col.valid) != num_rows:
            raise invalid(f"the valid_data of field ({name}) has {len(col.valid)} entries for {num_rows} rows")

    out: Batch = {}
    extra = [n for n in batch if n != DYNAMIC_FIELD and schema.field(n) is None]
    if extra and not schema.enable_dynamic_field:
        raise invalid(
            f"Attempt to insert an unexpected field `{extra[0]}` to collection without enabling dynamic field"
        )
    if DYNAMIC_FIELD in batch and not schema.enable_dynamic_field:
        raise invalid("the dynamic field ($meta) was given but the collection has no dynamic field")

    outputs = function_outputs(schema) if schema.functions else set()
    for f in schema.fields:
        if (f.is_dynamic and f.name == DYNAMIC_FIELD) or f.name in outputs:
            continue
        col = batch.get(f.name)
        if f.is_primary:
            if f.auto_id and col is not None and not for_upsert:
                # Milvus counts the fields given plus those it generates (the key, function outputs)
                given = {name for name in batch if schema.field(name) is not None or name == DYNAMIC_FIELD}
                actual = len(given) + 1 + len(outputs - given)
                raise invalid_value(str(len(schema.fields)), str(actual), "more fieldData has pass in")
            if f.auto_id and col is None and not for_upsert:
                continue
            if col is None:
                raise invalid(f"the primary key field ({f.name}) is missing in the inserted data")
        if col is None:
            if partial:
                continue
            col = _missing_column(f, num_rows)
        out[f.name] = _normalize_column(f, col, num_rows, timezone)

    if schema.functions:
        fill_outputs(schema, batch, out)
    if schema.enable_dynamic_field:
        out[DYNAMIC_FIELD] = _dynamic_column(batch, extra, num_rows)
    return out


def _missing_column(f: FieldSchema, n: int) -> Column:
    if f.default_value is not None or f.nullable:
        return Column(_placeholder_values(f, n), np.zeros(n, dtype=bool))
    raise invalid(f"Insert missed an field `{f.name}` to collection without set nullable==true or set default_value")


def _placeholder_values(f: FieldSchema, n: int) -> np.ndarray:
    if f.dtype in SCALAR_DTYPES:
        return np.zeros(n, dtype=SCALAR_DTYPES[f.dtype])
    if f.dtype.is_dense_vector:
        return np.zeros((n, f.vector_width()), dtype=VECTOR_DTYPES[f.dtype])
    if f.dtype.is_string:
        return object_array([""] * n)
    return object_array([None] * n)


def _normalize_column(f: FieldSchema, col: Column, n: int, timezone: str | None = None) -> Column:
    valid = None if col.valid is None else np.asarray(col.valid, dtype=bool)
    if valid is not None and not valid.all():
        if f.default_value is None and not f.nullable:
            raise invalid(f"the field ({f.name}) is not nullable, but null values were given")
    values = _cast_values(f, col.values, valid, n, timezone)
    if valid is not None and f.default_value is not None and not valid.all():
        values = _fill_default(f, values, valid)
        valid = None
    if valid is not None and valid.all():
        valid = None
    if valid is not None and not f.nullable:
        raise invalid(f"the field ({f.name}) is not nullable, but null values were given")
    return Column(values, valid)


def _fill_default(f: FieldSchema, values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    out = values.copy()
    idx = np.flatnonzero(~valid)
    if out.dtype == object:
        for i in idx:
            out[i] = f.default_value
    else:
        out[idx] = f.default_value
    return out


def _cast_values(
    f: FieldSchema, values: np.ndarray, valid: np.ndarray | None, n: int, timezone: str | None = None
) -> np.ndarray:
    dt = f.dtype
    ok = np.ones(n, dtype=bool) if valid is None else valid
    if dt in SCALAR_DTYPES:
        return _cast_scalar(f, values, ok)
    if dt is DataType.TIMESTAMPTZ:
        if np.asarray(values).dtype.kind in "iu":  # already microseconds (defaults, restored data)
            return np.asarray(values, dtype=np.int64)
        return np.array([parse_iso(v, timezone) if ok[i] else 0 for i, v in enumerate(values)], dtype=np.int64)
    if dt is DataType.GEOMETRY:
        return object_array(geometry_wkt([v if ok[i] else None for i, v in enumerate(values)], f.name))
    if dt.is_string:
        return _check_strings(f, values, ok)
    if dt is DataType.JSON:
        return object_array(list(values))
    if dt is DataType.ARRAY:
        return _check_arrays(f, values, ok)
    if dt is DataType.ARRAY_OF_STRUCT:
        return _check_struct_arrays(f, values, ok)
    if dt is DataType.SPARSE_FLOAT_VECTOR:
        return _check_sparse(f, values, ok)
    if dt.is_dense_vector:
        return _cast_dense(f, values)
    raise invalid(f"field {f.name}: data type {dt.name} is not supported")


def _cast_scalar(f: FieldSchema, values: np.ndarray, ok: np.ndarray) -> np.ndarray:
    dt = f.dtype
    target = SCALAR_DTYPES[dt]
    arr = np.asarray(values)
    if arr.dtype == object:
        items = [v if ok[i] else 0 for i, v in enumerate(arr)]
        kinds = _ELEMENT_CHECK[dt]
        if any(not isinstance(v, kinds) or (dt is not DataType.BOOL and isinstance(v, bool)) for v in items):
            raise invalid(f"the data type of field ({f.name}) does not match: expected {dt.name}")
        arr = np.asarray(items)
    if arr.ndim != 1:
        raise invalid(f"field ({f.name}) expects one {dt.name} value per row")
    if dt is DataType.BOOL:
        if arr.dtype != np.bool_:
            raise invalid(f"the data type of field ({f.name}) does not match: expected BOOL")
        return arr.astype(np.bool_)
    if dt.is_integer:
        if arr.dtype.kind not in "iu":
            raise invalid(f"the data type of field ({f.name}) does not match: expected {dt.name}")
        lo, hi = _INT_RANGE[dt]
        live = arr[ok]
        if len(live) and (int(live.min()) < lo or int(live.max()) > hi):
            raise invalid(f"the value of field ({f.name}) is out of range for {dt.name} [{lo}, {hi}]")
        return arr.astype(target)
    if arr.dtype.kind not in "iuf":
        raise invalid(f"the data type of field ({f.name}) does not match: expected {dt.name}")
    out = arr.astype(target)
    if not np.isfinite(out[ok]).all():
        raise invalid(f"the value of field ({f.name}) must be a finite number")
    return out


def _check_strings(f: FieldSchema, values: np.ndarray, ok: np.ndarray) -> np.ndarray:
    limit = f.max_length
    if ok.all() and set(map(type, values)) <= {str}:  # the common case, checked at C speed
        longest = max(map(len, values), default=0)
        if limit is None or longest <= limit:
            return values if values.dtype == object else object_array(list(values))
    out = []
    for i, v in enumerate(values):
        if not ok[i]:
            out.append("")
            continue
        if not isinstance(v, str):
            raise invalid(f"the data type of field ({f.name}) does not match: expected VARCHAR, got {type(v).__name__}")
        if limit is not None and len(v) > limit:
            raise invalid(
                f"length of varchar field {f.name} exceeds max length, row number: {i}, "
                f"length: {len(v)}, max length: {limit}"
            )
        out.append(v)
    return object_array(out)


def _check_arrays(f: FieldSchema, values: np.ndarray, ok: np.ndarray) -> np.ndarray:
    et = f.element_type or DataType.NONE
    kinds = _ELEMENT_CHECK.get(et)
    out: list[Any] = []
    for i, v in enumerate(values):
        if not ok[i]:
            out.append(None)
            continue
        if isinstance(v, np.ndarray):
            v = v.tolist()
        if not isinstance(v, (list, tuple)):
            raise invalid(f"the data type of field ({f.name}) does not match: expected ARRAY")
        if f.max_capacity is not None and len(v) > f.max_capacity:
            raise invalid(f"the length ({len(v)}) of {i}th array exceeds max capacity ({f.max_capacity})")
        items = list(v)
        for x in items:
            bad = kinds is None or not isinstance(x, kinds) or (et is not DataType.BOOL and isinstance(x, bool))
            if bad:
                raise invalid(f"the element type of array field ({f.name}) does not match: expected {et.name}")
        if et in _INT_RANGE:
            lo, hi = _INT_RANGE[et]
            if any(not lo <= int(x) <= hi for x in items):
                raise invalid(f"an element of array field ({f.name}) is out of range for {et.name}")
            items = [int(x) for x in items]
        elif et.is_float:
            items = [float(x) for x in items]
        elif et.is_string and f.max_length is not None:
            too_long = next((x for x in items if len(x) > f.max_length), None)
            if too_long is not None:
                raise invalid(
                    f"the length ({len(too_long)}) of varchar field ({f.name}) exceeds max length ({f.max_length})"
                )
        out.append(items)
    return object_array(out)


def _check_struct_arrays(f: FieldSchema, values: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Rows of member dicts, each member checked as an array of its type (vectors by dim)."""
    members = {m.name: m for m in f.struct_fields}
    out: list[Any] = []
    for i, row in enumerate(values):
        if not ok[i]:
            out.append(None)
            continue
        if not isinstance(row, (list, tuple)):
            raise invalid(f"the data type of field ({f.name}) does not match: expected an array of structs")
        if f.max_capacity is not None and len(row) > f.max_capacity:
            raise invalid(f"the length ({len(row)}) of {i}th array exceeds max capacity ({f.max_capacity})")
        for e in row:
            if not isinstance(e, dict) or set(e) != set(members):
                raise invalid(f"each element of struct array field ({f.name}) must have exactly the fields "
                              f"{sorted(members)}")
        clean: list[dict[str, Any]] = [{} for _ in row]
        for name, m in members.items():
            items = [e[name] for e in row]
            if m.dtype.is_vector:
                cast = [_struct_vector(f, m, v) for v in items]
            else:
                sub = FieldSchema(name=f"{f.name}[{name}]", dtype=DataType.ARRAY, element_type=m.dtype,
                                  max_length=m.max_length)
                cast = _check_arrays(sub, object_array([items]), np.ones(1, dtype=bool))[0]
            for e, v in zip(clean, cast, strict=True):
                e[name] = v
        out.append(clean)
    return object_array(out)


def _struct_vector(f: FieldSchema, m: FieldSchema, v: Any) -> list[float]:
    arr = np.asarray(v) if isinstance(v, (list, tuple, np.ndarray)) else np.asarray([v], dtype=object)
    if arr.ndim != 1 or arr.dtype.kind not in "iuf":
        raise invalid(f"the data type of field ({f.name}[{m.name}]) does not match: expected FloatVector")
    if len(arr) != m.dim:
        raise invalid(f"the dim ({len(arr)}) of field data({f.name}[{m.name}]) is not equal to schema dim ({m.dim})")
    return arr.astype(np.float32).tolist()


def _check_sparse(f: FieldSchema, values: np.ndarray, ok: np.ndarray) -> np.ndarray:
    out: list[Any] = []
    for i, row in enumerate(values):
        if not ok[i]:
            out.append({})
            continue
        if not isinstance(row, dict):
            raise invalid(f"field ({f.name}) expects sparse vectors as {{index: value}} maps")
        clean: dict[int, float] = {}
        for k, v in row.items():
            if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= int(k) < 2**32 - 1:
                raise invalid(f"sparse vector index of field ({f.name}) must be in [0, 2^32-1), got {k!r}")
            fv = float(v)
            if math.isnan(fv) or math.isinf(fv):
                raise invalid(f"sparse vector value of field ({f.name}) must be a finite number")
            clean[int(k)] = fv
        out.append(clean)
    return object_array(out)


def _cast_dense(f: FieldSchema, values: np.ndarray) -> np.ndarray:
    width = f.vector_width()
    arr = np.asarray(values)
    if arr.ndim != 2 or arr.shape[1] != width:
        got = arr.shape[1] if arr.ndim == 2 else "?"
        # Milvus checks the flattened data against the dim
        if f.dtype is DataType.FLOAT_VECTOR and arr.ndim == 2:
            raise invalid(f"the length({arr.size}) of float data should divide the dim({f.dim})")
        if f.dtype is DataType.BINARY_VECTOR and arr.ndim == 2:
            raise invalid(f"the num({arr.size * 8}) of all bits should divide the dim({f.dim})")
        raise invalid(
            f"the dim ({got}) of field data ({f.name}) is not equal to schema dim ({f.dim})"
        )
    target = VECTOR_DTYPES[f.dtype]
    if f.dtype is DataType.FLOAT_VECTOR:
        if arr.dtype.kind not in "iuf":
            raise invalid(f"the data type of field ({f.name}) does not match: expected FLOAT_VECTOR")
        out = arr.astype(np.float32)
        if not np.isfinite(out).all():
            bad = float(out.ravel()[~np.isfinite(out.ravel())][0])
            raise invalid(f"value '{_go_float(bad)}' is not a number or infinity")
        return out
    if arr.dtype != target:
        raise invalid(f"the data type of field ({f.name}) does not match: expected {f.dtype.name}")
    return arr


def _dynamic_column(batch: Batch, extra: list[str], n: int) -> Column:
    meta = batch.get(DYNAMIC_FIELD)
    rows: list[dict[str, Any]] = []
    for i in range(n):
        v: Any = None
        if meta is not None and (meta.valid is None or meta.valid[i]):
            v = meta.values[i]
        if v is None:
            v = {}
        if not isinstance(v, dict):
            raise invalid("the dynamic field ($meta) must be a JSON object")
        rows.append(dict(v))
    for name in extra:
        col = batch[name]
        for i in range(n):
            if col.valid is None or col.valid[i]:
                val = col.values[i]
                rows[i][name] = val.tolist() if isinstance(val, (np.ndarray, np.generic)) else val
    return Column(object_array(rows))


def _go_float(value: float) -> str:
    """A non-finite float as Go's %f prints it (Milvus's messages carry that form)."""
    if np.isnan(value):
        return "NaN"
    return "+Inf" if value > 0 else "-Inf"
