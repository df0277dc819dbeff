"""Segments: the unit of storage, visibility and indexing.

A growing segment is append-only columnar memory with spare capacity, searched exactly.
A sealed segment is immutable (its columns usually memory-mapped from its segment
directory) and may carry one vector index per vector field. Both carry, per row, the
insert timestamp and the timestamp of the first delete that removed it (`NOT_DELETED`
when none), so an MVCC read at T keeps rows with `ts <= T < deleted_ts`.

A row whose key was written again into another partition is *shadowed*, not deleted
(`shadow_ts`, `shadow_by`: allocated on the first shadow, in memory only; see `shadows`): a
read hides it only when a newer row's partition is among the partitions it reads.

Readers take `num_rows` once and only look below it; writers only append above it, so
reads need no lock against appends.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shoal.engine.key_index import KeyIndex
from shoal.engine.prefault import PREFAULTER, window_bytes
from shoal.engine.shadows import NO_SHADOW, hidden_sets, with_partition
from shoal.schema import (
    DYNAMIC_FIELD,
    SCALAR_DTYPES,
    Batch,
    CollectionSchema,
    Column,
    FieldSchema,
    object_array,
)

NOT_DELETED = np.iinfo(np.int64).max
TS_COLUMN = "$ts"


class _Buffer:
    """A growable column: values (and validity) with spare capacity."""

    def __init__(self, template: np.ndarray, nullable: bool, capacity: int) -> None:
        shape = (capacity,) + template.shape[1:]
        self.values = np.empty(shape, dtype=template.dtype) if template.dtype != object else np.full(
            shape, None, dtype=object
        )
        self.valid = np.ones(capacity, bool) if nullable else None
        self.backed = 0  # rows below this are written or being faulted in by the prefaulter

    def ensure(self, capacity: int, used: int, reserve: int) -> None:
        if capacity <= len(self.values):
            return
        grown = max(capacity, len(self.values) * 2)
        if self.values.dtype != object:
            # Fixed-width rows: reserve the segment's full size at once. The OS backs pages only
            # as rows are written, so this costs address space, not memory, and no row is ever
            # copied again (doubling copied and page-faulted a growing 1M-row segment ~20 times).
            grown = max(grown, reserve)
        try:
            values = np.empty((grown,) + self.values.shape[1:], dtype=self.values.dtype)
        except MemoryError:  # strict overcommit refuses the reservation: grow by doubling
            grown = max(capacity, len(self.values) * 2)
            values = np.empty((grown,) + self.values.shape[1:], dtype=self.values.dtype)
        values[:used] = self.values[:used]
        self.values = values
        self.backed = used
        if self.valid is not None:
            valid = np.ones(grown, bool)
            valid[:used] = self.valid[:used]
            self.valid = valid

    def write(self, at: int, col: Column) -> None:
        n = len(col)
        self.values[at : at + n] = col.values
        if self.valid is None and col.valid is not None and not col.valid.all():
            # the first rows of a nullable field were all set; this batch brings its first null
            self.valid = np.ones(len(self.values), bool)
        if self.valid is not None:
            self.valid[at : at + n] = True if col.valid is None else col.valid
        self._back_ahead(at + n, n)

    def _back_ahead(self, end: int, n: int) -> None:
        """Keep a window of pages past `end` backed, so the next appends do not fault them in."""
        if self.values.dtype == object:  # pointers: the objects live elsewhere
            return
        row_bytes = self.values.strides[0]
        window = window_bytes(n * row_bytes) // row_bytes
        if window == 0 or end + window // 2 <= self.backed:
            return
        target = min(len(self.values), end + window)
        PREFAULTER.ahead(self.values, max(self.backed, end), target)
        self.backed = target


def default_column(f: FieldSchema, n: int) -> Column:
    """`n` rows of `f`'s default value (the field must have one)."""
    dtype = SCALAR_DTYPES.get(f.dtype)
    values = np.full(n, f.default_value, dtype=dtype) if dtype is not None else object_array([f.default_value] * n)
    return Column(values)


@dataclass
class Segment:
    segment_id: int
    partition_id: int
    pk_field: str
    columns: Batch
    ts: np.ndarray
    deleted_ts: np.ndarray
    num_rows: int
    sealed: bool
    path: str = ""  # segment directory (relative) once persisted
    indexes: dict[str, Any] = field(default_factory=dict)  # field name -> VectorIndex
    scalar_indexes: dict[Any, Any] = field(default_factory=dict)  # field name or JsonPath -> index (in memory)
    deletes_dirty: bool = False
    max_ts: int = 0
    num_deleted: int = 0
    reserve_rows: int = 0  # rows a growing segment may reach before it seals
    keys: KeyIndex = field(default_factory=KeyIndex)  # which primary keys it holds, built on demand
    compacted_from: tuple[int, ...] = ()  # the segments a compaction merged into this one
    shadow_ts: np.ndarray | None = None  # per row: the newest write of its key elsewhere (may be short)
    shadow_by: np.ndarray | None = None  # per row: the partitions holding a newer row (`shadows.set_id`)
    num_shadowed: int = 0
    _key_ordered: bool | None = None  # rows_in_key_order() of a sealed segment, once asked
    _buffers: dict[str, _Buffer] = field(default_factory=dict)
    _ts_buf: np.ndarray | None = None
    _del_buf: np.ndarray | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    # ---- construction
    @classmethod
    def growing(cls, segment_id: int, partition_id: int, schema: CollectionSchema, reserve_rows: int = 0) -> Segment:
        return cls(
            segment_id=segment_id,
            partition_id=partition_id,
            pk_field=schema.primary_field.name,
            columns={},
            ts=np.empty(0, np.int64),
            deleted_ts=np.empty(0, np.int64),
            num_rows=0,
            sealed=False,
            reserve_rows=reserve_rows,
        )

    @classmethod
    def sealed_from(
        cls,
        segment_id: int,
        partition_id: int,
        pk_field: str,
        columns: Batch,
        deleted_ts: np.ndarray,
        path: str,
    ) -> Segment:
        ts = np.asarray(columns.pop(TS_COLUMN).values)
        n = len(ts)
        deleted = np.array(deleted_ts, dtype=np.int64) if len(deleted_ts) == n else np.full(n, NOT_DELETED)
        return cls(
            segment_id=segment_id,
            partition_id=partition_id,
            pk_field=pk_field,
            columns=columns,
            ts=ts,
            deleted_ts=deleted,
            num_rows=n,
            sealed=True,
            path=path,
            max_ts=int(ts.max()) if n else 0,
            num_deleted=int((deleted != NOT_DELETED).sum()),
        )

    # ---- writes (caller holds the collection's write lock)
    def append(self, batch: Batch, n: int, ts: int) -> None:
        assert not self.sealed
        used = self.num_rows
        need = used + n
        if not self._buffers:
            cap = max(1024, n)
            for name, col in batch.items():
                self._buffers[name] = _Buffer(col.values, col.valid is not None or name == DYNAMIC_FIELD, cap)
            self._ts_buf = np.empty(cap, np.int64)
            self._del_buf = np.full(cap, NOT_DELETED, np.int64)
        for name, buf in self._buffers.items():
            buf.ensure(need, used, self.reserve_rows)
            col = batch.get(name)
            if col is None:  # a field added later: rows before it stay null
                continue
            buf.write(used, col)
        for name, col in batch.items():
            if name not in self._buffers:  # schema evolution: a new field on a growing segment
                buf = _Buffer(col.values, True, len(self._ts_buf))  # type: ignore[arg-type]
                buf.valid[:used] = False  # type: ignore[index]
                buf.write(used, col)
                self._buffers[name] = buf
        assert self._ts_buf is not None and self._del_buf is not None
        if need > len(self._ts_buf):
            grown = max(need, 2 * len(self._ts_buf))
            ts_buf = np.empty(grown, np.int64)
            ts_buf[:used] = self._ts_buf[:used]
            del_buf = np.full(grown, NOT_DELETED, np.int64)
            del_buf[:used] = self._del_buf[:used]
            self._ts_buf, self._del_buf = ts_buf, del_buf
        self._ts_buf[used:need] = ts
        self.max_ts = max(self.max_ts, ts)
        self._publish(need)

    def _publish(self, n: int) -> None:
        self.columns = {
            name: Column(buf.values[:n], None if buf.valid is None else buf.valid[:n])
            for name, buf in self._buffers.items()
        }
        assert self._ts_buf is not None and self._del_buf is not None
        self.ts = self._ts_buf[:n]
        self.deleted_ts = self._del_buf[:n]
        self.num_rows = n

    def apply_delete(self, pks: np.ndarray, ts: int) -> int:
        """Mark live rows whose key is in `pks` and that are older than `ts` as deleted at `ts`."""
        n = self.num_rows
        if n == 0 or len(pks) == 0:
            return 0
        keys = self.columns[self.pk_field].values[:n]
        hit = np.isin(keys, pks)
        if not hit.any():
            return 0
        hit &= self.ts[:n] < ts
        return self.delete_rows(np.flatnonzero(hit), ts)

    def delete_rows(self, rows: np.ndarray, ts: int) -> int:
        """Mark these rows deleted at `ts`, those not deleted yet; returns how many."""
        n = self.num_rows
        live = rows[self.deleted_ts[:n][rows] == NOT_DELETED]
        if len(live):
            self.deleted_ts[:n][live] = ts
            self.num_deleted += len(live)
            self.deletes_dirty = True
        return len(live)

    def set_shadows(self, rows: np.ndarray, by: np.ndarray | int, ts: np.ndarray | int) -> None:
        """Mark `rows` shadowed by the partition sets `by` (`shadows.set_id`; NO_SHADOW: not
        shadowed) since `ts`."""
        if len(rows) == 0 or (self.shadow_by is None and not np.any(by)):
            return
        n = self.num_rows
        if self.shadow_by is None or len(self.shadow_by) < n:
            size = n if self.sealed or self._ts_buf is None else len(self._ts_buf)
            shadow_ts = np.full(size, NOT_DELETED, np.int64)
            shadow_by = np.full(size, NO_SHADOW, np.int64)
            if self.shadow_by is not None and self.shadow_ts is not None:
                shadow_ts[: len(self.shadow_ts)] = self.shadow_ts
                shadow_by[: len(self.shadow_by)] = self.shadow_by
            self.shadow_ts, self.shadow_by = shadow_ts, shadow_by
        assert self.shadow_ts is not None
        self.shadow_ts[rows] = np.where(np.asarray(by) != NO_SHADOW, ts, NOT_DELETED)
        self.shadow_by[rows] = by
        self.num_shadowed = int(np.count_nonzero(self.shadow_by))

    def shadow_older(self, pks: np.ndarray, partition: np.ndarray | int, ts: int) -> None:
        """Shadow the live rows older than `ts` whose key is in `pks` (sorted when numeric) by
        the partition each key is written to now (`partition`: one, or one per key of `pks`)."""
        n = self.num_rows
        keys = self.columns[self.pk_field].values[:n]
        hit = np.isin(keys, pks)
        hit &= (self.ts[:n] < ts) & (self.deleted_ts[:n] == NOT_DELETED)
        rows = np.flatnonzero(hit)
        if len(rows) == 0:
            return
        if not np.isscalar(partition):
            parts = np.asarray(partition)
            if pks.dtype != object:
                partition = parts[np.searchsorted(pks, keys[rows])]
            else:
                where = {k: i for i, k in enumerate(pks.tolist())}
                partition = parts[[where[k] for k in keys[rows].tolist()]]
        held = self.shadows(n)
        before = held[1][rows] if held is not None else np.full(len(rows), NO_SHADOW, np.int64)
        self.set_shadows(rows, with_partition(before, partition), ts)

    def shadows(self, n: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(shadow_ts, shadow_by) of the first `n` rows, or None when none is shadowed."""
        if not self.num_shadowed or self.shadow_ts is None or self.shadow_by is None:
            return None
        ts, by = self.shadow_ts[:n], self.shadow_by[:n]
        if len(ts) < n:
            ts = np.concatenate([ts, np.full(n - len(ts), NOT_DELETED, np.int64)])
            by = np.concatenate([by, np.full(n - len(by), NO_SHADOW, np.int64)])
        return ts, by

    def fill_added_field(self, f: FieldSchema) -> None:
        """Rows written before `f` was added read its default, as in Milvus (else they read null)."""
        n = self.num_rows
        if f.default_value is None or n == 0 or f.name in self.columns:
            return
        values = default_column(f, n).values
        if self.sealed or self._ts_buf is None:
            self.columns = {**self.columns, f.name: Column(values)}
            return
        buf = _Buffer(values, True, len(self._ts_buf))
        buf.write(0, Column(values))
        self._buffers[f.name] = buf
        self._publish(n)

    def key_column(self) -> np.ndarray:
        n = self.num_rows
        return self.columns[self.pk_field].values[:n] if n else np.empty(0, np.int64)

    def hide_older(self, probe: np.ndarray, lo: Any, hi: Any, ts: int) -> int:
        """`apply_delete` for the keys of `probe` this segment holds; skips the scan when it holds none."""
        keys = self.key_column()
        if not self.keys.may_hold(keys, lo, hi):
            return 0
        hit = self.keys.holds(keys, probe)
        return self.apply_delete(probe[hit], ts) if hit.any() else 0

    # ---- reads
    def visible(self, read_ts: int, ttl_floor: int = 0, scope: Collection[int] | None = None) -> np.ndarray | None:
        """Bool mask of rows visible at `read_ts`, or None when every row is. `scope`: the
        partitions the read spans (None: all), which decides the shadowed rows it hides."""
        n = self.num_rows
        shadows = self.shadows(n) if scope is None or len(scope) > 1 else None
        if self.num_deleted == 0 and self.max_ts <= read_ts and ttl_floor == 0 and shadows is None:
            return None
        ts = self.ts[:n]
        mask = ts <= read_ts
        if self.num_deleted:
            mask &= self.deleted_ts[:n] > read_ts
        if ttl_floor:
            mask &= ts >= ttl_floor
        if shadows is not None:
            shadow_ts, by = shadows
            by = np.array(by)  # a copy: the table below knows every set named before it is made
            mask &= ~(hidden_sets(scope)[by] & (shadow_ts <= read_ts))
        return mask

    def live_rows(self) -> int:
        return self.num_rows - self.num_deleted

    def rows_in_key_order(self) -> bool:
        """Whether the rows lie in primary-key order (Milvus's `is_sorted`); a sealed
        segment's rows never change, so its answer is kept."""
        if self._key_ordered is not None:
            return self._key_ordered
        col = self.columns.get(self.pk_field)
        ordered = col is None or in_key_order(np.asarray(col.values[: self.num_rows]))
        if self.sealed:
            self._key_ordered = ordered
        return ordered

    def snapshot_batch(self) -> tuple[Batch, int]:
        n = self.num_rows
        cols = self.columns
        if self.sealed:
            return cols, n
        return {k: Column(c.values[:n], None if c.valid is None else c.valid[:n]) for k, c in cols.items()}, n


def in_key_order(keys: np.ndarray) -> bool:
    return bool(len(keys) < 2 or np.all(keys[1:] >= keys[:-1]))


def key_order(keys: np.ndarray) -> np.ndarray | None:
    """The row order that sorts `keys` (stable: a repeated key keeps its rows' write order), or
    None when they are sorted already. Milvus keeps every flushed segment in primary-key order
    and reports it (`is_sorted`); VectorDBBench waits for that before it searches."""
    return None if in_key_order(keys) else np.argsort(keys, kind="stable")


def sorted_by_key(columns: Batch, pk: str) -> tuple[Batch, np.ndarray | None]:
    """`columns` with their rows in primary-key order, and the order applied (None: they were
    in order already, or hold no key column)."""
    order = key_order(np.asarray(columns[pk].values)) if pk in columns else None
    if order is None:
        return columns, None
    return {name: col.take(order) for name, col in columns.items()}, order


def in_order(values: np.ndarray, order: np.ndarray | None) -> np.ndarray:
    """`values` (one per row) in the order `sorted_by_key` applied."""
    return values if order is None else values[order]


def null_column(like: Column, n: int) -> Column:
    """`n` null rows shaped like `like`: a field added (nullable, no default) after a segment
    was written has no column there, and its rows read null."""
    v = like.values
    values = np.full(n, None, dtype=object) if v.dtype == object else np.zeros((n,) + v.shape[1:], v.dtype)
    return Column(values, np.zeros(n, bool))


def permute_shadows(seg: Segment, order: np.ndarray) -> None:
    """Put `seg`'s shadows in the row order `order` (its rows were just reordered by it)."""
    shadows = seg.shadows(len(order))
    if shadows is not None:
        seg.shadow_ts, seg.shadow_by = shadows[0][order], shadows[1][order]


def carry_shadows(new: Segment, olds: list[Segment], keep_rows: list[np.ndarray]) -> None:
    """Give a compacted segment the shadows of the rows it kept from `olds`."""
    if not any(seg.num_shadowed for seg in olds):
        return
    parts = [seg.shadows(seg.num_rows) for seg in olds]
    new.shadow_ts = np.concatenate([
        np.full(len(rows), NOT_DELETED, np.int64) if sh is None else sh[0][rows]
        for sh, rows in zip(parts, keep_rows, strict=True)
    ])
    new.shadow_by = np.concatenate([
        np.full(len(rows), NO_SHADOW, np.int64) if sh is None else sh[1][rows]
        for sh, rows in zip(parts, keep_rows, strict=True)
    ])
    new.num_shadowed = int(np.count_nonzero(new.shadow_by))
