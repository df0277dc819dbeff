"""A node-local copy of the engine that follows the cluster: catalog from etcd, rows from the WAL.

Streaming and query nodes both hold `Follower`s: the standalone `Engine` over a
`FollowerStore` (the catalog the coordinator writes) on a local directory that is wiped at
start, first loaded with the sealed segments of a channel's checkpoint (S3, see
`checkpoint.py`), then fed by `apply` from the checkpoint on: the standalone replay
(`writer.apply_record`, skipping what a collection's segments already hold) with a catalog
catch-up in front. A streaming node holds one per channel it owns; a query node one for every
channel (each collection is on one channel, so the channels' records never touch the same
collection), with what it applied kept per channel.
"""

from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path
from typing import Any

import numpy as np

from shoal.cluster.roles.catalog_sync import FollowerStore
from shoal.cluster.roles.common import ClusterEnv
from shoal.cluster.roles.imports import apply_import
from shoal.engine import wal_records
from shoal.engine.engine import Engine
from shoal.engine.wal_records import Kind, Record
from shoal.engine.writer import apply_record
from shoal.errors import Code, ShoalError
from shoal.schema import Column
from shoal.storage.kafka_wal import TailRecord

log = logging.getLogger(__name__)

_MAYBE_STALE = frozenset({
    Code.DATABASE_NOT_FOUND, Code.COLLECTION_NOT_FOUND, Code.PARTITION_NOT_FOUND, Code.INDEX_NOT_FOUND,
    Code.COLLECTION_NOT_LOADED, Code.PARTITION_NOT_LOADED, Code.ALIAS_NOT_FOUND,
})


class NoWAL:
    """A query node never writes: its rows come from the owner's WAL."""

    def append(self, payload: bytes) -> int:
        raise ShoalError(Code.NOT_SUPPORTED, "writes go to the shard's streaming node, not a query node")

    last_lsn = 0
    checkpoint_lsn = 0

    def mark_checkpoint(self, lsn: int) -> int:
        return lsn

    def replay(self, after_lsn: int = 0) -> Any:
        return iter(())

    def close(self) -> None:
        pass


class Follower:
    def __init__(self, env: ClusterEnv, local_dir: Path, wal: Any = None, build_indexes: bool = True) -> None:
        shutil.rmtree(local_dir, ignore_errors=True)
        local_dir.mkdir(parents=True)
        self.store = FollowerStore(env.meta_store())
        self.version = self.store.version()
        options = env.cfg.engine_options()
        # seal only where the owner sealed, and name segments by the record that opened them:
        # every node of the channel then holds the same segments under the same ids
        options.update(segment_ids_from_lsn=True, background_flush=False, auto_compact=False)
        if not build_indexes:  # the owner only writes; its reads (delete by filter) need no vector index
            options["min_index_rows"] = 1 << 62
        self.engine = Engine(local_dir, options, meta_store=self.store, wal=wal or NoWAL())
        self._lock = threading.Lock()
        # per channel: the LSN (Kafka offset + 1) of the newest record applied, and the newest
        # write timestamp applied (one owner at a time: increasing)
        self.applied: dict[int, int] = {}
        self.applied_ts: dict[int, int] = {}
        # bulk imports: where their segments are (S3 and the local disk cache), the jobs whose
        # IMPORT record this node applied, and who wants each import's attached segments
        self.import_source: tuple[Any, Path] | None = None
        self.imported_jobs: set[int] = set()
        self.on_imported: Any = None
        self.keep_delete_log = False  # share mode: a segment loaded later from S3 needs the deletes since
        # share mode: a COMPACT record is noted (collection id, sources, target), not repeated
        self.on_compact: Any = None
        self._applied_cond = threading.Condition()

    def lead(self) -> None:
        """This node now owns the follower's WAL channel (it replayed up to the end): it seals on its own
        (Flush, its background flush, checkpoints), each time right after logging a FLUSH record
        under the collection's write lock, where the followers then seal too."""
        engine = self.engine

        def log_flush(meta: Any, _data: Any) -> None:
            record = Record(Kind.FLUSH, meta.collection_id, 0, engine.tso.allocate(), {})
            engine.wal.append(wal_records.encode(record))

        def log_compaction(meta: Any, pid: int, sources: list[int], target: int, ts: int) -> None:
            batch = {wal_records.COMPACT_SOURCES: Column(np.array(sources, dtype=np.int64)),
                     wal_records.COMPACT_TARGET: Column(np.array([target], dtype=np.int64))}
            engine.wal.append(wal_records.encode(Record(Kind.COMPACT, meta.collection_id, pid, ts, batch)))

        engine.persistence.before_seal = log_flush
        engine.compactor.on_merged = log_compaction
        engine.background_flush = engine.auto_compact = True

    def catch_up(self, version: int) -> None:
        """Make the local catalog at least as new as `version` (0: re-read if it changed)."""
        if version and version <= self.version:
            return
        with self._lock:
            if version and version <= self.version:
                return
            current = self.store.version()
            if current == self.version and not version:
                return
            self.engine.reload_catalog()
            self.version = max(self.version, current)

    def call(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run an engine method; a name it does not know may be a DDL it has not seen yet (made
        through another proxy), so it re-reads the catalog once and tries again."""
        try:
            return getattr(self.engine, method)(*args, **kwargs)
        except ShoalError as e:
            if e.code not in _MAYBE_STALE:
                raise
            before = self.version
            self.catch_up(0)
            if self.version == before:
                raise
        return getattr(self.engine, method)(*args, **kwargs)

    def apply(self, channel: int, rec: TailRecord) -> None:
        self.catch_up(rec.meta_version)
        record = wal_records.decode(rec.payload)
        self.engine.tso.observe(record.ts)
        meta = self.engine.catalog.collections.get(record.collection_id)
        if meta is not None and any(meta.schema.field(n) is None for n in record.batch if not n.startswith("$")):
            # written after a field was added that this node's catalog has not seen yet: read it
            # first, so the field's default reaches the older rows before this batch brings a column
            self.catch_up(0)
            meta = self.engine.catalog.collections.get(record.collection_id)
        data = self.engine.datas.get(record.collection_id)
        # else the collection was dropped since, or the record is already applied (it is in a
        # segment loaded from S3: `last_lsn` starts at the collection's checkpoint LSN)
        if data is not None and meta is not None and rec.lsn > data.last_lsn:
            if record.kind == Kind.FLUSH:
                self.engine.persistence.flush(meta, data)
                self.engine.indexer.kick()
            elif record.kind == Kind.IMPORT:
                self._apply_import(meta, data, record, rec.lsn)
            elif record.kind == Kind.COMPACT:
                sources = [int(i) for i in record.batch[wal_records.COMPACT_SOURCES].values]
                target = int(record.batch[wal_records.COMPACT_TARGET].values[0])
                if self.on_compact is not None:
                    self.on_compact(record.collection_id, sources, target)
                else:
                    self.engine.compactor.merge_as(meta, data, record.partition_id, sources, target, record.ts)
            else:
                with data.write_lock:
                    if not data.dropped:
                        if self.keep_delete_log and data.delete_log is None:
                            data.delete_log, data.delete_log_after = [], data.last_lsn
                        data.note_lsn(rec.lsn)
                        apply_record(data, record)
        with self._applied_cond:
            self.applied_ts[channel] = max(self.applied_ts.get(channel, 0), record.ts)
        self.mark_applied(channel, rec.lsn)

    def _apply_import(self, meta: Any, data: Any, record: Any, lsn: int) -> None:
        if self.import_source is None:
            raise ShoalError(Code.UNEXPECTED, "a bulk import record, but this node has no object store configured")
        job_id, entries = apply_import(self.engine, meta, data, record, lsn, *self.import_source)
        self.imported_jobs.add(job_id)
        if self.on_imported is not None and entries:
            self.on_imported(entries)

    def mark_applied(self, channel: int, lsn: int) -> None:
        with self._applied_cond:
            if lsn > self.applied.get(channel, 0):
                self.applied[channel] = lsn
                self._applied_cond.notify_all()

    def wait_applied(self, channel: int, lsn: int, timeout_s: float) -> bool:
        with self._applied_cond:
            return self._applied_cond.wait_for(lambda: self.applied.get(channel, 0) >= lsn, timeout_s)

    def close(self) -> None:
        try:
            self.engine.close(flush=False)
        except Exception:
            log.exception("closing the local engine failed")
