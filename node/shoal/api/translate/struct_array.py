"""Arrays of structs on the wire: `StructArrayFieldSchema` and ArrayOfStruct `FieldData`.

Milvus sends a struct array's schema apart from the other fields (`struct_array_fields`):
each member is an ARRAY (scalar members) or an ArrayOfVector (vector members) field that
repeats the struct's `max_capacity`. Data travel column-wise too: one sub-FieldData per
member, one cell per row. Shoal keeps one field (`DataType.ARRAY_OF_STRUCT`) whose
`struct_fields` are the members with their element types, and one column of
`[{member: value}, ...]` lists (see `shoal.schema`).
Members go out under their own names: pymilvus 3.0 also accepts `struct[member]` (and strips
it), pymilvus 2.6 reads the names as they come; requests may use either form.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pymilvus.grpc_gen import common_pb2, schema_pb2

from shoal.api.translate.common import array_capacity, field_int_param, kv_to_dict
from shoal.api.validate import check_field_name
from shoal.errors import invalid
from shoal.schema import MAX_DIM, MAX_VARCHAR_LENGTH, MIN_DIM, DataType, FieldSchema

ARRAY_OF_VECTOR = 106  # proto DataType.ArrayOfVector: a vector member's wire type

STRUCT_MEMBER_TYPES = (
    DataType.BOOL, DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64,
    DataType.FLOAT, DataType.DOUBLE, DataType.VARCHAR, DataType.FLOAT_VECTOR,
)


def _strip(struct: str, name: str) -> str:
    prefix = f"{struct}["
    return name[len(prefix) : -1] if name.startswith(prefix) and name.endswith("]") else name


# ---------------------------------------------------------------- schema


def struct_from_proto(p: schema_pb2.StructArrayFieldSchema, field_id: int) -> FieldSchema:
    """One StructArrayFieldSchema → an ARRAY_OF_STRUCT field; members get the ids after it."""
    check_field_name(p.name)
    if not len(p.fields):
        raise invalid(f"struct array field {p.name} should have at least one field")
    params = kv_to_dict(p.type_params)
    members: list[FieldSchema] = []
    capacity: int | None = None
    for i, m in enumerate(p.fields):
        name = _strip(p.name, m.name)
        check_field_name(name)
        if m.is_primary_key or m.is_partition_key or m.is_clustering_key or m.autoID or m.is_dynamic:
            raise invalid(f"field {name} in struct {p.name} cannot be primary, partition, clustering, "
                          "auto_id or dynamic")
        if m.HasField("default_value"):
            raise invalid(f"field {name} in struct {p.name} cannot have a default value")
        if m.data_type not in (DataType.ARRAY, ARRAY_OF_VECTOR):
            raise invalid(f"fields in struct array field {p.name} must be Array or ArrayOfVector, "
                          f"got {m.data_type}")
        try:
            et = DataType(m.element_type)
        except ValueError:
            raise invalid(f"element type {m.element_type} of field {name} in struct {p.name} is not supported") from None
        if et not in STRUCT_MEMBER_TYPES:
            raise invalid(f"element type {et.milvus_name} of field {name} in struct {p.name} is not supported; "
                          "struct members are FloatVector, VarChar, Bool, Int8/16/32/64, Float or Double")
        if (m.data_type == ARRAY_OF_VECTOR) != et.is_vector:
            raise invalid(f"field {name} in struct {p.name}: vector members are ArrayOfVector, scalars Array")
        mp = kv_to_dict(m.type_params)
        cap = array_capacity(mp, p.name, member=name)
        if capacity is not None and cap != capacity:
            raise invalid(f"all fields in struct {p.name} must share one max_capacity")
        capacity = cap
        member = FieldSchema(name=name, dtype=et, field_id=field_id + 1 + i, description=m.description)
        if et is DataType.FLOAT_VECTOR:
            dim = field_int_param(mp, "dim", name)
            if dim is None:
                raise invalid(f"dimension is not defined in field type params of field {name}")
            if not MIN_DIM <= dim <= MAX_DIM:
                raise invalid(f"invalid dimension: {dim}. should be in range {MIN_DIM} ~ {MAX_DIM}")
            member.dim = dim
        if et is DataType.VARCHAR:
            ml = field_int_param(mp, "max_length", name)
            if ml is None:
                raise invalid(f"type param(max_length) should be specified for the field({name})")
            if not 1 <= ml <= MAX_VARCHAR_LENGTH:
                raise invalid(f"the maximum length specified for the field({name}) should be in "
                              f"(0, {MAX_VARCHAR_LENGTH}], but got {ml} instead")
            member.max_length = ml
        members.append(member)
    names = [m.name for m in members]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise invalid(f"duplicated field name {dup} found in struct {p.name}")
    return FieldSchema(
        name=p.name,
        dtype=DataType.ARRAY_OF_STRUCT,
        field_id=field_id,
        description=p.description,
        nullable=p.nullable,
        element_type=DataType.STRUCT,
        max_capacity=capacity,
        type_params=params,
        struct_fields=members,
    )


def struct_to_proto(f: FieldSchema) -> schema_pb2.StructArrayFieldSchema:
    out = schema_pb2.StructArrayFieldSchema(
        fieldID=f.field_id,
        name=f.name,
        description=f.description,
        nullable=f.nullable,
        type_params=[common_pb2.KeyValuePair(key=k, value=v) for k, v in f.type_params.items()],
    )
    for m in f.struct_fields:
        params = {"max_capacity": str(f.max_capacity)}
        if m.dim is not None:
            params["dim"] = str(m.dim)
        if m.max_length is not None:
            params["max_length"] = str(m.max_length)
        out.fields.append(
            schema_pb2.FieldSchema(
                fieldID=m.field_id,
                name=m.name,
                description=m.description,
                data_type=ARRAY_OF_VECTOR if m.dtype.is_vector else int(DataType.ARRAY),
                element_type=int(m.dtype),
                nullable=f.nullable,
                type_params=[common_pb2.KeyValuePair(key=k, value=v) for k, v in params.items()],
            )
        )
    return out


# ---------------------------------------------------------------- data


def struct_rows_from_proto(fd: schema_pb2.FieldData) -> tuple[list[Any], np.ndarray | None]:
    """An ArrayOfStruct FieldData → (rows of member dicts, compacted when valid is not None; valid)."""
    struct = fd.field_name
    columns: dict[str, list[Any]] = {}
    valid: np.ndarray | None = None
    for sub in fd.struct_arrays.fields:
        name = _strip(struct, sub.field_name)
        if name in columns:
            raise invalid(f"duplicated field {name} in struct array field {struct}")
        if len(sub.valid_data) and valid is None:
            valid = np.asarray(sub.valid_data, dtype=bool)
        if sub.type == DataType.ARRAY:
            columns[name] = [_scalar_cell(c) for c in sub.scalars.array_data.data]
        elif sub.type == ARRAY_OF_VECTOR:
            columns[name] = [_vector_cell(c, struct, name) for c in sub.vectors.vector_array.data]
        else:
            raise invalid(f"field {name} of struct array field {struct}: data type {sub.type} is not supported")
    counts = {len(c) for c in columns.values()}
    if len(counts) > 1:
        raise invalid(f"the fields of struct array field {struct} carry different numbers of rows")
    n = counts.pop() if counts else 0
    rows: list[Any] = []
    for r in range(n):
        lengths = {name: len(col[r]) for name, col in columns.items()}
        if len(set(lengths.values())) > 1:
            raise invalid(f"the fields of struct array field {struct} have different array lengths in row {r}: "
                          f"{lengths}")
        size = next(iter(lengths.values()), 0)
        rows.append([{name: col[r][j] for name, col in columns.items()} for j in range(size)])
    return rows, valid


def _scalar_cell(cell: schema_pb2.ScalarField) -> list[Any]:
    kind = cell.WhichOneof("data")
    return [] if kind is None else list(getattr(cell, kind).data)


def _vector_cell(cell: schema_pb2.VectorField, struct: str, name: str) -> list[list[float]]:
    kind = cell.WhichOneof("data")
    if kind is None:
        return []
    if kind != "float_vector":
        raise invalid(f"field {name} of struct array field {struct}: only FloatVector members are supported")
    dim = int(cell.dim)
    data = np.asarray(cell.float_vector.data, dtype=np.float32)
    if dim <= 0 or len(data) % dim:
        raise invalid(f"field {name} of struct array field {struct}: {len(data)} floats do not fit dim {dim}")
    return data.reshape(-1, dim).tolist()


def struct_column_to_proto(f: FieldSchema, values: np.ndarray, valid: np.ndarray | None) -> schema_pb2.FieldData:
    """A result column → one ArrayOfStruct FieldData: full length, a null row an empty cell that
    `valid_data` marks (pymilvus counts rows by the first member's cells)."""
    fd = schema_pb2.FieldData(type=int(DataType.ARRAY_OF_STRUCT), field_name=f.name, field_id=f.field_id)
    for m in f.struct_fields:
        sub = schema_pb2.FieldData(field_name=m.name, field_id=m.field_id)
        if m.dtype.is_vector:
            sub.type = ARRAY_OF_VECTOR
            va = sub.vectors.vector_array
            va.dim = int(m.dim or 0)
            va.element_type = int(m.dtype)
            sub.vectors.dim = int(m.dim or 0)
        else:
            sub.type = int(DataType.ARRAY)
            sub.scalars.array_data.element_type = int(m.dtype)
            sub.scalars.array_data.SetInParent()
        for i, row in enumerate(values):
            ok = valid is None or bool(valid[i])
            if f.nullable:
                sub.valid_data.append(ok and row is not None)
            items = [e[m.name] for e in row] if ok and row is not None else []
            if m.dtype.is_vector:
                cell = schema_pb2.VectorField(dim=int(m.dim or 0))
                cell.float_vector.data.extend(np.asarray(items, dtype=np.float32).ravel().tolist())
                sub.vectors.vector_array.data.append(cell)
            else:
                cell_s = schema_pb2.ScalarField()
                getattr(cell_s, _ATTR[m.dtype]).data.extend(items)
                sub.scalars.array_data.data.append(cell_s)
        fd.struct_arrays.fields.append(sub)
    return fd


_ATTR = {
    DataType.BOOL: "bool_data", DataType.INT8: "int_data", DataType.INT16: "int_data", DataType.INT32: "int_data",
    DataType.INT64: "long_data", DataType.FLOAT: "float_data", DataType.DOUBLE: "double_data",
    DataType.VARCHAR: "string_data",
}
