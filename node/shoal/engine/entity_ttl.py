"""Entity-level TTL (Milvus 3.0): the `ttl_field` collection property names a TIMESTAMPTZ field
holding each entity's own expiry time.

An entity whose expiry is at or before the read's time is gone from every read (query, get,
search, count, iterators, BM25 statistics); a null expiry never expires. `ttl_field` and
`collection.ttl.seconds` exclude each other. Dropping or changing `ttl_field` deletes the
entities expired by then, so they do not come back (as in Milvus).

Neighbours: `reader` (applies the mask), `engine` (checks the properties, deletes on drop).
"""

from __future__ import annotations

import numpy as np

from shoal.engine.segments import Segment
from shoal.engine.tso import physical_ms
from shoal.errors import invalid
from shoal.schema import CollectionSchema, DataType

TTL_FIELD = "ttl_field"
COLLECTION_TTL = "collection.ttl.seconds"


def check_ttl_properties(schema: CollectionSchema, properties: dict[str, str]) -> None:
    """1100 unless `ttl_field` names one TIMESTAMPTZ field and collection TTL is not set too."""
    name = properties.get(TTL_FIELD)
    if name is None:
        return
    field = schema.field(str(name))
    if field is None:
        raise invalid(f"ttl field {name} not found in the collection schema")
    if field.dtype is not DataType.TIMESTAMPTZ:
        raise invalid(f"ttl field {name} must be of type Timestamptz, got {field.dtype.name}")
    if str(properties.get(COLLECTION_TTL, "0")).strip() not in ("", "0"):
        raise invalid(f"{COLLECTION_TTL} and {TTL_FIELD} cannot be set together: a collection has one TTL mode")


def unexpired(segment: Segment, field: str, read_ts: int, rows: int) -> np.ndarray | None:
    """Per row of `segment` (`rows` long): not yet expired at `read_ts`; None when none has."""
    batch, n = segment.snapshot_batch()
    col = batch.get(field)
    if col is None or n == 0:
        return None
    now_us = physical_ms(read_ts) * 1000
    values = np.asarray(col.values[:n], dtype=np.int64)
    alive = values > now_us
    if col.valid is not None:
        alive |= ~np.asarray(col.valid[:n], dtype=bool)
    if alive.all():
        return None
    out = np.ones(rows, dtype=bool)
    out[: min(n, rows)] = alive[:rows]
    return out
