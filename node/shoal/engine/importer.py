"""Bulk import jobs: read files in the background, stage segments, make them visible at once.

`Importer.submit` queues a job and returns it; one worker thread runs jobs in order. A job
reads each file group (`import_formats.read_group`), checks and routes every chunk with
the write path's own `Writer.prepare` (the same rules as insert), and stages the rows as
sealed segment files that no reader knows of. Only when every file has been read does
it commit: under the collection's write lock it takes one timestamp, stamps the staged
segments with it, attaches them and commits the catalog — so all the rows appear
together, durable without the WAL. A bad file fails the job with a message naming file,
row and field; its staged files are deleted and the collection is unchanged. Jobs live
in memory: the list is lost on restart (a job that had not committed left no rows).
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shoal.engine.catalog import Catalog, CollectionMeta, SegmentMeta
from shoal.engine.collection_data import CollectionData
from shoal.engine.import_formats import ImportFileError, group_format, group_rows, read_group
from shoal.engine.persistence import segment_dir
from shoal.engine.segments import TS_COLUMN, Segment, sorted_by_key
from shoal.engine.tso import TimestampOracle
from shoal.engine.validation import normalize_insert
from shoal.engine.writer import PARTITION_COLUMN, Writer
from shoal.errors import ShoalError, invalid
from shoal.schema import Batch, Column
from shoal.storage.segment_files import (
    read_manifest,
    read_segment,
    remove_segment,
    write_array_atomic,
    write_segment,
)

log = logging.getLogger(__name__)

PENDING, IMPORTING, COMPLETED, FAILED = "Pending", "Importing", "Completed", "Failed"
_MAX_JOBS_KEPT = 1024


@dataclass
class ImportJob:
    job_id: int
    database: str
    collection: str
    collection_id: int
    partition: str
    files: list[list[str]]
    options: dict[str, str]
    state: str = PENDING
    reason: str = ""
    progress: int = 0  # percent
    imported_rows: int = 0
    total_rows: int = 0
    file_rows: dict[str, int] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    finished: float = 0.0
    segment_ids: list[int] = field(default_factory=list)
    commit_lsn: int = 0  # cluster mode: the WAL position of the record that made the rows visible


class _Stage:
    """Rows read so far, per partition, written out as segment files every `seal_rows` rows."""

    def __init__(self, root: Path, meta: CollectionMeta, catalog: Catalog, seal_rows: int,
                 path_of: Callable[[int, int], str] = segment_dir) -> None:
        self.root, self.meta, self.catalog, self.seal_rows = root, meta, catalog, seal_rows
        self.path_of = path_of  # (collection id, segment id) -> the segment's relative directory
        self.pending: dict[int, list[Batch]] = {}
        self.pending_rows: dict[int, int] = {}
        self.written: list[tuple[int, int, str, int]] = []  # (segment id, partition id, rel path, rows)

    def add(self, batch: Batch, n: int) -> None:
        pids = np.asarray(batch.pop(PARTITION_COLUMN).values)
        for pid in np.unique(pids).tolist():
            rows = np.flatnonzero(pids == pid)
            part = batch if len(rows) == n else {k: c.take(rows) for k, c in batch.items()}
            self.pending.setdefault(pid, []).append(part)
            self.pending_rows[pid] = self.pending_rows.get(pid, 0) + len(rows)
            if self.pending_rows[pid] >= self.seal_rows:
                self._write(pid)

    def finish(self) -> None:
        for pid in list(self.pending):
            self._write(pid)

    def _write(self, pid: int) -> None:
        parts = self.pending.pop(pid, [])
        rows = self.pending_rows.pop(pid, 0)
        if not rows:
            return
        columns: Batch = {TS_COLUMN: Column(np.zeros(rows, dtype=np.int64))}
        for name in parts[0]:
            columns[name] = Column.concat([p[name] for p in parts])
        columns, _ = sorted_by_key(columns, self.meta.schema.primary_field.name)  # as a flush writes it
        seg_id = self.catalog.new_id()
        rel = self.path_of(self.meta.collection_id, seg_id)
        write_segment(self.root / rel, columns, {"partition_id": pid, "segment_id": seg_id})
        self.written.append((seg_id, pid, rel, rows))

    def discard(self) -> None:
        for _, _, rel, _ in self.written:
            remove_segment(self.root / rel)
        self.written.clear()


class Importer:
    def __init__(
        self,
        root: Path,
        catalog: Catalog,
        tso: TimestampOracle,
        writer: Writer,
        data_of: Callable[[int], CollectionData | None],
        on_commit: Callable[[], None],
    ) -> None:
        self.root, self.catalog, self.tso, self.writer = root, catalog, tso, writer
        self._data_of = data_of
        self._on_commit = on_commit
        self._jobs: dict[int, ImportJob] = {}
        self._lock = threading.Lock()
        self._queue: queue.Queue[ImportJob | None] = queue.Queue()
        self._closing = threading.Event()
        self._ids = itertools.count(int(time.time() * 1000) << 8)
        self._worker = threading.Thread(target=self._loop, name="shoal-import", daemon=True)
        self._worker.start()

    # ---- api
    def submit(self, database: str, meta: CollectionMeta, partition: str, files: list[list[str]],
               options: dict[str, str]) -> ImportJob:
        if not files or not all(files):
            raise invalid("import requires at least one file")
        if partition and meta.schema.partition_key_field is not None:
            raise invalid("not allow to set partition name for collection with partition key")
        if partition:
            meta.require_partition(partition)
        for group in files:
            group_format(group)
        job = ImportJob(next(self._ids), database, meta.name, meta.collection_id, partition,
                        [list(g) for g in files], dict(options))
        with self._lock:
            self._jobs[job.job_id] = job
            if len(self._jobs) > _MAX_JOBS_KEPT:
                oldest = next(j for j in self._jobs.values() if j.state in (COMPLETED, FAILED))
                self._jobs.pop(oldest.job_id, None)
        self._publish(job)
        self._queue.put(job)
        return job

    def get(self, job_id: int) -> ImportJob:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise invalid(f"import job {job_id} not found")
        return job

    def list(self, database: str, collection_id: int | None = None) -> list[ImportJob]:
        with self._lock:
            jobs = list(self._jobs.values())
        return [j for j in jobs if j.database == database and (collection_id is None or j.collection_id == collection_id)]

    def close(self) -> None:
        self._closing.set()  # a running job stops at its next chunk and leaves nothing behind
        self._queue.put(None)
        self._worker.join(timeout=30)

    # ---- worker
    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            if self._closing.is_set():
                self._fail(job, "the server is shutting down")
                continue
            self._run(job)

    def _run(self, job: ImportJob) -> None:
        meta = self.catalog.collections.get(job.collection_id)
        data = self._data_of(job.collection_id)
        if meta is None or data is None:
            self._fail(job, f"collection {job.collection} was dropped before the import started")
            return
        job.state = IMPORTING
        self._publish(job)
        stage = self._stage(meta, data)
        try:
            groups = self._local_files(job)
            known = [group_rows(g) for g in groups]
            job.total_rows = sum(r for r in known if r is not None)
            for gi, group in enumerate(groups):
                for chunk in read_group(group, meta.schema, job.options):
                    if self._closing.is_set():
                        raise ImportFileError("the server is shutting down")
                    batch = self._prepare(meta, job.partition, chunk.batch, chunk.num_rows, chunk.file, chunk.first_row)
                    stage.add(batch, chunk.num_rows)
                    name = job.files[gi][group.index(chunk.file)] if chunk.file in group else chunk.file
                    job.imported_rows += chunk.num_rows
                    job.file_rows[name] = job.file_rows.get(name, 0) + chunk.num_rows
                    if known[gi] is None:
                        job.total_rows = max(job.total_rows, job.imported_rows)
                    job.progress = min(99, int(90 * (gi + chunk.done) / len(groups)))
                    self._publish(job, progress=True)
            stage.finish()
            job.total_rows = job.imported_rows
            self._commit(job, meta, data, stage)
        except (ImportFileError, ShoalError) as e:
            self._discard(stage)
            self._fail(job, str(e.message if isinstance(e, ShoalError) else e))
        except Exception as e:  # a bug must not kill the worker; the job says what happened
            log.exception("import job %d failed", job.job_id)
            self._discard(stage)
            self._fail(job, f"unexpected error: {e}")
        finally:
            self._done_with_files(job)

    # ---- what cluster mode replaces (`shoal.cluster.roles.imports`)
    def _stage(self, meta: CollectionMeta, data: CollectionData) -> _Stage:
        return _Stage(self.root, meta, self.catalog, data.seal_rows)

    def _local_files(self, job: ImportJob) -> list[list[str]]:
        """The job's file groups as paths on this machine (standalone: as given)."""
        return job.files

    def _done_with_files(self, job: ImportJob) -> None:
        pass

    def _publish(self, job: ImportJob, progress: bool = False) -> None:
        """The job changed (standalone keeps jobs in memory only)."""

    def _discard(self, stage: _Stage) -> None:
        stage.discard()

    def _prepare(self, meta: CollectionMeta, partition: str, batch: Batch, n: int, path: str, first: int) -> Batch:
        try:
            return self.writer.prepare(meta, partition, batch, n)
        except ShoalError as e:
            row = _first_bad_row(meta, batch, n)
            where = f"file {Path(path).name}" + (f", row {first + row + 1}" if row is not None else "")
            raise ImportFileError(f"{where}: {e.message}") from None

    def _commit(self, job: ImportJob, meta: CollectionMeta, data: CollectionData, stage: _Stage) -> None:
        with data.write_lock:
            check_still_there(self.catalog, job, meta, stage)
            ts = self.tso.allocate()
            for _, _, rel, rows in stage.written:
                stamp_ts(self.root, rel, rows, ts)
            segments = [sealed_segment(self.root, meta, seg_id, pid, rel) for seg_id, pid, rel, _ in stage.written]
            attach(meta, data, segments)
            self.catalog.save_collection(meta)
            self.tso.observe(ts)
        self._completed(job, segments)

    def _completed(self, job: ImportJob, segments: list[Segment]) -> None:
        job.segment_ids = [s.segment_id for s in segments]
        job.state, job.progress, job.finished = COMPLETED, 100, time.time()
        log.info("import job %d: %d rows into %s in %d segments", job.job_id, job.imported_rows, job.collection,
                 len(segments))
        self._publish(job)
        self._on_commit()

    def _fail(self, job: ImportJob, reason: str) -> None:
        job.state, job.reason, job.finished, job.imported_rows = FAILED, reason, time.time(), 0
        log.info("import job %d failed: %s", job.job_id, reason)
        self._publish(job)


def check_still_there(catalog: Catalog, job: ImportJob, meta: CollectionMeta, stage: _Stage) -> None:
    """At commit (under the write lock): the collection and the partitions written to exist."""
    if catalog.collections.get(job.collection_id) is not meta:
        raise invalid(f"collection {job.collection} was dropped during the import")
    for _, pid, _, _ in stage.written:
        if all(p.partition_id != pid for p in meta.partitions):
            raise invalid(f"a partition of collection {job.collection} was dropped during the import")


def stamp_ts(root: Path, rel: str, rows: int, ts: int) -> Path:
    """Give every row of a staged segment the import's one timestamp; returns the file written."""
    entry = next(c for c in read_manifest(root / rel)["columns"] if c["name"] == TS_COLUMN)
    path = root / rel / entry["file"]
    write_array_atomic(path, np.full(rows, ts, dtype=np.int64))
    return path


def sealed_segment(root: Path, meta: CollectionMeta, seg_id: int, pid: int, rel: str) -> Segment:
    loaded, _ = read_segment(root / rel, mmap=True)
    return Segment.sealed_from(seg_id, pid, meta.schema.primary_field.name, loaded, np.empty(0, np.int64), rel)


def attach(meta: CollectionMeta, data: CollectionData, segments: list[Segment]) -> None:
    """Make imported segments visible, all at once (the caller holds the write lock)."""
    data.segments = data.segments + segments
    meta.segments = [SegmentMeta(s.segment_id, s.partition_id, s.num_rows, s.path) for s in data.segments if s.path]

def _first_bad_row(meta: CollectionMeta, batch: Batch, n: int) -> int | None:
    """The first row `normalize_insert` refuses (the error path only): the shortest failing
    prefix, found by bisection, ends at it."""

    def fails(k: int) -> bool:
        rows = np.arange(k)
        try:
            normalize_insert(meta.schema, {name: c.take(rows) for name, c in batch.items()}, k)
        except ShoalError:
            return True
        return False

    if not fails(n):
        return None
    lo, hi = 1, n  # fails(hi) holds
    while lo < hi:
        mid = (lo + hi) // 2
        if fails(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo - 1
