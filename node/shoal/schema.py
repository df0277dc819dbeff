"""Collection schemas and columnar batches: the vocabulary every layer shares.

A leaf module (imports only `shoal.errors` and numpy). The api layer translates proto
schemas and FieldData into these types; the engine stores and validates them; expr and
index read them. Nothing here knows about gRPC, files or faiss.

Column representation (one `Column` per field, `n` rows):

| DataType                  | `Column.values`                                            |
|---------------------------|------------------------------------------------------------|
| BOOL                      | np.bool_ (n,)                                              |
| INT8/16/32/64             | np.int8/16/32/64 (n,)                                      |
| FLOAT / DOUBLE            | np.float32 / np.float64 (n,)                               |
| VARCHAR, TEXT             | object (n,) of str                                         |
| JSON                      | object (n,) of parsed Python values (dict/list/str/...)    |
| TIMESTAMPTZ               | np.int64 (n,): microseconds since the epoch, UTC           |
| GEOMETRY                  | object (n,) of WKT str                                     |
| ARRAY                     | object (n,) of Python lists                                |
| FLOAT_VECTOR              | np.float32 (n, dim)                                        |
| FLOAT16_VECTOR            | np.float16 (n, dim)                                        |
| BFLOAT16_VECTOR           | np.uint16 (n, dim): raw bfloat16 bits                      |
| INT8_VECTOR               | np.int8 (n, dim)                                           |
| BINARY_VECTOR             | np.uint8 (n, dim // 8)                                     |
| SPARSE_FLOAT_VECTOR       | object (n,) of dict[int, float]                            |
| ARRAY_OF_STRUCT           | object (n,) of lists of {sub-field: value} dicts; a vector |
|                           | sub-field's value is a list of floats                      |

`Column.valid` is None when every row has a value, else a bool mask (nullable fields);
where it is False, `values` holds a placeholder (0, "", None) that must not be read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np

from shoal.errors import invalid


class DataType(IntEnum):
    """Milvus `schema.DataType` numbering, so translation is the identity."""

    NONE = 0
    BOOL = 1
    INT8 = 2
    INT16 = 3
    INT32 = 4
    INT64 = 5
    FLOAT = 10
    DOUBLE = 11
    STRING = 20
    VARCHAR = 21
    ARRAY = 22
    JSON = 23
    GEOMETRY = 24
    TEXT = 25
    TIMESTAMPTZ = 26
    BINARY_VECTOR = 100
    FLOAT_VECTOR = 101
    FLOAT16_VECTOR = 102
    BFLOAT16_VECTOR = 103
    SPARSE_FLOAT_VECTOR = 104
    INT8_VECTOR = 105
    # an ARRAY whose element type is STRUCT: Milvus's ArrayOfStruct (its sub-fields are in
    # FieldSchema.struct_fields); values are lists of {sub-field: value} dicts
    ARRAY_OF_STRUCT = 200
    STRUCT = 201

    @property
    def milvus_name(self) -> str:
        """The name Milvus's messages use (its proto enum name, e.g. `Int8`, `FloatVector`)."""
        return _MILVUS_NAMES.get(self, self.name)

    @property
    def is_vector(self) -> bool:
        return 100 <= self.value <= 105

    @property
    def is_dense_vector(self) -> bool:
        return self.is_vector and self is not DataType.SPARSE_FLOAT_VECTOR

    @property
    def is_integer(self) -> bool:
        return self in (DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64)

    @property
    def is_float(self) -> bool:
        return self in (DataType.FLOAT, DataType.DOUBLE)

    @property
    def is_string(self) -> bool:
        return self in (DataType.VARCHAR, DataType.STRING, DataType.TEXT)


_MILVUS_NAMES = {
    DataType.NONE: "None", DataType.BOOL: "Bool", DataType.INT8: "Int8", DataType.INT16: "Int16",
    DataType.INT32: "Int32", DataType.INT64: "Int64", DataType.FLOAT: "Float", DataType.DOUBLE: "Double",
    DataType.STRING: "String", DataType.VARCHAR: "VarChar", DataType.ARRAY: "Array", DataType.JSON: "JSON",
    DataType.GEOMETRY: "Geometry", DataType.TEXT: "Text", DataType.TIMESTAMPTZ: "Timestamptz",
    DataType.BINARY_VECTOR: "BinaryVector", DataType.FLOAT_VECTOR: "FloatVector",
    DataType.FLOAT16_VECTOR: "Float16Vector", DataType.BFLOAT16_VECTOR: "BFloat16Vector",
    DataType.SPARSE_FLOAT_VECTOR: "SparseFloatVector", DataType.INT8_VECTOR: "Int8Vector",
    DataType.ARRAY_OF_STRUCT: "ArrayOfStruct", DataType.STRUCT: "Struct",
}


SCALAR_DTYPES: dict[DataType, np.dtype] = {
    DataType.BOOL: np.dtype(np.bool_),
    DataType.INT8: np.dtype(np.int8),
    DataType.INT16: np.dtype(np.int16),
    DataType.INT32: np.dtype(np.int32),
    DataType.INT64: np.dtype(np.int64),
    DataType.FLOAT: np.dtype(np.float32),
    DataType.DOUBLE: np.dtype(np.float64),
}

VECTOR_DTYPES: dict[DataType, np.dtype] = {
    DataType.FLOAT_VECTOR: np.dtype(np.float32),
    DataType.FLOAT16_VECTOR: np.dtype(np.float16),
    DataType.BFLOAT16_VECTOR: np.dtype(np.uint16),
    DataType.INT8_VECTOR: np.dtype(np.int8),
    DataType.BINARY_VECTOR: np.dtype(np.uint8),
}

DYNAMIC_FIELD = "$meta"

# Documented Milvus limits.
MAX_DIM = 32768
MIN_DIM = 2  # Milvus refuses 1-d float vectors
MAX_BINARY_DIM = MAX_DIM * 8
MAX_VARCHAR_LENGTH = 65535
MAX_FIELDS = 64
MAX_VECTOR_FIELDS = 10
MAX_PARTITIONS = 1024
MAX_TOPK = 16384
MAX_NQ = 16384
MAX_HYBRID_REQUESTS = 1024  # ann search requests in one hybrid search
MAX_NAME_LENGTH = 255
MAX_ARRAY_CAPACITY = 4096


@dataclass
class FieldSchema:
    name: str
    dtype: DataType
    field_id: int = 0
    description: str = ""
    is_primary: bool = False
    auto_id: bool = False
    is_partition_key: bool = False
    is_clustering_key: bool = False
    is_dynamic: bool = False
    nullable: bool = False
    default_value: Any = None
    dim: int | None = None
    max_length: int | None = None
    element_type: DataType | None = None
    max_capacity: int | None = None
    type_params: dict[str, str] = field(default_factory=dict)
    struct_fields: list[FieldSchema] = field(default_factory=list)  # ARRAY_OF_STRUCT's members

    def sub_field(self, name: str) -> FieldSchema | None:
        return next((s for s in self.struct_fields if s.name == name), None)

    def numpy_dtype(self) -> np.dtype:
        """The dtype of this field's column values (object for variable-size types)."""
        if self.dtype in SCALAR_DTYPES:
            return SCALAR_DTYPES[self.dtype]
        if self.dtype in VECTOR_DTYPES:
            return VECTOR_DTYPES[self.dtype]
        if self.dtype is DataType.TIMESTAMPTZ:
            return np.dtype(np.int64)
        return np.dtype(object)

    def vector_width(self) -> int:
        """Number of stored elements per row for a dense vector field."""
        if self.dim is None:
            raise invalid(f"vector field {self.name} has no dim")
        if self.dtype is DataType.BINARY_VECTOR:
            return self.dim // 8
        return self.dim

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if v not in (None, False, "", {})}
        out["dtype"] = int(self.dtype)
        out["name"] = self.name
        if self.element_type is not None:
            out["element_type"] = int(self.element_type)
        out.pop("struct_fields", None)
        if self.struct_fields:
            out["struct_fields"] = [s.to_dict() for s in self.struct_fields]
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FieldSchema:
        kw = dict(d)
        kw["dtype"] = DataType(kw["dtype"])
        if kw.get("element_type") is not None:
            kw["element_type"] = DataType(kw["element_type"])
        if kw.get("struct_fields"):
            kw["struct_fields"] = [FieldSchema.from_dict(s) for s in kw["struct_fields"]]
        return cls(**kw)


VARIABLE_FIELD_BYTES = 64


@dataclass
class CollectionSchema:
    fields: list[FieldSchema]
    description: str = ""
    enable_dynamic_field: bool = False
    auto_id: bool = False
    functions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def primary_field(self) -> FieldSchema:
        for f in self.fields:
            if f.is_primary:
                return f
        raise invalid("schema has no primary key field")

    @property
    def vector_fields(self) -> list[FieldSchema]:
        return [f for f in self.fields if f.dtype.is_vector]

    @property
    def partition_key_field(self) -> FieldSchema | None:
        return next((f for f in self.fields if f.is_partition_key), None)

    def field(self, name: str) -> FieldSchema | None:
        return next((f for f in self.fields if f.name == name), None)

    def approx_row_bytes(self) -> int:
        """A row's in-memory size for segment sizing: exact for fixed-width fields, a guess
        (VARIABLE_FIELD_BYTES) for strings, JSON, arrays and sparse vectors."""
        total = 0
        for f in self.fields:
            dtype = f.numpy_dtype()
            if f.dtype.is_dense_vector:
                total += f.vector_width() * dtype.itemsize
            elif dtype.kind == "O":
                total += VARIABLE_FIELD_BYTES
            else:
                total += dtype.itemsize
        return max(1, total)

    def field_by_id(self, field_id: int) -> FieldSchema | None:
        return next((f for f in self.fields if f.field_id == field_id), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fields": [f.to_dict() for f in self.fields],
            "description": self.description,
            "enable_dynamic_field": self.enable_dynamic_field,
            "auto_id": self.auto_id,
            "functions": self.functions,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CollectionSchema:
        return cls(
            fields=[FieldSchema.from_dict(f) for f in d["fields"]],
            description=d.get("description", ""),
            enable_dynamic_field=d.get("enable_dynamic_field", False),
            auto_id=d.get("auto_id", False),
            functions=list(d.get("functions", [])),
        )


@dataclass
class Column:
    """One field's values for a batch of rows (see the module docstring for layouts)."""

    values: np.ndarray
    valid: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.values)

    def take(self, rows: np.ndarray) -> Column:
        return Column(self.values[rows], None if self.valid is None else self.valid[rows])

    @staticmethod
    def concat(parts: list[Column]) -> Column:
        if len(parts) == 1:
            return parts[0]
        values = np.concatenate([p.values for p in parts])
        if all(p.valid is None for p in parts):
            return Column(values)
        valid = np.concatenate(
            [np.ones(len(p), bool) if p.valid is None else p.valid for p in parts]
        )
        return Column(values, valid)


Batch = dict[str, Column]
"""Columns of one batch of rows keyed by field name; `$meta` holds dynamic fields."""


def batch_len(batch: Mapping[str, Column]) -> int:
    for col in batch.values():
        return len(col)
    return 0


def object_array(items: list[Any]) -> np.ndarray:
    """A 1-d object array from a list, never letting numpy broadcast nested lists."""
    out = np.empty(len(items), dtype=object)
    if set(map(type, items)) <= _FLAT_OBJECTS:  # nothing numpy could broadcast: one C-level copy
        out[:] = items
        return out
    for i, item in enumerate(items):
        out[i] = item
    return out


_FLAT_OBJECTS = {str, bytes, int, float, bool, type(None)}
