"""What a search groups its hits by: a scalar field, or a path inside a JSON field.

Milvus 2.6 groups by a JSON value too: `group_by_field="meta['brand']"` (or a dynamic key,
`group_by_field="brand"`), or the JSON field's name with pymilvus's `json_path=` beside it;
`json_type=` (Int8..Int64, Bool, VarChar) casts the value, and a row whose value is missing
or of another type falls into the null group.

Neighbours: `reader` (searches, groups hits), `expr.binder` (reads the path as filters do).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from shoal.errors import invalid
from shoal.expr import jsonvalues as jv
from shoal.expr.binder import bind_json_path
from shoal.schema import (
    DYNAMIC_FIELD,
    MAX_TOPK,
    CollectionSchema,
    Column,
    DataType,
    FieldSchema,
    object_array,
)

# pymilvus's json_type names (lower-cased) -> what the value must be
JSON_CASTS: dict[str, DataType] = {
    "int8": DataType.INT8, "int16": DataType.INT16, "int32": DataType.INT32, "int64": DataType.INT64,
    "bool": DataType.BOOL, "varchar": DataType.VARCHAR, "string": DataType.VARCHAR,
}
_INT_RANGES = {
    DataType.INT8: (-(1 << 7), (1 << 7) - 1), DataType.INT16: (-(1 << 15), (1 << 15) - 1),
    DataType.INT32: (-(1 << 31), (1 << 31) - 1), DataType.INT64: (-(1 << 63), (1 << 63) - 1),
}


@dataclass(frozen=True)
class GroupKey:
    """`name` as the client wrote it; `field` the column read; `path` inside it (JSON only)."""

    name: str
    field: FieldSchema
    path: tuple[str | int, ...] = ()
    cast: DataType | None = None

    @property
    def is_json(self) -> bool:
        return self.field.dtype is DataType.JSON

    @property
    def reported(self) -> FieldSchema:
        """The field the result's group values are reported as."""
        if not self.is_json:
            return self.field
        return FieldSchema(name=self.name, dtype=self.cast or DataType.JSON)

    def values(self, col: Column) -> list[Any]:
        """Each hit's group value (None: the null group)."""
        if not self.is_json:
            return col.values.tolist()
        out = []
        valid = col.valid
        for i, doc in enumerate(col.values.tolist()):
            value = jv.MISSING if valid is not None and not valid[i] else jv.lookup(doc, self.path)
            out.append(None if value is jv.MISSING else _cast(value, self.cast))
        return out

    def hashable(self, value: Any) -> Any:
        if self.is_json:
            return jv.norm(value)  # 1 and True are different groups
        if isinstance(value, list):
            return tuple(self.hashable(v) for v in value)
        return value

    def column(self, values: list[Any]) -> Column:
        dtype = self.reported.numpy_dtype()
        if dtype.kind == "O" or any(v is None for v in values):
            return Column(object_array(values))
        return Column(np.array(values, dtype=dtype))


def group_candidates(want: int, group_size: int) -> int:
    """How many best hits a grouped search groups (`want` groups of `group_size`): Milvus's
    segments search deeper than the page for the groups to fill."""
    return min(MAX_TOPK, max(want * max(group_size, 1) * 8, 256))


def check_group_vector(field: FieldSchema) -> None:
    if field.dtype is DataType.BINARY_VECTOR:
        raise invalid("not support search_group_by operation based on binary vector")


def group_scorer(group_size: int, scorer: str | None) -> str:
    """A hybrid search's group_size and rank_group_scorer, checked; the scorer (max, sum, avg)."""
    if group_size < 1:
        raise invalid(f"group_size [{group_size}] is invalid, it should be positive")
    out = (scorer or "max").lower()
    if out not in ("max", "sum", "avg"):
        raise invalid(f"rank_group_scorer [{scorer}] is invalid, it should be one of max, sum, avg")
    return out


def pick_groups(keys: list[Any], scores: np.ndarray, topk: int, offset: int, group_size: int, strict: bool,
                scorer: str = "max") -> list[int]:
    """Of hits ranked best first (`keys`: each one's hashable group value), the ones a grouped
    search returns: groups ordered by their best hit (hybrid search: by the max, sum or avg of
    their rows' fused `scores`, higher first), at most group_size hits each, the groups offset ..
    offset + topk; strict skips a group that cannot fill group_size and takes the next."""
    groups: dict[Any, list[int]] = {}
    order: list[Any] = []
    for i, key in enumerate(keys):
        members = groups.get(key)
        if members is None:
            if not strict and scorer == "max" and len(order) >= topk + offset:
                continue
            groups[key] = members = []
            order.append(key)
        if len(members) < group_size:
            members.append(i)
    if scorer != "max":  # fused scores: higher is better
        agg = np.sum if scorer == "sum" else np.mean
        order.sort(key=lambda g: -float(agg(scores[groups[g]])))
    full = [g for g in order if not strict or len(groups[g]) >= group_size]
    return [i for g in full[offset : offset + topk] for i in groups[g]]


def _cast(value: Any, cast: DataType | None) -> Any:
    if cast is None:
        return value
    if cast is DataType.BOOL:
        return value if isinstance(value, bool) else None
    if cast is DataType.VARCHAR:
        return value if isinstance(value, str) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        return None
    lo, hi = _INT_RANGES[cast]
    return int(value) if lo <= value <= hi else None


def resolve_group_key(
    schema: CollectionSchema, name: str | None, json_path: str | None = None, json_type: str | None = None
) -> GroupKey | None:
    """The group key of a search, or 1100 as Milvus words it for an unknown field."""
    if not name:
        return None
    cast = None
    if json_type:
        cast = JSON_CASTS.get(json_type.strip().lower())
        if cast is None:
            raise invalid(f"json_type {json_type} is not supported for group by, supported: Int8, Int16, Int32, Int64, Bool, VarChar")
    field = schema.field(name)
    if field is not None and field.dtype is not DataType.JSON and not field.is_dynamic:
        if json_path or cast is not None:
            raise invalid(f"json_path and json_type need a JSON group by field, {name} is {field.dtype.name}")
        return GroupKey(name, field)
    source = json_path or name
    path = bind_json_path(source, schema)
    if path is None or (field is not None and path.field != (DYNAMIC_FIELD if field.is_dynamic else field.name)):
        if field is None and path is None:
            raise invalid(f"groupBy field({name}) not found in schema")
        raise invalid(f"json_path {source} is not a path inside the JSON field {name}")
    column = schema.field(path.field) if path.field != DYNAMIC_FIELD else None
    if column is None:
        column = FieldSchema(name=DYNAMIC_FIELD, dtype=DataType.JSON, is_dynamic=True)
    return GroupKey(name, column, path.keys, cast)
