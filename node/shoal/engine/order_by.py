"""A query's ORDER BY: which fields it may sort by, and the row order it gives (each key
ascending or descending, nulls last, ties by primary key). One rule for the engine's query and
for share mode's proxy, which merges the query nodes' ordered pages with it.
"""

from __future__ import annotations

import numpy as np

from shoal.errors import invalid
from shoal.schema import Batch, CollectionSchema, DataType, FieldSchema

_UNSORTABLE = (DataType.JSON, DataType.ARRAY, DataType.GEOMETRY, DataType.ARRAY_OF_STRUCT)


def order_fields(schema: CollectionSchema, order_by: list[tuple[str, bool]]) -> list[tuple[FieldSchema, bool]]:
    """The schema field and direction of each ORDER BY key, or 1100 for one that cannot sort."""
    fields = []
    for name, desc in order_by:
        f = schema.field(name)
        if f is None:
            raise invalid(f"order by field {name} not found in schema")
        if f.dtype.is_vector or f.dtype in _UNSORTABLE:
            raise invalid(f"order by field {name} of type {f.dtype.name} is not sortable")
        fields.append((f, desc))
    return fields


def order_rows(cols: Batch, fields: list[tuple[FieldSchema, bool]], pk: str) -> np.ndarray:
    """The order of the rows of `cols` (which holds every key field and the primary key)."""
    keys: list[np.ndarray] = [np.unique(cols[pk].values, return_inverse=True)[1]]
    for f, desc in reversed(fields):  # np.lexsort sorts by the last key first
        col = cols[f.name]
        values = col.values
        if col.valid is not None and values.dtype == object:
            values = np.where(col.valid, values, "")  # null placeholders may be None
        _, rank = np.unique(values, return_inverse=True)
        rank = -rank if desc else rank
        keys.append(rank)
        keys.append(np.zeros(len(rank), bool) if col.valid is None else ~col.valid)  # nulls last
    return np.lexsort(keys) if len(cols[pk]) else np.empty(0, np.int64)
