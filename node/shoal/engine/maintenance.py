"""Compaction: merge small sealed segments and drop deleted rows, then swap atomically.

A compaction writes one new segment per partition from the live rows of the chosen
segments, outside every lock. The swap (under the collection's write lock) first copies
onto the new rows any delete that landed on the old rows meanwhile, then replaces the old
segments in one step and commits the catalog, so no read ever sees a row twice or loses
one. The new segment's indexes are built before the swap.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from shoal.engine.catalog import Catalog, CollectionMeta, SegmentMeta
from shoal.engine.collection_data import CollectionData
from shoal.engine.indexer import Indexer
from shoal.engine.persistence import Persistence, deletes_path, segment_dir
from shoal.engine.requests import CompactionPlan, CompactionState
from shoal.engine.segments import (
    NOT_DELETED,
    TS_COLUMN,
    Segment,
    carry_shadows,
    in_order,
    null_column,
    permute_shadows,
    sorted_by_key,
)
from shoal.errors import invalid
from shoal.schema import Column
from shoal.storage.segment_files import read_segment, write_array_atomic, write_segment

log = logging.getLogger(__name__)
# Automatic compaction (checked after every flush and periodically by the engine).
AUTO_SMALL_SEGMENTS = 4
AUTO_DELETED_RATIO = 0.2


def _rewrites(seg: Segment) -> bool:
    """Whether compacting this segment alone changes it: deleted rows to drop, or rows to put
    in key order (a segment written before flushes sorted them)."""
    return bool(seg.num_deleted) or not seg.rows_in_key_order()


class Compactor:
    def __init__(self, root: Path, catalog: Catalog, persistence: Persistence, indexer: Indexer) -> None:
        self.root = root
        self.catalog = catalog
        self.persistence = persistence
        self.indexer = indexer
        self._states: dict[int, CompactionState] = {}
        self._lock = threading.Lock()
        # Held by a backup from its timestamp until it has captured the segments: a swap by a
        # compaction newer than that timestamp would drop rows still visible at it.
        self.gate = threading.Lock()
        # (meta, partition, source ids, target id, timestamp), called where a compaction swaps in
        self.on_merged: Callable[[CollectionMeta, int, list[int], int, int], None] | None = None
        self._last_id = 0
        self._busy: dict[int, int] = {}  # collection id -> compactions running or waiting
        # which sealed segments a compaction may take (None: every persisted one); a cluster owner in
        # share mode: those its committed checkpoint names (`CheckpointWriter.shared`)
        self.eligible: Callable[[int, Segment], bool] | None = None
        self._turns: dict[int, threading.Lock] = {}  # collection id -> held while one runs

    def plan(
        self, data: CollectionData, small_rows: int, deleted_ratio: float = 0.0, force: bool = False
    ) -> list[tuple[int, list[Segment]]]:
        """The merges to run, as (partition, segments) pairs: per partition, the persisted segments
        worth rewriting (small ones, and those whose deleted rows reach `deleted_ratio`; 0: any
        delete, for a compaction the user asked for, which also takes segments not in key order),
        packed so no merge outgrows a full segment. Every merge writes its rows in key order.

        `force` (Milvus's force merge, a compaction with a target size) takes every persisted
        segment; one left alone in its pack with nothing to drop is a plan of its own that
        rewrites nothing (`_run` reports it as its own target)."""
        groups: dict[int, list[Segment]] = {}
        for seg in data.snapshot():
            if not self._may_take(data, seg):
                continue
            # Unsorted segments (written before flushes sorted them) wait for a compaction the
            # user asks for: sorting a large data set after an upgrade rebuilds all its indexes.
            asked = deleted_ratio == 0.0
            if force or seg.num_rows < small_rows or (asked and not seg.rows_in_key_order()) or (
                seg.num_deleted and seg.num_deleted >= deleted_ratio * seg.num_rows
            ):
                groups.setdefault(seg.partition_id, []).append(seg)
        plans: list[tuple[int, list[Segment]]] = []
        for pid, segs in groups.items():
            bins: list[list[Segment]] = []
            room: list[int] = []
            for seg in sorted(segs, key=lambda s: -s.live_rows()):
                live = seg.live_rows()
                at = next((i for i, free in enumerate(room) if free >= live), None)
                if at is None:
                    bins.append([seg])
                    room.append(data.seal_rows - live)
                else:
                    bins[at].append(seg)
                    room[at] -= live
            plans += [(pid, b) for b in bins if force or len(b) > 1 or _rewrites(b[0])]
        return plans

    def _may_take(self, data: CollectionData, seg: Segment) -> bool:
        return bool(seg.sealed and seg.path) and (self.eligible is None or self.eligible(data.collection_id, seg))

    def small_rows(self, data: CollectionData) -> int:
        return max(1, data.seal_rows // 2)

    def compact(
        self, meta: CollectionMeta, data: CollectionData, now_ts: int, auto: bool = False, force: bool = False
    ) -> int:
        """Start compacting the collection; returns the compaction id to poll.

        Compactions of one collection run one after another; each plans when its turn comes,
        so a request made while another runs still covers every segment there is by then.
        Rows deleted at or before `now_ts` are dropped. `force`: see `plan`.
        """
        with self._lock:
            cid = max(int(now_ts), self._last_id + 1)
            self._last_id = cid
            state = CompactionState(cid, "Executing", collection_id=meta.collection_id)
            self._states[cid] = state
        turn = self._enter(meta.collection_id)
        ratio = AUTO_DELETED_RATIO if auto else 0.0
        threading.Thread(target=self._run, args=(meta, data, now_ts, state, turn, ratio, force), daemon=True).start()
        return cid

    def _enter(self, collection_id: int) -> threading.Lock:
        """Count one more compaction of the collection as running or waiting (`running`, until
        `_leave`); returns the lock it takes its turn on."""
        with self._lock:
            self._busy[collection_id] = self._busy.get(collection_id, 0) + 1
            return self._turns.setdefault(collection_id, threading.Lock())

    def _leave(self, collection_id: int) -> None:
        with self._lock:
            self._busy[collection_id] -= 1

    def running(self, collection_id: int) -> bool:
        """Whether a compaction of the collection is running or waiting for its turn."""
        with self._lock:
            return self._busy.get(collection_id, 0) > 0

    def wanted(self, data: CollectionData) -> bool:
        """Whether automatic compaction should run: a partition has AUTO_SMALL_SEGMENTS small
        segments, or a segment has lost AUTO_DELETED_RATIO of its rows to deletes."""
        small: dict[int, int] = {}
        for seg in data.snapshot():
            if not self._may_take(data, seg):
                continue
            if seg.num_deleted and seg.num_deleted >= AUTO_DELETED_RATIO * seg.num_rows:
                return True
            if seg.num_rows < self.small_rows(data):
                small[seg.partition_id] = small.get(seg.partition_id, 0) + 1
        return any(count >= AUTO_SMALL_SEGMENTS for count in small.values())

    def state(self, compaction_id: int) -> CompactionState:
        with self._lock:
            found = self._states.get(compaction_id)
        if found is None:
            raise invalid(f"compaction {compaction_id} not found")
        return found

    def _run(
        self,
        meta: CollectionMeta,
        data: CollectionData,
        now_ts: int,
        state: CompactionState,
        turn: threading.Lock,
        deleted_ratio: float,
        force: bool = False,
    ) -> None:
        try:
            with turn:
                plans = self.plan(data, self.small_rows(data), deleted_ratio, force)
                records = [CompactionPlan([s.segment_id for s in olds], 0, pid) for pid, olds in plans]
                state.plans = records
                state.executing_plans = len(plans)
                for (pid, olds), record in zip(plans, records, strict=True):
                    if data.dropped:
                        break
                    try:
                        if len(olds) == 1 and not _rewrites(olds[0]):
                            record.target = olds[0].segment_id  # already whole: nothing to rewrite
                        else:
                            record.target = self._merge(meta, data, pid, olds, now_ts)
                        record.state = "Completed"
                        state.completed_plans += 1
                    except Exception:
                        record.state = "Failed"
                        if data.dropped:  # the collection's files went away under it: nothing to report
                            log.debug("compaction of dropped collection %s stopped", meta.name)
                            break
                        log.exception("compaction of collection %s partition %s failed", meta.name, pid)
                        state.timeout_plans += 1
                    state.executing_plans -= 1
                if data.dropped:  # files written after the drop removed the collection's folder
                    self.persistence.drop_files(meta)
        finally:
            self._leave(meta.collection_id)
            state.state = "Completed"
        self.indexer.kick()

    def merge_as(
        self, meta: CollectionMeta, data: CollectionData, pid: int, sources: list[int], target: int, now_ts: int
    ) -> None:
        """A cluster follower repeats its owner's compaction (a COMPACT record), in the background:
        the same sources in the same order, the rows deleted at or before `now_ts` dropped, the
        same target id. Skipped when the node does not hold every source (it loaded a checkpoint
        taken after the compaction, which names the target already)."""
        turn = self._enter(meta.collection_id)

        def run() -> None:
            try:
                with turn:
                    by_id = {s.segment_id: s for s in data.snapshot() if s.sealed and s.path}
                    if data.dropped or target in by_id or any(i not in by_id for i in sources):
                        log.info("compaction into %d of collection %s: not every source is here; skipped",
                                 target, meta.name)
                        return
                    self._merge(meta, data, pid, [by_id[i] for i in sources], now_ts, target)
            except Exception:
                if not data.dropped:
                    log.exception("repeating compaction into %d of collection %s failed", target, meta.name)
            finally:
                self._leave(meta.collection_id)
            self.indexer.kick()

        threading.Thread(target=run, name="shoal-compact-as", daemon=True).start()

    def _merge(
        self, meta: CollectionMeta, data: CollectionData, pid: int, olds: list[Segment], now_ts: int, target: int = 0
    ) -> int:
        """Rewrite `olds` as one segment; returns its id (0: every row was deleted). `target`: the
        id to give it (a follower repeating its owner's compaction), else a new one."""
        keep_rows = [np.flatnonzero(seg.deleted_ts[: seg.num_rows] > now_ts) for seg in olds]
        total = sum(len(r) for r in keep_rows)
        new_id = target or self.catalog.new_id()
        rel = segment_dir(meta.collection_id, new_id)
        order: np.ndarray | None = None
        if total:
            names = set().union(*(seg.columns.keys() for seg in olds))
            columns = {}
            for name in names:
                like = next(seg.columns[name] for seg in olds if name in seg.columns)
                parts = [
                    seg.columns[name].take(rows) if name in seg.columns else null_column(like, len(rows))
                    for seg, rows in zip(olds, keep_rows, strict=True)
                ]
                columns[name] = Column.concat(parts)
            columns[TS_COLUMN] = Column(np.concatenate([seg.ts[rows] for seg, rows in zip(olds, keep_rows, strict=True)]))
            # the merged segment keeps primary-key order, as every flushed one
            columns, order = sorted_by_key(columns, meta.schema.primary_field.name)
            write_segment(self.root / rel, columns, {"partition_id": pid, "segment_id": new_id})
        new = built = None
        if total:
            loaded, _ = read_segment(self.root / rel, mmap=True)
            current = in_order(np.concatenate([seg.deleted_ts[rows] for seg, rows in zip(olds, keep_rows, strict=True)]), order)
            new = Segment.sealed_from(new_id, pid, meta.schema.primary_field.name, loaded, current, rel)
            new.compacted_from = tuple(seg.segment_id for seg in olds)
            # Indexed before it is swapped in: searches stay on an index and DescribeIndex
            # stays Finished across the swap.
            built = self.indexer.build_now(meta, new)
        with self.gate, data.write_lock:
            if data.dropped:
                return 0
            if new is not None:
                # deletes that landed on the old rows while the new segment was being written
                new.deleted_ts = in_order(
                    np.concatenate([seg.deleted_ts[rows] for seg, rows in zip(olds, keep_rows, strict=True)]), order
                )
                new.num_deleted = int((new.deleted_ts != NOT_DELETED).sum())
                write_array_atomic(deletes_path(self.root, rel), np.array(new.deleted_ts))
                carry_shadows(new, olds, keep_rows)
                if order is not None:
                    permute_shadows(new, order)
            if self.on_merged is not None:  # a cluster's owner logs it for its followers, here in order
                try:
                    self.on_merged(meta, pid, [s.segment_id for s in olds], new_id if new is not None else 0, now_ts)
                except Exception:
                    if new is not None:
                        self.persistence.drop_segment_files(new)
                    raise
            if new is not None:
                self.indexer.keep_current(meta, new, built or {})
            first = olds[0]
            data.replace(first, new)
            for seg in olds[1:]:
                data.replace(seg, None)
            meta.segments = [SegmentMeta(s.segment_id, s.partition_id, s.num_rows, s.path) for s in data.segments if s.path]
            self.catalog.save_collection(meta)
        for seg in olds:
            self.persistence.drop_segment_files(seg)
        return new_id if new is not None else 0
