"""Columns on the wire: proto `FieldData` ↔ `shoal.schema.Batch`.

Requests (Insert/Upsert) carry nullable columns compacted (values only for valid rows)
plus `valid_data`; the batch built here is full length with a `valid` mask and
placeholders, as `shoal.schema` defines. Results go back full length for scalars (with
`valid_data`), compacted for vectors (pymilvus reads nullable vectors that way), and the
dynamic `$meta` column carries only the dynamic keys the user asked for.
Neighbours: the servicer (callers), `shoal.engine.validation` (checks the decoded batch).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from google.protobuf.message import Message
from pymilvus.grpc_gen import schema_pb2

from shoal.api.translate.common import parse_json
from shoal.api.translate.struct_array import struct_column_to_proto, struct_rows_from_proto
from shoal.errors import invalid
from shoal.schema import (
    DYNAMIC_FIELD,
    SCALAR_DTYPES,
    VECTOR_DTYPES,
    Batch,
    Column,
    DataType,
    FieldSchema,
    object_array,
)

_SCALAR_ATTR: dict[DataType, str] = {
    DataType.BOOL: "bool_data",
    DataType.INT8: "int_data",
    DataType.INT16: "int_data",
    DataType.INT32: "int_data",
    DataType.INT64: "long_data",
    DataType.FLOAT: "float_data",
    DataType.DOUBLE: "double_data",
    DataType.VARCHAR: "string_data",
    DataType.STRING: "string_data",
    DataType.TEXT: "string_data",
    DataType.TIMESTAMPTZ: "string_data",  # ISO text on the wire; the engine stores microseconds
    DataType.GEOMETRY: "geometry_wkt_data",
}

_BYTE_VECTOR_ATTR: dict[DataType, str] = {
    DataType.BINARY_VECTOR: "binary_vector",
    DataType.FLOAT16_VECTOR: "float16_vector",
    DataType.BFLOAT16_VECTOR: "bfloat16_vector",
    DataType.INT8_VECTOR: "int8_vector",
}

_PLACEHOLDER: dict[DataType, Any] = {DataType.VARCHAR: "", DataType.STRING: "", DataType.TEXT: "", DataType.GEOMETRY: ""}


# ---------------------------------------------------------------- packed numbers


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def append_packed(msg: Message, field: str, values: np.ndarray) -> None:
    """Append float/double values to a repeated field as one packed run.

    Ten times faster than `extend(values.tolist())` for large vector results: the
    bytes are already the wire encoding of a packed fixed32/fixed64 field.
    """
    fd = msg.DESCRIPTOR.fields_by_name[field]
    wire = "<f4" if fd.type == fd.TYPE_FLOAT else "<f8"
    raw = np.ascontiguousarray(values, dtype=wire).tobytes()
    msg.MergeFromString(_varint(fd.number << 3 | 2) + _varint(len(raw)) + raw)


# ---------------------------------------------------------------- sparse vectors


def sparse_from_bytes(raw: bytes) -> dict[int, float]:
    if len(raw) % 8:
        raise invalid("sparse float vector row length must be a multiple of 8 bytes")
    pairs = np.frombuffer(raw, dtype=[("i", "<u4"), ("v", "<f4")])
    return {int(i): float(v) for i, v in zip(pairs["i"], pairs["v"], strict=True)}


def sparse_to_bytes(row: dict[int, float]) -> bytes:
    items = sorted(row.items())
    return struct.pack("<" + "If" * len(items), *[x for kv in items for x in kv])


# ---------------------------------------------------------------- request → Batch


def _check_int_range(data: Any, info: np.iinfo) -> None:
    """INT8/INT16 travel as int32 on the wire; Milvus refuses a value its field cannot hold."""
    wide = np.asarray(data, dtype=np.int64)
    bad = np.flatnonzero((wide < info.min) | (wide > info.max))
    if bad.size:
        at = int(bad[0])
        raise invalid(f"the {at}th element ({int(wide[at])}) out of range: [{info.min}, {info.max}]")


def _scalar_values(fd: schema_pb2.FieldData, dtype: DataType) -> list[Any] | np.ndarray:
    s = fd.scalars
    if dtype in _SCALAR_ATTR:
        data = getattr(s, _SCALAR_ATTR[dtype]).data
        if dtype in (DataType.INT8, DataType.INT16) and len(data):
            _check_int_range(data, np.iinfo(SCALAR_DTYPES[dtype]))
        if dtype in SCALAR_DTYPES:
            return np.asarray(data, dtype=SCALAR_DTYPES[dtype]) if len(data) else np.empty(0, SCALAR_DTYPES[dtype])
        return list(data)
    if dtype is DataType.JSON:
        out = []
        for raw in s.json_data.data:
            out.append(parse_json(raw, f"field {fd.field_name}") if raw else None)
        return out
    if dtype is DataType.ARRAY:
        return [scalar_field_to_list(cell) for cell in s.array_data.data]
    raise invalid(f"field {fd.field_name}: data type {dtype.name} is not supported")


def scalar_field_to_list(cell: schema_pb2.ScalarField) -> list[Any]:
    kind = cell.WhichOneof("data")
    if kind is None:
        return []
    return list(getattr(cell, kind).data)


def _vector_values(fd: schema_pb2.FieldData, dtype: DataType) -> np.ndarray | list[dict[int, float]]:
    v = fd.vectors
    if dtype is DataType.SPARSE_FLOAT_VECTOR:
        return [sparse_from_bytes(row) for row in v.sparse_float_vector.contents]
    dim = int(v.dim)
    kind = v.WhichOneof("data")
    if kind is None:
        width = dim // 8 if dtype is DataType.BINARY_VECTOR else dim
        return np.empty((0, max(width, 0)), VECTOR_DTYPES[dtype])
    if dim <= 0:
        raise invalid(f"field {fd.field_name}: vector dim must be positive, got {dim}")
    if kind == "float_vector":
        arr = np.asarray(v.float_vector.data, dtype=np.float32)
        if len(arr) % dim:
            raise invalid(f"field {fd.field_name}: {len(arr)} floats is not a multiple of dim {dim}")
        arr = arr.reshape(-1, dim)
        if dtype is DataType.FLOAT16_VECTOR:
            return arr.astype(np.float16)
        if dtype is DataType.BFLOAT16_VECTOR:
            return (arr.view(np.uint32) >> 16).astype(np.uint16)
        if dtype is not DataType.FLOAT_VECTOR:
            raise invalid(f"field {fd.field_name}: float values sent for a {dtype.name} field")
        return arr
    if dtype not in _BYTE_VECTOR_ATTR or kind != _BYTE_VECTOR_ATTR[dtype]:
        raise invalid(f"field {fd.field_name}: {kind} data sent for a {dtype.name} field")
    raw = getattr(v, kind)
    np_dtype = VECTOR_DTYPES[dtype]
    width = dim // 8 if dtype is DataType.BINARY_VECTOR else dim
    row_bytes = width * np_dtype.itemsize
    if width == 0 or len(raw) % row_bytes:
        if dtype is DataType.BINARY_VECTOR:  # Milvus's wording
            raise invalid(f"the num({len(raw) * 8}) of all bits should divide the dim({dim})")
        raise invalid(f"field {fd.field_name}: {len(raw)} bytes do not fit dim {dim}")
    return np.frombuffer(raw, dtype=np_dtype).reshape(-1, width).copy()


def _expand(values: Sequence[Any] | np.ndarray, valid: np.ndarray, dtype: DataType, name: str) -> np.ndarray:
    """Compacted values + mask → full-length array with placeholders where invalid."""
    n = len(valid)
    count = int(valid.sum())
    if len(values) == n and count != n:
        # some clients send full-length columns with a mask; keep them as they are
        full = values
    elif len(values) != count:
        raise invalid(
            f"the num_rows ({n}) of field ({name}) is not equal to passed num_rows: "
            f"{len(values)} values for {count} valid rows"
        )
    else:
        full = None
    if isinstance(values, np.ndarray) and values.dtype != object:
        if full is not None:
            return np.asarray(full)
        out = np.zeros((n, *values.shape[1:]), dtype=values.dtype)
        out[valid] = values
        return out
    if full is not None:
        return object_array(list(full))
    out_list: list[Any] = [_PLACEHOLDER.get(dtype)] * n
    it = iter(values)
    for i in np.flatnonzero(valid):
        out_list[i] = next(it)
    return object_array(out_list)


def field_data_to_column(fd: schema_pb2.FieldData, num_rows: int) -> tuple[str, Column]:
    """One request FieldData → (field name, full-length Column)."""
    name = DYNAMIC_FIELD if fd.is_dynamic else fd.field_name
    try:
        dtype = DataType(fd.type)
    except ValueError:
        raise invalid(f"field {fd.field_name}: data type {fd.type} is not supported") from None
    if fd.is_dynamic and dtype is not DataType.JSON:
        raise invalid("the dynamic field must be of JSON type")
    struct_valid: np.ndarray | None = None
    values: Any
    if dtype is DataType.ARRAY_OF_STRUCT:
        values, struct_valid = struct_rows_from_proto(fd)
    else:
        values = _vector_values(fd, dtype) if dtype.is_vector else _scalar_values(fd, dtype)
    if len(fd.valid_data) or struct_valid is not None:
        valid = np.asarray(fd.valid_data, dtype=bool) if len(fd.valid_data) else struct_valid
        if len(valid) != num_rows:
            raise invalid(
                f"the num_rows ({num_rows}) of field ({name}) is not equal to valid_data length ({len(valid)})"
            )
        return name, Column(_expand(values, valid, dtype, name), valid)
    if len(values) != num_rows:
        raise invalid(
            f"the num_rows ({len(values)}) of field ({name}) is not equal to passed num_rows ({num_rows})"
        )
    if isinstance(values, list):
        values = object_array(values)
    return name, Column(values)


def fields_data_to_batch(fields_data: Iterable[schema_pb2.FieldData], num_rows: int) -> Batch:
    batch: Batch = {}
    for fd in fields_data:
        name, col = field_data_to_column(fd, num_rows)
        if name in batch:
            raise invalid(f"duplicated field name {name} in the request")
        batch[name] = col
    return batch


# ---------------------------------------------------------------- Batch → response


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default).encode()


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


def list_to_scalar_field(values: Sequence[Any], element_type: DataType) -> schema_pb2.ScalarField:
    cell = schema_pb2.ScalarField()
    attr = _SCALAR_ATTR.get(element_type)
    if attr is None:
        raise invalid(f"array element type {element_type.name} is not supported")
    getattr(cell, attr).data.extend(values)
    return cell


def column_to_field_data(
    field: FieldSchema, col: Column, dynamic_keys: set[str] | None = None
) -> schema_pb2.FieldData:
    """One result Column → FieldData. `dynamic_keys` filters `$meta` (None keeps all)."""
    dtype = field.dtype
    fd = schema_pb2.FieldData(type=int(dtype), field_name=field.name, field_id=field.field_id)
    n = len(col)
    valid = col.valid
    if dtype is DataType.ARRAY_OF_STRUCT:
        return struct_column_to_proto(field, col.values, valid)
    if dtype.is_vector:
        values = col.values if valid is None else col.values[valid]
        _fill_vectors(fd, field, values)
    else:
        _fill_scalars(fd, field, col.values, valid, dynamic_keys)
    if valid is not None and field.name != DYNAMIC_FIELD:
        fd.valid_data.extend(bool(x) for x in valid)
    elif field.nullable and n and dtype.is_vector is False:
        fd.valid_data.extend([True] * n)
    if field.name == DYNAMIC_FIELD or field.is_dynamic:
        fd.is_dynamic = True
    return fd


def _fill_scalars(
    fd: schema_pb2.FieldData,
    field: FieldSchema,
    values: np.ndarray,
    valid: np.ndarray | None,
    dynamic_keys: set[str] | None,
) -> None:
    dtype = field.dtype
    s = fd.scalars
    if dtype in _SCALAR_ATTR:
        target = getattr(s, _SCALAR_ATTR[dtype])
        target.SetInParent()  # pymilvus needs the oneof set even for zero rows
        if dtype in SCALAR_DTYPES:
            arr = np.asarray(values, dtype=SCALAR_DTYPES[dtype])
            if valid is not None:
                arr = np.where(valid, arr, np.zeros((), arr.dtype))
            if dtype.is_float:
                append_packed(target, "data", arr)
            else:
                target.data.extend(arr.tolist())
        else:
            target.data.extend(
                "" if (valid is not None and not valid[i]) or v is None else str(v) for i, v in enumerate(values)
            )
        return
    if dtype is DataType.JSON:
        is_meta = field.name == DYNAMIC_FIELD or field.is_dynamic
        s.json_data.SetInParent()
        out = []
        for i, v in enumerate(values):
            if valid is not None and not valid[i] and not is_meta:
                out.append(b"")
                continue
            if is_meta:  # rows without dynamic keys (or from before it was switched on) read {}
                v = v if isinstance(v, dict) else {}
                if dynamic_keys is not None:
                    v = {k: x for k, x in v.items() if k in dynamic_keys}
            out.append(_json_bytes(v))
        s.json_data.data.extend(out)
        return
    if dtype is DataType.ARRAY:
        et = field.element_type or DataType.NONE
        s.array_data.SetInParent()
        s.array_data.element_type = int(et)
        for i, v in enumerate(values):
            empty = (valid is not None and not valid[i]) or v is None
            s.array_data.data.append(list_to_scalar_field([] if empty else list(v), et))
        return
    raise invalid(f"field {field.name}: data type {dtype.name} cannot be returned")


def _fill_vectors(fd: schema_pb2.FieldData, field: FieldSchema, values: Any) -> None:
    dtype = field.dtype
    v = fd.vectors
    if dtype is DataType.SPARSE_FLOAT_VECTOR:
        rows = list(values)
        v.sparse_float_vector.SetInParent()
        v.sparse_float_vector.contents.extend(sparse_to_bytes(r) for r in rows)
        dim = max((max(r) + 1 for r in rows if r), default=0)
        v.sparse_float_vector.dim = dim
        v.dim = dim
        return
    v.dim = int(field.dim or 0)
    arr = np.asarray(values)
    if dtype is DataType.FLOAT_VECTOR:
        v.float_vector.SetInParent()
        append_packed(v.float_vector, "data", arr.ravel())
        return
    arr = np.ascontiguousarray(arr, dtype=VECTOR_DTYPES[dtype])
    setattr(v, _BYTE_VECTOR_ATTR[dtype], arr.tobytes())


def batch_to_fields_data(
    batch: Batch,
    schemas: Sequence[FieldSchema],
    dynamic_keys: set[str] | None = None,
) -> list[schema_pb2.FieldData]:
    """Result columns (in `schemas` order) → FieldData list."""
    out = []
    for f in schemas:
        col = batch.get(f.name)
        if col is None:
            continue
        out.append(column_to_field_data(f, col, dynamic_keys if f.name == DYNAMIC_FIELD else None))
    return out


def dynamic_output(requested: Sequence[str], schema_fields: Iterable[str]) -> tuple[set[str] | None, list[str]]:
    """Which dynamic keys to return: None = all (for `*` / `$meta`), else the named keys.

    Also returns the requested dynamic key names, which go into `output_fields` so that
    pymilvus unpacks exactly those keys from `$meta`.
    """
    known = set(schema_fields)
    if "*" in requested or DYNAMIC_FIELD in requested:
        return None, []
    keys = [r for r in requested if r not in known and r != "count(*)"]
    return set(keys), keys
