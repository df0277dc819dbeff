"""Bulk import in cluster mode: the job runs on the WAL channel's owner, its segments go to S3.

`ClusterImporter` is the standalone `Importer` (same readers, the same `Writer.prepare` rules,
the same staging of sealed segments) with four parts replaced:
- files: an absolute path is read on the streaming node's file system (as standalone reads
  the server's); any other path is an object key in the cluster's bucket (Milvus's rule:
  import files are named relative to the bucket), downloaded to a scratch directory first;
- commit: the staged segments are uploaded to S3 under the same keys checkpoints use, then,
  under the collection's write lock, one timestamp is taken, the timestamp columns are
  uploaded and one `Kind.IMPORT` WAL record naming the segments is appended. That record is
  the commit point: every node (query nodes, a later owner replaying the channel) attaches
  all the segments together when it applies the record (`apply_import`), and the owner's
  next checkpoint names them in etcd;
- job state: every change is written to etcd (`imports/<job id>`), so any proxy answers
  GetImportState / ListImportTasks / the REST jobs API;
- a job running when its owner died: the next owner marks it Completed when its record was
  committed, else Failed (nothing of it is visible: its record was never written).

Imported rows next to existing rows of the same keys behave as in standalone: the import's
segments are attached as they are, hiding nothing (Milvus does not deduplicate an import
against existing data either).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from shoal.cluster.roles.checkpoint import _fetch_segment, s3_root
from shoal.cluster.roles.common import ClusterEnv
from shoal.engine import wal_records
from shoal.engine.catalog import CollectionMeta
from shoal.engine.collection_data import CollectionData
from shoal.engine.import_formats import ImportFileError
from shoal.engine.importer import (
    COMPLETED,
    FAILED,
    IMPORTING,
    PENDING,
    Importer,
    ImportJob,
    _Stage,
    attach,
    check_still_there,
    sealed_segment,
    stamp_ts,
)
from shoal.engine.wal_records import Kind, Record
from shoal.errors import ShoalError, invalid, not_supported
from shoal.schema import Column
from shoal.storage.kafka_wal import WalUnavailable
from shoal.storage.object_store import ObjectNotFound, S3ObjectStore

log = logging.getLogger(__name__)

JOBS_PREFIX = "imports/"
IMPORT_COLUMN = "$import"
MAX_JOBS_KEPT = 1024
PROGRESS_PERIOD_S = 0.5


def job_key(job_id: int) -> str:
    return f"{JOBS_PREFIX}{job_id}"


def job_from_json(raw: bytes | str) -> ImportJob:
    value = json.loads(raw)
    names = {f.name for f in dataclasses.fields(ImportJob)}
    return ImportJob(**{k: v for k, v in value.items() if k in names})


def read_job(env: ClusterEnv, job_id: int) -> ImportJob:
    raw = env.store.get(job_key(job_id))
    if raw is None:
        raise invalid(f"import job {job_id} not found")
    return job_from_json(raw)


def list_jobs(env: ClusterEnv) -> list[ImportJob]:
    return [job_from_json(v) for v in env.store.list_prefix(JOBS_PREFIX).values()]


def import_segment_dir(job_id: int) -> Callable[[int, int], str]:
    """An imported segment's directory names its job (a later owner finds what a job committed)
    and cannot meet a directory a node names after its own segment ids."""
    return lambda collection_id, segment_id: f"segments/{collection_id}/i{job_id}-{segment_id}"


class ClusterImporter(Importer):
    def __init__(self, engine: Any, env: ClusterEnv, s3: S3ObjectStore | None, epoch: int, scratch: Path,
                 on_committed: Callable[[list[dict[str, Any]]], None], on_wal_error: Callable[[str], None],
                 channel: int) -> None:
        super().__init__(engine.root, engine.catalog, engine.tso, engine.writer, engine.datas.get, engine.indexer.kick)
        # job ids are keys in etcd: each channel's owner hands out only ids congruent to its channel
        channels = env.channels()
        first = (int(time.time() * 1000) << 8) // channels + 1
        self._ids = itertools.count(first * channels + channel, channels)
        self.engine, self.env, self.s3, self.epoch, self.scratch = engine, env, s3, epoch, scratch
        self._on_committed = on_committed  # the segment entries, for the owner's checkpoints
        self._on_wal_error = on_wal_error
        self._progress_put: dict[int, float] = {}
        shutil.rmtree(scratch, ignore_errors=True)

    # ---- job state in etcd
    def submit(self, database: str, meta: CollectionMeta, partition: str, files: list[list[str]],
               options: dict[str, str]) -> ImportJob:
        if self.s3 is None:
            raise not_supported("bulk import in cluster mode needs the cluster's object store (s3.endpoint)")
        self._prune()
        return super().submit(database, meta, partition, files, options)

    def _publish(self, job: ImportJob, progress: bool = False) -> None:
        now = time.monotonic()
        if progress and now - self._progress_put.get(job.job_id, 0.0) < PROGRESS_PERIOD_S:
            return
        self._progress_put[job.job_id] = now
        if job.state in (COMPLETED, FAILED):
            self._progress_put.pop(job.job_id, None)
        try:
            self.env.put_json(job_key(job.job_id), {**dataclasses.asdict(job), "epoch": self.epoch})
        except Exception as e:  # etcd away: the next change writes the state again
            log.warning("import job %d: writing its state to etcd: %s", job.job_id, e)

    def _prune(self) -> None:
        jobs = list_jobs(self.env)
        done = sorted((j for j in jobs if j.state in (COMPLETED, FAILED)), key=lambda j: j.job_id)
        for job in done[: max(0, len(jobs) - MAX_JOBS_KEPT + 1)]:
            self.env.store.delete(job_key(job.job_id))

    def adopt(self, committed: set[int]) -> None:
        """Settle the jobs an earlier owner left running: `committed` holds the jobs whose
        IMPORT record this owner applied (its segments may also have come with the checkpoint)."""
        in_segments = {s.path.rsplit("/", 1)[-1].split("-", 1)[0][1:] for d in self.engine.datas.values()
                       for s in d.segments if s.path and s.path.rsplit("/", 1)[-1].startswith("i")}
        for job in list_jobs(self.env):
            if job.state not in (PENDING, IMPORTING):
                continue
            if job.job_id in committed or str(job.job_id) in in_segments:
                job.state, job.progress, job.imported_rows = COMPLETED, 100, job.total_rows or job.imported_rows
            else:
                job.state, job.imported_rows = FAILED, 0
                job.reason = "the streaming node running the import stopped before it committed; run it again"
            job.finished = time.time()
            self._publish(job)

    # ---- files
    def _local_files(self, job: ImportJob) -> list[list[str]]:
        out = []
        for gi, group in enumerate(job.files):
            local = []
            for path in group:
                if os.path.isabs(path):
                    local.append(path)
                    continue
                target = self.scratch / str(job.job_id) / str(gi) / os.path.basename(path)
                try:
                    assert self.s3 is not None
                    self.s3.get_file(path, target)
                except ObjectNotFound:
                    raise ImportFileError(f"file {os.path.basename(path)}: no such object {path!r} in bucket "
                                          f"{self.env.cfg.s3.bucket}") from None
                local.append(str(target))
            out.append(local)
        return out

    def _done_with_files(self, job: ImportJob) -> None:
        shutil.rmtree(self.scratch / str(job.job_id), ignore_errors=True)

    # ---- staging and commit
    def _stage(self, meta: CollectionMeta, data: CollectionData) -> _Stage:
        job_id = self._current.job_id if self._current is not None else 0
        stage = _Stage(self.root, meta, self.catalog, data.seal_rows, path_of=import_segment_dir(job_id))
        stage.uploaded = []  # type: ignore[attr-defined]
        return stage

    _current: ImportJob | None = None

    def _run(self, job: ImportJob) -> None:
        self._current = job
        try:
            super()._run(job)
        finally:
            self._current = None

    def _discard(self, stage: _Stage) -> None:
        stage.discard()
        if self.s3 is None or getattr(self.engine.wal, "fenced", False):
            return  # a WAL append of unknown outcome: the record may name these objects
        for key in getattr(stage, "uploaded", []):
            try:
                self.s3.delete(key)
            except Exception as e:
                log.warning("removing staged import object %s: %s", key, e)

    def _commit(self, job: ImportJob, meta: CollectionMeta, data: CollectionData, stage: _Stage) -> None:
        assert self.s3 is not None
        uploaded: list[str] = stage.uploaded  # type: ignore[attr-defined]
        entries = []
        for seg_id, pid, rel, rows in stage.written:  # the long part, outside the write lock
            key = f"{s3_root(self.env)}segments/{meta.collection_id}/{seg_id}.e{self.epoch}"
            files = sorted(p.name for p in (self.root / rel).iterdir() if p.is_file())
            for name in files:
                uploaded.append(f"{key}/{name}")
                self.s3.put_file(f"{key}/{name}", self.root / rel / name)
            entries.append({"id": seg_id, "partition": pid, "rows": rows, "path": rel, "key": key,
                            "files": files, "deletes": ""})
        with data.write_lock:
            check_still_there(self.catalog, job, meta, stage)
            ts = self.tso.allocate()
            for entry in entries:
                ts_file = stamp_ts(self.root, entry["path"], entry["rows"], ts)
                self.s3.put_file(f"{entry['key']}/{ts_file.name}", ts_file)
            segments = [sealed_segment(self.root, meta, e["id"], e["partition"], e["path"]) for e in entries]
            body = json.dumps({"job": job.job_id, "segments": entries}).encode()
            record = Record(Kind.IMPORT, meta.collection_id, 0, ts, {IMPORT_COLUMN: Column(np.frombuffer(body, np.uint8))})
            try:
                lsn = self.engine.wal.append(wal_records.encode(record))
            except WalUnavailable as e:
                if getattr(self.engine.wal, "fenced", False):
                    self._on_wal_error(e.message)
                raise ShoalError(e.code, f"the import could not be committed: {e.message}") from None
            data.last_lsn = max(data.last_lsn, lsn)
            attach(meta, data, segments)
            self.tso.observe(ts)
        job.commit_lsn = lsn
        self._on_committed(entries)
        self._completed(job, segments)


def apply_import(engine: Any, meta: CollectionMeta, data: CollectionData, record: Record, lsn: int,
                 s3: S3ObjectStore, cache_dir: Path) -> tuple[int, list[dict[str, Any]]]:
    """Apply an IMPORT record on a follower: fetch the segments it names (through the disk
    cache) and attach them all at once. A segment already there (it came with the checkpoint
    this node started from) is skipped. Returns the job id and the entries attached, each with
    the local segment id."""
    info = json.loads(bytes(np.asarray(record.batch[IMPORT_COLUMN].values)))
    have = {s.path for s in data.segments}
    partitions = {p.partition_id for p in meta.partitions}
    todo = [dict(e) for e in info["segments"] if e["path"] not in have and int(e["partition"]) in partitions]
    segments = []
    for entry in todo:
        shutil.rmtree(engine.root / entry["path"], ignore_errors=True)
        _fetch_segment(s3, cache_dir, entry, engine.root)
        entry["id"] = engine.catalog.new_id()  # ids are per node; the path names the segment
        segments.append(sealed_segment(engine.root, meta, entry["id"], int(entry["partition"]), entry["path"]))
    with data.write_lock:
        if not data.dropped:
            attach(meta, data, segments)
            data.last_lsn = max(data.last_lsn, lsn)
    engine.indexer.kick()
    return int(info["job"]), todo
