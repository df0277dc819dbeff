"""The rows of one collection: its segments, and the lock that orders its writes.

Writers (insert/delete/upsert, replay) hold `write_lock` while they log to the WAL and
apply, so the WAL order is the apply order. Readers take `snapshot()` (a list copy) and
never lock. Sealing swaps a full growing segment for a fresh one; persisting replaces a
sealed in-memory segment by its memory-mapped twin.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import numpy as np

from shoal.engine.segments import Segment, default_column
from shoal.schema import Batch, CollectionSchema

LSN_ID_BASE = 1 << 51  # above every catalog id; ids stay below 2**53 (exact in JSON readers)
OPENED_PER_RECORD = 1 << 11  # one record opens at most one segment per partition (<= 1,024)


# A cluster query node in share mode serves only its part of a collection's segments: the read
# sets this for its own thread (`roles/shares_node.py`), and `snapshot` applies it.
READ_SHARE: ContextVar[Callable[[CollectionData], list[Segment]] | None] = ContextVar(
    "read_share", default=None)


def lsn_segment_id(lsn: int, opened: int) -> int:
    """The id of the `opened`-th segment opened while applying WAL record `lsn`. Every node of a
    cluster applies the same records with the same code and seals at the same points (a size cap,
    or a FLUSH record the owner writes before it seals), so all of them name a segment alike."""
    if opened >= OPENED_PER_RECORD:
        raise ValueError(f"record {lsn} opened more than {OPENED_PER_RECORD} segments")
    return LSN_ID_BASE + lsn * OPENED_PER_RECORD + opened


class CollectionData:
    def __init__(
        self,
        collection_id: int,
        schema: CollectionSchema,
        new_id: Callable[[], int],
        segment_max_rows: int,
        segment_max_bytes: int = 1 << 30,
        ids_from_lsn: bool = False,
    ) -> None:
        self.collection_id = collection_id
        self.schema = schema
        self._new_id = new_id
        self.segment_max_rows = segment_max_rows
        self.segment_max_bytes = segment_max_bytes
        self.write_lock = threading.RLock()
        self.segments: list[Segment] = []
        self._growing: dict[int, Segment] = {}
        self.last_lsn = 0  # newest WAL record applied here
        self.first_unpersisted_lsn = 0  # 0 = everything is persisted
        self.on_sealed: Callable[[CollectionData], None] | None = None
        self.dropped = False  # set under write_lock by a drop: background work on it stops quietly
        # cluster nodes: a segment's id comes from the WAL record that opened it (`lsn_segment_id`)
        self.ids_from_lsn = ids_from_lsn
        self._opened_at = (0, 0)  # (LSN, segments opened while applying it)
        # share mode: every delete applied since the last checkpoint, (LSN, sorted keys, lo, hi,
        # ts, partitions), so a segment loaded later from S3 gets the deletes its file lacks
        self.delete_log: list[tuple[int, np.ndarray, Any, Any, int, set[int] | None]] | None = None
        self.delete_log_after = 0  # the log holds every delete of the records after this LSN

    # ---- writes (caller holds write_lock)
    def note_lsn(self, lsn: int) -> None:
        self.last_lsn = max(self.last_lsn, lsn)
        if not self.first_unpersisted_lsn:
            self.first_unpersisted_lsn = lsn

    def apply_insert(self, partition_id: int, batch: Batch, n: int, ts: int) -> None:
        # A written batch carries every field its schema had (the write path fills defaults), so a
        # field it lacks was added after it was written: a WAL record applied after the catalog
        # learned of the field (a follower behind its WAL, a replay) gives those rows the default.
        added = [f for f in self.schema.fields if f.default_value is not None and f.name not in batch]
        if added and n:
            batch = {**batch, **{f.name: default_column(f, n) for f in added}}
        seg = self._growing.get(partition_id)
        if seg is None:
            seg = Segment.growing(self._segment_id(), partition_id, self.schema, self.seal_rows)
            self._growing[partition_id] = seg
            self.segments = self.segments + [seg]
        if seg.num_rows and len(batch) > len(seg.columns):
            for name in batch.keys() - seg.columns.keys():  # a field added since (WAL replay reaches here)
                f = self.schema.field(name)
                if f is not None:
                    seg.fill_added_field(f)
        seg.append(batch, n, ts)
        if seg.num_rows >= self.seal_rows:
            self.seal_growing(partition_id)

    def _segment_id(self) -> int:
        if not self.ids_from_lsn or not self.last_lsn:
            return self._new_id()
        lsn, opened = self._opened_at
        opened = opened + 1 if lsn == self.last_lsn else 0
        self._opened_at = (self.last_lsn, opened)
        return lsn_segment_id(self.last_lsn, opened)

    def has_unsealed_work(self) -> bool:
        """Rows a flush would seal or persist: a growing segment with rows, or a sealed one in memory."""
        return any(s.num_rows and not s.sealed for s in self._growing.values()) or bool(self.unpersisted())

    @property
    def seal_rows(self) -> int:
        """Rows at which a growing segment seals: the row cap, or fewer when wide rows reach the byte cap."""
        return max(1, min(self.segment_max_rows, self.segment_max_bytes // self.schema.approx_row_bytes()))

    def apply_delete(self, pks: np.ndarray, ts: int, partition_ids: set[int] | None) -> int:
        """Delete the rows older than `ts` with these keys; inserts call it too (one row per key)."""
        if len(pks) == 0:
            return 0
        if pks.dtype != object:
            pks = np.sort(pks)  # sorted probes walk each sorted run in order (cache-friendly)
            lo, hi = pks[0], pks[-1]
        else:
            lo, hi = pks.min(), pks.max()
        if self.delete_log is not None:
            self.delete_log.append((self.last_lsn, pks, lo, hi, ts, partition_ids))
        count = 0
        for seg in self.segments:
            if partition_ids is None or seg.partition_id in partition_ids:
                count += seg.hide_older(pks, lo, hi, ts)
        return count

    def seal_growing(self, partition_id: int | None = None) -> list[Segment]:
        """Seal the growing segment of one partition (or all); returns what was sealed."""
        sealed = []
        for pid in list(self._growing):
            if partition_id is not None and pid != partition_id:
                continue
            seg = self._growing.pop(pid)
            if seg.num_rows:
                seg.sealed = True
                sealed.append(seg)
            else:
                self.segments = [s for s in self.segments if s is not seg]
        if sealed and self.on_sealed is not None:
            self.on_sealed(self)
        return sealed

    def replace(self, old: Segment, new: Segment | None) -> None:
        """Swap one segment for another (persisting, compaction); None removes it. The caller
        holds `write_lock`. The new segment was written from a snapshot of the old one taken
        outside the lock, so a field added since then is missing from it: it gets the default
        here, as `fill_added_fields` gave the old one."""
        if new is not None:
            for f in self.schema.fields:
                if f.default_value is not None:
                    new.fill_added_field(f)
        self.segments = [new if s is old else s for s in self.segments if new is not None or s is not old]

    def drop_partition(self, partition_id: int) -> list[Segment]:
        with self.write_lock:
            gone = [s for s in self.segments if s.partition_id == partition_id]
            self.segments = [s for s in self.segments if s.partition_id != partition_id]
            self._growing.pop(partition_id, None)
            return gone

    def fill_added_fields(self) -> None:
        """Give every segment's older rows the default of each field added after they were written."""
        with self.write_lock:
            for f in self.schema.fields:
                if f.default_value is not None:
                    for seg in self.segments:
                        seg.fill_added_field(f)

    # ---- reads
    def snapshot(self, partition_ids: set[int] | None = None) -> list[Segment]:
        share = READ_SHARE.get()
        segs = self.segments if share is None else share(self)
        if partition_ids is None:
            return list(segs)
        return [s for s in segs if s.partition_id in partition_ids]

    def visible_keys(
        self, pk: str, read_ts: int, select: Callable[[Segment, int], np.ndarray | None] | None = None
    ) -> np.ndarray:
        """Primary keys of the rows visible at `read_ts`, of those `select(segment, rows)` picks
        when given (a mask, or None to skip the segment); callers hold `write_lock` so the keys
        are what a delete logged next removes."""
        parts = []
        for seg in self.snapshot():
            batch, n = seg.snapshot_batch()
            mask = seg.visible(read_ts)
            if select is not None:
                chosen = select(seg, n)
                if chosen is None:
                    continue
                mask = chosen[:n] if mask is None else mask[:n] & chosen[:n]
            keys = np.asarray(batch[pk].values[:n])
            parts.append(keys if mask is None else keys[mask[:n]])
        return np.concatenate(parts) if parts else np.array([], dtype=np.int64)

    def unpersisted(self) -> list[Segment]:
        return [s for s in self.segments if s.sealed and not s.path]

    def row_count(self, partition_ids: set[int] | None = None) -> int:
        return sum(s.live_rows() for s in self.snapshot(partition_ids))

    def written_rows(self, partition_ids: set[int] | None = None) -> int:
        """Rows stored, as Milvus's statistics count them: a deleted or overwritten row
        still counts until a compaction rewrites its segment."""
        return sum(s.num_rows for s in self.snapshot(partition_ids))
