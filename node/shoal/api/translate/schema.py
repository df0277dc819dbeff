"""Collection schemas: proto `schema.CollectionSchema`/`FieldSchema` ↔ `shoal.schema`.

Also validates what Milvus validates at its proxy when a schema is created: names, one
primary key of type INT64/VARCHAR, dims, max_length, max_capacity, the field count.
Field ids are assigned 100, 101, ... in declaration order, as Milvus does; the dynamic
field `$meta` is not part of the domain schema (`enable_dynamic_field` says it exists)
and is added back as the last field when a schema is described.
"""

from __future__ import annotations

import json
from typing import Any

from pymilvus.grpc_gen import common_pb2, schema_pb2

from shoal.api.translate.common import array_capacity, field_int_param, kv_to_dict, parse_json
from shoal.api.translate.struct_array import struct_from_proto, struct_to_proto
from shoal.api.validate import check_field_name
from shoal.errors import invalid
from shoal.schema import (
    DYNAMIC_FIELD,
    MAX_BINARY_DIM,
    MAX_DIM,
    MAX_FIELDS,
    MAX_VARCHAR_LENGTH,
    MAX_VECTOR_FIELDS,
    MIN_DIM,
    CollectionSchema,
    DataType,
    FieldSchema,
)
from shoal.timestamptz import format_iso, parse_iso

FIRST_FIELD_ID = 100

_ARRAY_ELEMENT_TYPES = {
    DataType.BOOL,
    DataType.INT8,
    DataType.INT16,
    DataType.INT32,
    DataType.INT64,
    DataType.FLOAT,
    DataType.DOUBLE,
    DataType.VARCHAR,
}


def _data_type(value: int, what: str) -> DataType:
    try:
        dt = DataType(value)
    except ValueError:
        raise invalid(f"{what}: data type {value} is not supported") from None
    if dt is DataType.STRING:
        raise invalid("string data type not supported yet, please use VarChar type instead")
    if dt is DataType.NONE:
        raise invalid(f"{what}: data type {dt.name} is not supported")
    if dt in (DataType.ARRAY_OF_STRUCT, DataType.STRUCT):  # only as struct_array_fields
        raise invalid(f"{what}: a struct is only an ARRAY's element type (declare it with a StructFieldSchema)")
    return dt


def _element_type(value: int, field: str) -> DataType:
    """An array's element type, worded as Milvus words it."""
    try:
        et = DataType(value)
    except ValueError:
        raise invalid(f"element type {value} is not supported") from None
    if et is DataType.NONE:
        raise invalid("element data type None is not valid")
    if et not in _ARRAY_ELEMENT_TYPES:
        raise invalid(f"element type {et.milvus_name} is not supported")
    return et


# the default's proto kind, as Milvus names it when it does not fit the field
_DEFAULT_KINDS = {
    "bool_data": "DataType_Bool", "int_data": "DataType_Int", "long_data": "DataType_Int64",
    "float_data": "DataType_Float", "double_data": "DataType_Double", "string_data": "DataType_VarChar",
    "bytes_data": "DataType_JSON",
}
# The field types each proto kind may fill (Milvus's rootcoord checks the kind, not the value:
# pymilvus sends a Python int as long_data, which only an INT64 field takes).
_KIND_FITS = {
    "bool_data": (DataType.BOOL,), "int_data": (DataType.INT8, DataType.INT16, DataType.INT32),
    "long_data": (DataType.INT64,), "float_data": (DataType.FLOAT,), "double_data": (DataType.DOUBLE,),
    "string_data": (),
}
_NARROW_INT_RANGE = {DataType.INT8: (-(2**7), 2**7 - 1), DataType.INT16: (-(2**15), 2**15 - 1)}


def default_from_proto(v: schema_pb2.ValueField) -> Any:
    kind = v.WhichOneof("data")
    if kind is None:
        return None
    value = getattr(v, kind)
    return bytes(value) if isinstance(value, bytes) else value


def default_to_proto(field: FieldSchema) -> schema_pb2.ValueField | None:
    v = field.default_value
    if v is None:
        return None
    dt = field.dtype
    if dt is DataType.BOOL:
        return schema_pb2.ValueField(bool_data=bool(v))
    if dt in (DataType.INT8, DataType.INT16, DataType.INT32):
        return schema_pb2.ValueField(int_data=int(v))
    if dt is DataType.INT64:
        return schema_pb2.ValueField(long_data=int(v))
    if dt is DataType.FLOAT:
        return schema_pb2.ValueField(float_data=float(v))
    if dt is DataType.DOUBLE:
        return schema_pb2.ValueField(double_data=float(v))
    if dt.is_string:
        return schema_pb2.ValueField(string_data=str(v))
    if dt is DataType.TIMESTAMPTZ:  # stored as microseconds; given (by pymilvus) as ISO 8601 text
        return schema_pb2.ValueField(string_data=format_iso(int(v)))
    if dt is DataType.JSON:
        return schema_pb2.ValueField(bytes_data=v if isinstance(v, bytes) else json.dumps(v).encode())
    return None


def _check_default(f: FieldSchema, kind: str | None = None) -> None:
    v = f.default_value
    if v is None:
        return
    dt = f.dtype
    if dt.is_vector or dt in (DataType.JSON, DataType.ARRAY):
        raise invalid(f"type not support default_value, type:{dt.milvus_name}, name:{f.name}")
    if dt is DataType.TIMESTAMPTZ and isinstance(v, str):
        f.default_value = parse_iso(v)  # the instant, kept as the column stores it
        return
    if kind is not None and kind in _KIND_FITS:
        ok = dt in _KIND_FITS[kind] or (kind == "string_data" and dt.is_string)
    else:
        ok = (
            (dt is DataType.BOOL and isinstance(v, bool))
            or (dt.is_integer and isinstance(v, int) and not isinstance(v, bool))
            or (dt.is_float and isinstance(v, (int, float)) and not isinstance(v, bool))
            or (dt.is_string and isinstance(v, str))
        )
    if not ok:
        raise invalid(
            f"type ({dt.milvus_name}) of field ({f.name}) is not equal to the "
            f"type({_DEFAULT_KINDS.get(kind or '', 'DataType_None')}) of default_value"
        )
    bounds = _NARROW_INT_RANGE.get(dt)
    if bounds is not None and not bounds[0] <= v <= bounds[1]:
        raise invalid(
            f"default value out of range: invalid parameter[{v} out of range {bounds[0]} <= value <= {bounds[1]}]"
        )
    if dt.is_string and f.max_length is not None and len(v) > f.max_length:
        raise invalid(
            f"the length ({len(v)}) of string exceeds max length ({f.max_length}): "
            "invalid parameter[expected=valid length string][actual=string length exceeds max length]"
        )
    if dt is DataType.JSON and isinstance(v, bytes):
        f.default_value = parse_json(v, f"default value of field {f.name}")


def _max_length(params: dict[str, str], field: str, collection: str) -> int:
    ml = field_int_param(params, "max_length", field)
    if ml is None:
        raise invalid(f"type param(max_length) should be specified for the field({field}) of collection {collection}".rstrip())
    if not 1 <= ml <= MAX_VARCHAR_LENGTH:
        raise invalid(
            f"the maximum length specified for the field({field}) should be in (0, {MAX_VARCHAR_LENGTH}], "
            f"but got {ml} instead"
        )
    return ml


def field_from_proto(p: schema_pb2.FieldSchema, field_id: int = 0, collection: str = "") -> FieldSchema:
    """One proto field → domain field, with Milvus's per-field checks."""
    check_field_name(p.name)
    dtype = _data_type(p.data_type, f"field {p.name}")
    params = kv_to_dict(p.type_params)
    if "params" in params:  # some clients nest type params as a JSON object
        nested = parse_json(params.pop("params"), f"type params of field {p.name}")
        if not isinstance(nested, dict):
            raise invalid(f"type params of field {p.name} must be a JSON object")
        params.update({k: str(v) for k, v in nested.items()})
    f = FieldSchema(
        name=p.name,
        dtype=dtype,
        field_id=field_id or p.fieldID,
        description=p.description,
        is_primary=p.is_primary_key,
        auto_id=p.autoID,
        is_partition_key=p.is_partition_key,
        is_clustering_key=p.is_clustering_key,
        is_dynamic=p.is_dynamic,
        nullable=p.nullable,
        default_value=default_from_proto(p.default_value) if p.HasField("default_value") else None,
        type_params=params,
    )
    if dtype.is_dense_vector:
        dim = field_int_param(params, "dim", p.name)
        if dim is None:
            raise invalid(f"dimension is not defined in field type params of field {p.name}")
        if dtype is DataType.BINARY_VECTOR:
            if dim % 8:
                raise invalid(
                    f"invalid dimension: {dim} of field {p.name}. binary vector dimension should be multiple of 8."
                )
            if not 8 <= dim <= MAX_BINARY_DIM:
                raise invalid(
                    f"invalid dimension: {dim} of field {p.name}. "
                    f"binary vector dimension should be in range 8 ~ {MAX_BINARY_DIM}"
                )
        elif dim < MIN_DIM:
            raise invalid(f"invalid dimension: {dim}. should be in range {MIN_DIM} ~ {MAX_DIM}")
        elif dim > MAX_DIM:
            kind = "int8" if dtype is DataType.INT8_VECTOR else "float"
            raise invalid(
                f"invalid dimension: {dim} of field {p.name}. {kind} vector dimension should be in range "
                f"{MIN_DIM} ~ {MAX_DIM}"
            )
        f.dim = dim
    if dtype.is_string:
        if dtype is DataType.TEXT and "max_length" not in params:
            f.max_length = None  # TEXT has no length limit unless one is given
        else:
            f.max_length = _max_length(params, p.name, collection)
    if dtype is DataType.ARRAY:
        et = _element_type(p.element_type, p.name)
        f.element_type = et
        if et.is_string:
            f.max_length = _max_length(params, p.name, collection)
        f.max_capacity = array_capacity(params, p.name)
    if f.is_primary:
        if dtype not in (DataType.INT64, DataType.VARCHAR):
            raise invalid("the data type of primary key should be Int64 or VarChar")
        if f.nullable:
            raise invalid("primary field not support null")
        if f.default_value is not None:
            raise invalid("primary field not support default_value")
    if f.is_partition_key and dtype not in (DataType.INT64, DataType.VARCHAR):
        raise invalid("the data type of partition key should be Int64 or VarChar")
    if f.is_partition_key and f.nullable:
        raise invalid("partition key field not support nullable")
    _check_default(f, p.default_value.WhichOneof("data") if p.HasField("default_value") else None)
    return f


def schema_from_proto(p: schema_pb2.CollectionSchema) -> CollectionSchema:
    """A CreateCollection schema → domain schema with ids 100, 101, ... ."""
    user_fields = [f for f in p.fields if not (f.is_dynamic and f.name == DYNAMIC_FIELD)]
    if not user_fields:
        raise invalid("schema does not contain any field")
    if len(user_fields) > MAX_FIELDS:
        raise invalid(f"maximum field's number should be limited to {MAX_FIELDS}")
    fields = [field_from_proto(f, FIRST_FIELD_ID + i, p.name) for i, f in enumerate(user_fields)]
    next_id = FIRST_FIELD_ID + len(fields)
    for sp in p.struct_array_fields:
        sf = struct_from_proto(sp, next_id)
        fields.append(sf)
        next_id += 1 + len(sf.struct_fields)
    vectors = sum(1 for f in fields if f.dtype.is_vector) + sum(
        1 for f in fields for m in f.struct_fields if m.dtype.is_vector
    )
    if vectors > MAX_VECTOR_FIELDS:
        raise invalid(f"maximum vector field's number should be limited to {MAX_VECTOR_FIELDS}")
    names = [f.name for f in fields]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise invalid(f"duplicated field name {dup} found")
    primaries = [f for f in fields if f.is_primary]
    if not primaries:
        raise invalid("primary key is not specified")
    if len(primaries) > 1:
        raise invalid("there are more than one primary key")
    if p.autoID:
        primaries[0].auto_id = True
    if not any(f.dtype.is_vector or any(m.dtype.is_vector for m in f.struct_fields) for f in fields):
        raise invalid("schema does not contain vector field")
    if sum(1 for f in fields if f.is_partition_key) > 1:
        raise invalid("there are more than one partition key")
    return CollectionSchema(
        fields=fields,
        description=p.description,
        enable_dynamic_field=p.enable_dynamic_field,
        auto_id=primaries[0].auto_id,
        functions=[_function_to_dict(fn) for fn in p.functions],
    )


def _function_to_dict(fn: schema_pb2.FunctionSchema) -> dict[str, Any]:
    return {
        "name": fn.name,
        "type": int(fn.type),
        "description": fn.description,
        "input_field_names": list(fn.input_field_names),
        "output_field_names": list(fn.output_field_names),
        "params": kv_to_dict(fn.params),
    }


def field_to_proto(f: FieldSchema) -> schema_pb2.FieldSchema:
    params = dict(f.type_params)
    if f.dim is not None:
        params["dim"] = str(f.dim)
    if f.max_length is not None:
        params["max_length"] = str(f.max_length)
    if f.max_capacity is not None:
        params["max_capacity"] = str(f.max_capacity)
    out = schema_pb2.FieldSchema(
        fieldID=f.field_id,
        name=f.name,
        is_primary_key=f.is_primary,
        description=f.description,
        data_type=int(f.dtype),
        type_params=[common_pb2.KeyValuePair(key=k, value=v) for k, v in params.items()],
        autoID=f.auto_id,
        element_type=int(f.element_type) if f.element_type is not None else 0,
        is_dynamic=f.is_dynamic,
        is_partition_key=f.is_partition_key,
        is_clustering_key=f.is_clustering_key,
        nullable=f.nullable,
    )
    dv = default_to_proto(f)
    if dv is not None:
        out.default_value.CopyFrom(dv)
    return out


def dynamic_field_schema(field_id: int) -> FieldSchema:
    return FieldSchema(name=DYNAMIC_FIELD, dtype=DataType.JSON, field_id=field_id, is_dynamic=True)


def schema_to_proto(s: CollectionSchema, name: str, database: str = "") -> schema_pb2.CollectionSchema:
    # Milvus hides the dynamic field from describe; pymilvus would treat it as an input field
    fields = [field_to_proto(f) for f in s.fields if not f.is_dynamic and not f.struct_fields]
    # fields a function fills (e.g. BM25's sparse output) are marked so clients do not send them
    outputs = {n for fn in s.functions for n in fn.get("output_field_names", [])}
    for f in fields:
        f.is_function_output = f.name in outputs
    out = schema_pb2.CollectionSchema(
        name=name,
        description=s.description,
        autoID=s.auto_id,
        fields=fields,
        enable_dynamic_field=s.enable_dynamic_field,
        dbName=database,
    )
    out.struct_array_fields.extend(struct_to_proto(f) for f in s.fields if f.struct_fields)
    for fn in s.functions:
        out.functions.append(
            schema_pb2.FunctionSchema(
                name=fn.get("name", ""),
                type=int(fn.get("type", 0)),
                description=fn.get("description", ""),
                input_field_names=fn.get("input_field_names", []),
                output_field_names=fn.get("output_field_names", []),
                params=[common_pb2.KeyValuePair(key=k, value=str(v)) for k, v in fn.get("params", {}).items()],
            )
        )
    return out
