"""The engine's WAL record format: what one acknowledged write looks like on disk.

`[kind u8][collection_id u64][partition_id u64][ts u64][pad to 32][codec batch]`. An insert
carries the full normalized batch (primary keys included, auto ids already assigned);
a delete carries only the primary key column; an upsert carries both in one record so
replay applies it atomically at one timestamp.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from shoal.schema import Batch
from shoal.storage.codec import decode_batch, encode_batch

_HEADER = struct.Struct("<BQQQ7x")  # 32 bytes, so decoded arrays stay 8-aligned
DELETE_KEYS = "$delete_pks"
COMPACT_SOURCES = "$compact_sources"
COMPACT_TARGET = "$compact_target"


class Kind(IntEnum):
    INSERT = 1
    DELETE = 2
    UPSERT = 3
    FLUSH = 4  # cluster only: the owner flushed the collection; followers seal and persist too
    IMPORT = 5  # cluster only: a bulk import's sealed segments (in S3) become visible at this point
    # cluster only: the owner compacted segments COMPACT_SOURCES of the record's partition into
    # COMPACT_TARGET (0: every row was deleted), dropping the rows deleted at or before its ts;
    # followers repeat it, so every node holds the same segments under the same ids
    COMPACT = 6


@dataclass
class Record:
    kind: Kind
    collection_id: int
    partition_id: int  # 0 = every partition (deletes)
    ts: int
    batch: Batch  # inserted columns, and/or DELETE_KEYS for deleted primary keys


def encode(record: Record) -> bytes:
    head = _HEADER.pack(int(record.kind), record.collection_id, record.partition_id, record.ts)
    return head + encode_batch(record.batch)


def decode(payload: bytes | memoryview) -> Record:
    kind, cid, pid, ts = _HEADER.unpack_from(payload, 0)
    return Record(Kind(kind), cid, pid, ts, decode_batch(memoryview(payload)[_HEADER.size :]))
