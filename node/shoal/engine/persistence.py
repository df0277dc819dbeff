"""Flush, checkpoint and recovery: moving rows from the WAL into segment files and back.

Flush seals a collection's growing segments, writes every unpersisted sealed segment as
an immutable segment directory, writes the delete sidecars of segments whose deletes
changed, and only then commits the catalog with the new segment list and the
collection's checkpoint LSN (records at or below it are in files). Start-up loads the
segments named by the catalog and replays the WAL past each collection's checkpoint.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from shoal.engine import wal_records
from shoal.engine.catalog import Catalog, CollectionMeta, SegmentMeta
from shoal.engine.collection_data import CollectionData
from shoal.engine.segments import NOT_DELETED, TS_COLUMN, Segment, in_order, permute_shadows, sorted_by_key
from shoal.engine.tso import TimestampOracle
from shoal.engine.writer import apply_record
from shoal.index import load_index
from shoal.schema import Column
from shoal.storage.segment_files import (
    read_array,
    read_segment,
    remove_segment,
    write_array_atomic,
    write_segment,
)
from shoal.storage.wal import WriteAheadLog

log = logging.getLogger(__name__)


def segment_dir(collection_id: int, segment_id: int) -> str:
    return f"segments/{collection_id}/{segment_id}"


def deletes_path(root: Path, rel: str) -> Path:
    return root / f"{rel}.deletes.npy"


def index_dir(root: Path, rel: str, field_name: str) -> Path:
    return root / f"{rel}.index" / field_name


class Persistence:
    def __init__(self, root: Path, catalog: Catalog, wal: WriteAheadLog, tso: TimestampOracle) -> None:
        self.root = root
        self.catalog = catalog
        self.wal = wal
        self.tso = tso
        self._flush_lock = threading.Lock()
        # a cluster's WAL owner: logs a FLUSH record at the point it seals (under the write lock,
        # so the record sits exactly between the rows sealed and the rows after), and the nodes
        # following the WAL seal at that record: the same segments, with the same ids, everywhere
        self.before_seal: Callable[[CollectionMeta, CollectionData], None] | None = None

    # ---- flush
    def flush(self, meta: CollectionMeta, data: CollectionData) -> int:
        """Persist everything written to the collection so far; returns the checkpoint LSN."""
        with self._flush_lock:
            with data.write_lock:
                if self.before_seal is not None and data.has_unsealed_work():
                    self.before_seal(meta, data)
                data.seal_growing()
                checkpoint = data.last_lsn
                pending = data.unpersisted()
                dirty = [s for s in data.segments if s.path and s.deletes_dirty]
                for seg in dirty:
                    seg.deletes_dirty = False
                data.first_unpersisted_lsn = 0
            for seg in pending:
                self._persist(meta, data, seg)
            for seg in dirty:
                write_array_atomic(deletes_path(self.root, seg.path), np.array(seg.deleted_ts))
            with data.write_lock:
                meta.segments = [
                    SegmentMeta(s.segment_id, s.partition_id, s.num_rows, s.path) for s in data.segments if s.path
                ]
                meta.checkpoint_lsn = max(meta.checkpoint_lsn, checkpoint)
            self.catalog.save_collection(meta)
            return checkpoint

    def _persist(self, meta: CollectionMeta, data: CollectionData, seg: Segment) -> None:
        rel = segment_dir(meta.collection_id, seg.segment_id)
        batch, n = seg.snapshot_batch()
        columns = dict(batch)
        columns[TS_COLUMN] = Column(np.array(seg.ts[:n]))
        # The file holds the rows in primary-key order (deterministic: every node following the
        # WAL writes the same file); `order` maps its rows back to the growing segment's.
        columns, order = sorted_by_key(columns, seg.pk_field)
        write_segment(self.root / rel, columns, {"partition_id": seg.partition_id, "segment_id": seg.segment_id})
        deleted = in_order(seg.deleted_ts[:n], order)
        write_array_atomic(deletes_path(self.root, rel), np.array(deleted))
        loaded, _ = read_segment(self.root / rel, mmap=True)
        twin = Segment.sealed_from(seg.segment_id, seg.partition_id, seg.pk_field, loaded, deleted, rel)
        with data.write_lock:
            twin.num_deleted = seg.num_deleted
            twin.shadow_ts, twin.shadow_by, twin.num_shadowed = seg.shadow_ts, seg.shadow_by, seg.num_shadowed
            twin.deletes_dirty = seg.deletes_dirty
            if order is None:
                # Deletes applied while the files were written land in the shared array.
                twin.deleted_ts = seg.deleted_ts[:n]
                twin.indexes = seg.indexes
                twin.keys = seg.keys
            else:
                # No write reaches `seg` once the lock is held: a copy in file order has them all.
                twin.deleted_ts = in_order(seg.deleted_ts[:n], order)
                permute_shadows(twin, order)
                # The key index counts the rows it has taken in by position, so it starts anew
                # (indexes are only built on persisted segments: none to carry over).
            data.replace(seg, twin)

    def persisted_state(self, meta: CollectionMeta, data: CollectionData) -> tuple[list[Segment], list[np.ndarray], int, int]:
        """The persisted segments with a copy of each one's delete timestamps, the collection's
        checkpoint LSN and its first unpersisted LSN (0: none), all taken at one instant (no flush
        in between), so the segments hold exactly the records up to the checkpoint."""
        with self._flush_lock, data.write_lock:
            segments = [s for s in data.segments if s.path]
            deleted = [np.array(s.deleted_ts[: s.num_rows]) for s in segments]
            return segments, deleted, meta.checkpoint_lsn, data.first_unpersisted_lsn

    def truncate_wal(self, datas: list[CollectionData]) -> None:
        pending = [d.first_unpersisted_lsn for d in datas if d.first_unpersisted_lsn]
        newest = max((d.last_lsn for d in datas), default=0)
        upto = (min(pending) - 1) if pending else newest
        if upto > 0:
            self.wal.mark_checkpoint(upto)

    def drop_files(self, meta: CollectionMeta) -> None:
        shutil.rmtree(self.root / "segments" / str(meta.collection_id), ignore_errors=True)

    def drop_segment_files(self, seg: Segment) -> None:
        if not seg.path:
            return
        remove_segment(self.root / seg.path)
        deletes_path(self.root, seg.path).unlink(missing_ok=True)
        shutil.rmtree(self.root / f"{seg.path}.index", ignore_errors=True)

    # ---- recovery
    def load_segments(self, meta: CollectionMeta, data: CollectionData) -> None:
        data.segments = [self.load_segment(meta, sm) for sm in meta.segments]
        data.fill_added_fields()
        if meta.schema.partition_key_field is None and len({sm.partition_id for sm in meta.segments}) > 1:
            # shadows live in memory only: a key a partition-key field routes, or keys all in
            # one partition, never have any
            with data.write_lock:
                data.settle_shadows()

    def load_segment(self, meta: CollectionMeta, sm: SegmentMeta) -> Segment:
        """One segment directory, memory-mapped, with its delete log and the indexes found beside it."""
        columns, _ = read_segment(self.root / sm.path, mmap=True)
        side = deletes_path(self.root, sm.path)
        deleted = read_array(side, mmap=False) if side.exists() else np.full(sm.num_rows, NOT_DELETED)
        seg = Segment.sealed_from(sm.segment_id, sm.partition_id, meta.schema.primary_field.name, columns, deleted, sm.path)
        self.tso.observe(seg.max_ts)
        for index in meta.indexes:
            where = index_dir(self.root, sm.path, index.field_name)
            if where.exists():
                try:
                    seg.indexes[index.field_name] = load_index(where, mmap=True)
                except Exception:  # a half-written index is rebuilt, never fatal
                    log.exception("index %s of segment %s is unreadable; rebuilding", index.index_name, sm.path)
        return seg

    def replay(self, datas: dict[int, CollectionData]) -> int:
        count = 0
        for lsn, payload in self.wal.replay():
            record = wal_records.decode(payload)
            self.tso.observe(record.ts)
            meta = self.catalog.collections.get(record.collection_id)
            data = datas.get(record.collection_id)
            if meta is None or data is None or lsn <= meta.checkpoint_lsn:
                continue
            with data.write_lock:
                data.note_lsn(lsn)
                apply_record(data, record)
            count += 1
        return count
