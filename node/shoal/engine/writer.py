"""The write path: insert, upsert and delete.

Each call validates and normalizes its batch, assigns auto ids and partitions, then —
under the collection's write lock — takes one timestamp, appends one WAL record (the
acknowledgement point) and applies it to the segments. Replay uses `apply_record` too,
so a recovered write looks exactly like the original.
"""

from __future__ import annotations

import zlib

import numpy as np

from shoal.engine import wal_records
from shoal.engine.catalog import DEFAULT_PARTITION, CollectionMeta
from shoal.engine.collection_data import CollectionData
from shoal.engine.key_index import last_of_each
from shoal.engine.requests import MutationResult
from shoal.engine.tso import TimestampOracle
from shoal.engine.validation import normalize_insert
from shoal.engine.wal_records import DELETE_KEYS, Kind, Record
from shoal.errors import invalid
from shoal.schema import Batch, Column, DataType, batch_len, object_array
from shoal.storage.wal import WriteAheadLog

PARTITION_COLUMN = "$pid"
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def partition_slots(keys: np.ndarray, count: int) -> np.ndarray:
    """Which of `count` partition-key partitions each key routes to (stable across restarts)."""
    if keys.dtype == object:
        return np.array([zlib.crc32(str(k).encode()) % count for k in keys], dtype=np.int64)
    with np.errstate(over="ignore"):
        mixed = keys.astype(np.int64).view(np.uint64) * _GOLDEN
    return ((mixed >> np.uint64(33)) % np.uint64(count)).astype(np.int64)


def apply_record(data: CollectionData, record: Record) -> int:
    """Apply one logged write to a collection's segments; returns rows deleted."""
    deleted = 0
    batch = dict(record.batch)
    pk = data.schema.primary_field
    if DELETE_KEYS in batch:
        pks = np.asarray(batch.pop(DELETE_KEYS).values)
        if record.kind != Kind.UPSERT:
            deleted = data.apply_delete(pks, record.ts, None if record.partition_id == 0 else {record.partition_id})
        elif pk.auto_id:
            # as Milvus: an upsert deletes its old keys only in the partition each row goes to
            pids = np.asarray(batch[PARTITION_COLUMN].values)
            parts = np.unique(pids).tolist()
            for pid in parts:
                mine = pks if len(parts) == 1 else pks[pids == pid]
                deleted += data.apply_delete(mine, record.ts, {int(pid)})
        # else the upsert's keys are its rows' keys: `write_over` below deletes them in their partitions
    if record.kind in (Kind.INSERT, Kind.UPSERT) and batch:
        pids = np.asarray(batch[PARTITION_COLUMN].values)
        hidden = None
        if not pk.auto_id:
            # One row per primary key and partition, the last written: older rows of its keys are
            # deleted in the partition written to and shadowed in the others
            # (`CollectionData.write_over`), and a key repeated in the batch keeps only its last
            # row visible. The earlier ones are stored deleted, as Milvus stores them: its
            # statistics count every written row until a compaction.
            keys = np.asarray(batch[pk.name].values)
            keep = last_of_each(keys)
            if keep is not None:
                hidden = np.ones(len(keys), bool)
                hidden[keep] = False
                keys, last_pids = keys[keep], pids[keep]
            deleted += data.write_over(keys, pids if keep is None else last_pids, record.ts)
        batch.pop(PARTITION_COLUMN)
        for pid in np.unique(pids):
            rows = np.flatnonzero(pids == pid)
            whole = len(rows) == len(pids)
            part = batch if whole else {k: c.take(rows) for k, c in batch.items()}
            data.apply_insert(int(pid), part, len(rows), record.ts, hidden if whole or hidden is None else hidden[rows])
    return deleted


class Writer:
    def __init__(self, wal: WriteAheadLog, tso: TimestampOracle) -> None:
        self.wal = wal
        self.tso = tso

    def _log_and_apply(self, data: CollectionData, record: Record) -> int:
        with data.write_lock:
            record.ts = self.tso.allocate()
            lsn = self.wal.append(wal_records.encode(record))
            data.note_lsn(lsn)
            return apply_record(data, record)

    def _auto_ids(self, dtype: DataType, n: int) -> np.ndarray:
        first = self.tso.allocate(n)
        ids = np.arange(first, first + n, dtype=np.int64)
        # Milvus's VARCHAR auto ids are its int64 ids written in decimal
        return object_array([str(i) for i in ids.tolist()]) if dtype == DataType.VARCHAR else ids

    def _route(self, meta: CollectionMeta, partition: str, batch: Batch, n: int) -> np.ndarray:
        key_field = meta.schema.partition_key_field
        if key_field is not None:
            if partition:
                raise invalid("not support manually specifying the partition names if partition key mode is used")
            slots = partition_slots(np.asarray(batch[key_field.name].values), len(meta.partitions))
            ids = np.array([p.partition_id for p in meta.partitions], dtype=np.int64)
            return ids[slots]
        part = meta.require_partition(partition or DEFAULT_PARTITION)
        return np.full(n, part.partition_id, dtype=np.int64)

    def prepare(self, meta: CollectionMeta, partition: str, batch: Batch, n: int, *, upsert: bool = False) -> Batch:
        """Check and normalize a batch, assign auto ids, and route each row to its partition
        (`PARTITION_COLUMN`). Bulk import shares this with insert and upsert."""
        if n <= 0:
            raise invalid("the number of rows to insert must be positive")
        batch = normalize_insert(meta.schema, batch, n, for_upsert=upsert, timezone=meta.properties.get("timezone"))
        pk = meta.schema.primary_field
        if pk.auto_id and (not upsert or pk.name not in batch):
            batch[pk.name] = Column(self._auto_ids(pk.dtype, n))
        if upsert and last_of_each(np.asarray(batch[pk.name].values)) is not None:
            raise invalid("duplicate primary keys are not allowed in the same batch")
        if batch_len(batch) != n:
            raise invalid(f"the number of rows ({batch_len(batch)}) does not match num_rows ({n})")
        batch[PARTITION_COLUMN] = Column(self._route(meta, partition, batch, n))
        return batch

    def insert(
        self, meta: CollectionMeta, data: CollectionData, partition: str, batch: Batch, n: int, *, upsert: bool = False
    ) -> MutationResult:
        batch = self.prepare(meta, partition, batch, n, upsert=upsert)
        pk = meta.schema.primary_field
        ids = np.asarray(batch[pk.name].values)
        if upsert:
            batch[DELETE_KEYS] = Column(ids)
            if pk.auto_id:  # as Milvus: the given keys are deleted, the rows get new auto ids
                ids = self._auto_ids(pk.dtype, n)
                batch[pk.name] = Column(ids)
        record = Record(Kind.UPSERT if upsert else Kind.INSERT, meta.collection_id, 0, 0, batch)
        self._log_and_apply(data, record)
        return MutationResult(
            ids=ids,
            timestamp=record.ts,
            insert_count=n,
            upsert_count=n if upsert else 0,
        )

    def delete(
        self, meta: CollectionMeta, data: CollectionData, partition_id: int, pks: np.ndarray
    ) -> MutationResult:
        if pks.dtype == object:
            pks = object_array([str(k) for k in pks])
        record = Record(Kind.DELETE, meta.collection_id, partition_id, 0, {DELETE_KEYS: Column(pks)})
        if len(pks) == 0:
            return MutationResult(ids=pks, timestamp=self.tso.allocate(), delete_count=0)
        self._log_and_apply(data, record)
        return MutationResult(ids=pks, timestamp=record.ts, delete_count=len(pks))
