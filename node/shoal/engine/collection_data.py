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

from shoal.engine.segments import NOT_DELETED, Segment, default_column
from shoal.engine.shadows import NO_SHADOW, with_partition
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


def _sorted_probe(pks: np.ndarray) -> tuple[np.ndarray, Any, Any]:
    """The keys to probe segments with, and their bounds: numeric keys sorted, as sorted probes
    walk each sorted run in order (cache-friendly)."""
    if pks.dtype != object:
        pks = np.sort(pks)
        return pks, pks[0], pks[-1]
    return pks, pks.min(), pks.max()


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

    def apply_insert(
        self, partition_id: int, batch: Batch, n: int, ts: int, hidden: np.ndarray | None = None
    ) -> None:
        """Append rows to the partition's growing segment; rows of `hidden` (a bool mask over the
        batch) are stored but deleted at `ts` from the start: a key repeated within one insert."""
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
        first = seg.num_rows
        seg.append(batch, n, ts)
        if hidden is not None and hidden.any():
            seg.delete_rows(first + np.flatnonzero(hidden), ts)
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
        """Delete the rows older than `ts` with these keys (in `partition_ids` only, when given).
        A key's row shadowing its rows in other partitions may be among those deleted: the
        newest row left then shadows the others (`settle_shadows`)."""
        if len(pks) == 0:
            return 0
        pks, lo, hi = _sorted_probe(pks)
        self._log_delete(pks, lo, hi, ts, partition_ids)
        count = 0
        for seg in self.segments:
            if partition_ids is None or seg.partition_id in partition_ids:
                count += seg.hide_older(pks, lo, hi, ts)
        if count and partition_ids is not None and any(s.num_shadowed for s in self.segments):
            self.settle_shadows(pks)
        return count

    def write_over(self, pks: np.ndarray, pids: np.ndarray, ts: int) -> int:
        """An insert or upsert of keys `pks` into partitions `pids` (one per key): the older rows
        of each key in its own partition are deleted, those in other partitions shadowed (as in
        Milvus, a key lives in every partition it was written to). Returns rows deleted."""
        if len(pks) == 0:
            return 0
        one = int(pids[0]) if bool(np.all(pids == pids[0])) else None
        if pks.dtype != object:
            order = np.argsort(pks, kind="stable")  # sorted probes walk each sorted run in order
            pks, pids = pks[order], pids[order]
        lo, hi = (pks[0], pks[-1]) if pks.dtype != object else (pks.min(), pks.max())
        if self.delete_log is not None:
            for pid in [one] if one is not None else np.unique(pids).tolist():
                mine = pks if one is not None else pks[pids == pid]
                self._log_delete(mine, mine.min(), mine.max(), ts, {int(pid)})
        count = 0
        for seg in self.segments:
            keys = seg.key_column()
            if not seg.keys.may_hold(keys, lo, hi):
                continue
            hit = seg.keys.holds(keys, pks)
            if not hit.any():
                continue
            if one is not None:
                if seg.partition_id == one:
                    count += seg.apply_delete(pks[hit], ts)
                else:
                    seg.shadow_older(pks[hit], one, ts)
                continue
            own = hit & (pids == seg.partition_id)
            if own.any():
                count += seg.apply_delete(pks[own], ts)
            other = hit & ~own
            if other.any():
                seg.shadow_older(pks[other], pids[other], ts)
        return count

    def settle_shadows(self, keys: np.ndarray | None = None) -> None:
        """Recompute the shadows of these keys (None: of every key) from the live rows: of a key
        live in several partitions, the newest row shadows the others."""
        pos_parts, row_parts, key_parts, ts_parts = [], [], [], []
        lo_hi = None if keys is None or len(keys) == 0 else (keys.min(), keys.max())
        for pos, seg in enumerate(self.segments):
            n = seg.num_rows
            if n == 0:
                continue
            col = seg.key_column()
            if lo_hi is not None and not seg.keys.may_hold(col, *lo_hi):
                continue
            live = seg.deleted_ts[:n] == NOT_DELETED
            if keys is not None:
                live &= np.isin(col, keys)
            rows = np.flatnonzero(live)
            if len(rows):
                pos_parts.append(np.full(len(rows), pos, np.int64))
                row_parts.append(rows)
                key_parts.append(col[rows])
                ts_parts.append(seg.ts[rows])
        if not pos_parts:
            return
        pos, rows, ts = np.concatenate(pos_parts), np.concatenate(row_parts), np.concatenate(ts_parts)
        part_of = np.array([s.partition_id for s in self.segments], np.int64)[pos]
        _, code = np.unique(np.concatenate(key_parts), return_inverse=True)
        code = code.reshape(-1)
        order = np.lexsort((ts, code))  # each key's rows together, oldest first
        by_key, parts, times = code[order], part_of[order], ts[order]
        ids = np.full(len(order), NO_SHADOW, np.int64)
        for step in range(1, len(order)):  # a row's set: the partitions of its key's newer rows
            newer = np.flatnonzero((by_key[:-step] == by_key[step:]) & (parts[:-step] != parts[step:]))
            if not len(newer) and not bool(np.any(by_key[:-step] == by_key[step:])):
                break
            if len(newer):
                ids[newer] = with_partition(ids[newer], parts[newer + step])
        last = np.ones(len(order), bool)
        last[:-1] = by_key[1:] != by_key[:-1]
        newest = np.zeros(int(by_key.max()) + 1, np.int64)
        newest[by_key[last]] = times[last]
        settled, since = np.empty_like(ids), np.empty_like(ids)
        settled[order], since[order] = ids, newest[by_key]
        for p in np.unique(pos).tolist():
            mine = pos == p
            self.segments[p].set_shadows(rows[mine], settled[mine], since[mine])

    def _log_delete(self, pks: np.ndarray, lo: Any, hi: Any, ts: int, partition_ids: set[int] | None) -> None:
        if self.delete_log is not None:
            self.delete_log.append((self.last_lsn, pks, lo, hi, ts, partition_ids))

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
            mask = seg.visible(read_ts, 0, None)
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
