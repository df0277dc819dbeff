"""Sealed segments in S3 and the WAL channel's checkpoint in etcd.

The channel's owner (streaming node) persists segments with the standalone code
(`engine.persistence`: the same segment format and delete logs as standalone), then
`CheckpointWriter.checkpoint` uploads every persisted segment S3 does not have yet, a delete
log per segment (content-addressed, so an object never changes once written) and commits one
etcd key, `checkpoint/<channel>`, in a transaction that holds only while the owner key is the
one this owner took over with (a stale owner cannot commit). A segment is visible to other
nodes only once the checkpoint naming it is committed.

The checkpoint (JSON):
    lsn          the channel's resume point: every record at or below it is in the segments
                 named here (per collection, records up to `checkpoint_lsn`) — a starting node
                 reads Kafka from offset `lsn`
    collections  {collection_id: {checkpoint_lsn, segments: [{id, partition, rows, path, key,
                 files, deletes, from?}]}}; `path` is the engine's relative segment directory, `key`
                 the S3 prefix of its files, `deletes` the S3 key of its delete log, `from` the
                 segments a compaction merged into it
    max_ts, next_id, epoch   timestamps and ids a new owner must stay above; the writer's epoch

`load_checkpoint` puts a checkpoint into a fresh `Follower`: the files go to a local disk cache
(`<data>/segment-cache`, kept across restarts) and are hard-linked into the engine's directory,
where `Persistence.load_segments` memory-maps them as standalone does.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from shoal.cluster.roles.common import ClusterEnv, owner_key
from shoal.engine.catalog import SegmentMeta
from shoal.engine.engine import Engine
from shoal.engine.persistence import deletes_path, index_dir
from shoal.errors import Code, ShoalError
from shoal.storage.object_store import S3ObjectStore
from shoal.storage.segment_files import write_array_atomic

log = logging.getLogger(__name__)

Keep = Callable[[int, dict[str, Any]], bool]  # (collection id, checkpoint segment entry) -> load it?


CHECKPOINT_PREFIX = "checkpoint/"


def checkpoint_key(channel: int) -> str:
    return f"{CHECKPOINT_PREFIX}{channel}"


def open_segment_store(env: ClusterEnv) -> S3ObjectStore | None:
    """The cluster's S3 bucket, or None when no endpoint is configured (segments then live only
    in Kafka and on the nodes, and a starting node replays the whole channel)."""
    s3 = env.cfg.s3
    if not s3.endpoint:
        return None
    endpoint = s3.endpoint if "://" in s3.endpoint else ("https://" if s3.secure else "http://") + s3.endpoint
    return S3ObjectStore(endpoint, s3.bucket, s3.access_key, s3.secret_key, s3.region or "us-east-1")


def s3_root(env: ClusterEnv) -> str:
    """Key prefix of this cluster's segments in the bucket."""
    base = env.cfg.s3.prefix.strip("/")
    return (base + "/" if base else "") + env.prefix


def read_checkpoint(env: ClusterEnv, channel: int) -> dict[str, Any] | None:
    return env.get_json(checkpoint_key(channel))


def checkpointed_collections(env: ClusterEnv) -> dict[str, Any]:
    """Every channel's checkpointed collections, by collection id (text): each collection is on
    one channel, so the union is what the index role and share mode read."""
    out: dict[str, Any] = {}
    for raw in env.store.list_prefix(CHECKPOINT_PREFIX).values():
        out.update(json.loads(raw).get("collections", {}))
    return out


class CheckpointWriter:
    """The owner's side: upload what the checkpoint names, then commit it (one at a time)."""

    def __init__(self, env: ClusterEnv, channel: int, s3: S3ObjectStore, engine: Engine, owner_raw: bytes,
                 epoch: int, acked: Any, loaded: dict[str, Any] | None) -> None:
        self.env = env
        self.channel = channel
        self.s3 = s3
        self.engine = engine
        self.owner_raw = owner_raw
        self.epoch = epoch
        self.acked = acked  # () -> LSN after the newest acknowledged write
        self._lock = threading.Lock()
        # segments already in S3 (by engine path): from the checkpoint this owner started from
        self.uploaded: dict[str, dict[str, Any]] = {}
        for col in (loaded or {}).get("collections", {}).values():
            for seg in col["segments"]:
                self.uploaded[seg["path"]] = dict(seg)
        self.last_lsn = int(loaded["lsn"]) if loaded else 0
        self.checkpoints = 0
        self.shared: dict[int, set[int]] = {}  # collection id -> segment ids the committed checkpoint names
        self._note_shared(loaded or {})

    def _note_shared(self, ckpt: dict[str, Any]) -> None:
        self.shared = {int(cid): {int(e["id"]) for e in col["segments"]}
                       for cid, col in ckpt.get("collections", {}).items()}

    def is_shared(self, collection_id: int, seg: Any) -> bool:
        """Whether the committed checkpoint names the segment (share mode compacts only those)."""
        return seg.segment_id in self.shared.get(collection_id, ())

    def checkpoint(self, seal_all: bool) -> dict[str, Any]:
        """Persist (every collection's growing data too when `seal_all`), upload, commit."""
        with self._lock:
            engine = self.engine
            if seal_all:
                for meta, data in engine._all_collections():
                    engine.persistence.flush(meta, data)
            applied = self.acked()  # read before the snapshots: see `resume point` below
            collections: dict[str, Any] = {}
            resume = applied
            # No compaction swaps segments (and then deletes their files) between a snapshot and
            # its upload: a checkpoint names exactly the files it uploaded.
            with engine.compactor.gate:
                for meta, data in engine._all_collections():
                    segments, deleted, cp_lsn, first_unpersisted = engine.persistence.persisted_state(meta, data)
                    if first_unpersisted:
                        resume = min(resume, first_unpersisted - 1)
                    if segments or cp_lsn:  # with no segment left, its checkpoint LSN still skips records
                        entries = [self._upload(meta.collection_id, s, d)
                                   for s, d in zip(segments, deleted, strict=True)]
                        collections[str(meta.collection_id)] = {"checkpoint_lsn": cp_lsn, "segments": entries}
            # Resume point: every record at or below `applied` is applied; a collection's records
            # after its checkpoint LSN are unpersisted, so they start at `first_unpersisted` or later.
            ckpt = {
                "lsn": max(resume, 0), "epoch": self.epoch, "max_ts": engine.tso.last,
                "next_id": engine.catalog.new_id(), "collections": collections,
            }
            self._commit(ckpt)
            self._note_shared(ckpt)
            self.last_lsn = ckpt["lsn"]
            self.checkpoints += 1
            log.info("checkpoint %d: WAL channel %d resumes at LSN %d; %d segments in S3", self.checkpoints,
                     self.channel, ckpt["lsn"], sum(len(c["segments"]) for c in collections.values()))
            return ckpt

    def _upload(self, collection_id: int, seg: Any, deleted: np.ndarray) -> dict[str, Any]:
        entry = self.uploaded.get(seg.path)
        if entry is None or entry.get("id") != seg.segment_id:
            root = self.engine.root / seg.path
            key = f"{s3_root(self.env)}segments/{collection_id}/{seg.segment_id}.e{self.epoch}"
            files = sorted(p.name for p in root.iterdir() if p.is_file())
            for name in files:
                self.s3.put_file(f"{key}/{name}", root / name)
            entry = {"id": seg.segment_id, "partition": seg.partition_id, "rows": seg.num_rows,
                     "path": seg.path, "key": key, "files": files, "deletes": ""}
            if seg.compacted_from:  # share mode: the sources it replaces (`share_coord`)
                entry["from"] = list(seg.compacted_from)
        raw = np.ascontiguousarray(deleted, dtype=np.int64)
        digest = hashlib.blake2b(raw.tobytes(), digest_size=10).hexdigest()
        deletes = f"{entry['key']}.deletes.{digest}.npy"
        if entry["deletes"] != deletes:
            tmp = self.engine.root / f"{seg.path}.upload-deletes.npy"
            write_array_atomic(tmp, raw)
            try:
                self.s3.put_file(deletes, tmp)
            finally:
                tmp.unlink(missing_ok=True)
            entry = {**entry, "deletes": deletes}
        self.uploaded[seg.path] = entry
        return entry

    def _commit(self, ckpt: dict[str, Any]) -> None:
        store = self.env.store
        owner = store._key(owner_key(self.channel))
        key = store._key(checkpoint_key(self.channel))
        value = json.dumps(ckpt, separators=(",", ":")).encode()

        async def txn(c: Any) -> bool:
            ok, _ = await c.transaction(
                compare=[c.transactions.value(owner) == self.owner_raw],
                success=[c.transactions.put(key, value)], failure=[],
            )
            return bool(ok)

        if not store._call(txn):
            raise ShoalError(Code.UNEXPECTED, f"WAL channel {self.channel} moved to another owner; checkpoint not committed")


def index_record_key(collection_id: int | str, seg: dict[str, Any], field_name: str) -> str:
    """etcd key of the vector index the index role built for one checkpoint segment's field."""
    return f"indexes/{collection_id}/{seg['key'].rsplit('/', 1)[-1]}/{field_name}"


def read_index_records(env: ClusterEnv) -> dict[str, dict[str, Any]]:
    return {k: json.loads(v) for k, v in env.store.list_prefix("indexes/").items()}


def load_checkpoint(engine: Engine, ckpt: dict[str, Any], s3: S3ObjectStore, cache_dir: Path,
                    index_records: dict[str, dict[str, Any]] | None = None, keep: Keep | None = None) -> int:
    """Load the checkpoint's segments into a fresh engine (before any record is applied), with
    the vector indexes the index role put in S3 for the current index definitions (the rest
    the engine's indexer builds); returns how many segments were loaded. `keep(collection id,
    entry)`: whether to load a segment (share mode: a starting node loads only its share)."""
    index_records = index_records or {}
    engine.tso.observe(int(ckpt.get("max_ts", 0)))
    top = int(ckpt.get("next_id", 0))
    loaded = 0
    for cid_text, col in ckpt.get("collections", {}).items():
        cid = int(cid_text)
        meta = engine.catalog.collections.get(cid)
        data = engine.datas.get(cid)
        if meta is None or data is None:
            continue  # dropped after the checkpoint
        partitions = {p.partition_id for p in meta.partitions}
        metas = []
        for seg in col["segments"]:
            top = max(top, int(seg["id"]))
            if int(seg["partition"]) not in partitions:
                continue  # its partition was dropped after the checkpoint
            if keep is not None and not keep(cid, seg):
                continue
            metas.append(fetch_segment(engine, meta, seg, s3, cache_dir, index_records))
        meta.segments = metas
        meta.checkpoint_lsn = int(col["checkpoint_lsn"])
        engine.persistence.load_segments(meta, data)
        with data.write_lock:
            data.last_lsn = max(data.last_lsn, meta.checkpoint_lsn)
        loaded += len(metas)
    engine.catalog.reserve_ids(top)
    engine.indexer.kick()
    return loaded


def fetch_segment(engine: Engine, meta: Any, seg: dict[str, Any], s3: S3ObjectStore, cache_dir: Path,
                  index_records: dict[str, dict[str, Any]]) -> SegmentMeta:
    """Put one checkpoint segment's files (and the index role's indexes for the current index
    definitions) into the engine's directory at `seg["path"]`, through the disk cache."""
    _fetch_segment(s3, cache_dir, seg, engine.root)
    for index in meta.indexes:
        record = index_records.get(index_record_key(meta.collection_id, seg, index.field_name))
        if record is not None and record["params"] == index.params:
            where = index_dir(engine.root, seg["path"], index.field_name)
            for name in record["files"]:
                (where / name).parent.mkdir(parents=True, exist_ok=True)
                _link(_cached(s3, cache_dir, f"{record['key']}/{name}"), where / name)
    return SegmentMeta(int(seg["id"]), int(seg["partition"]), int(seg["rows"]), seg["path"])


def _fetch_segment(s3: S3ObjectStore, cache_dir: Path, seg: dict[str, Any], root: Path) -> None:
    target = root / seg["path"]
    target.mkdir(parents=True)
    for name in seg["files"]:
        _link(_cached(s3, cache_dir, f"{seg['key']}/{name}"), target / name)
    if seg.get("deletes"):
        shutil.copyfile(_cached(s3, cache_dir, seg["deletes"]), deletes_path(root, seg["path"]))


def _cached(s3: S3ObjectStore, cache_dir: Path, key: str) -> Path:
    """The local copy of an S3 object (objects never change, so a cached one is current)."""
    path = cache_dir / key
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        s3.get_file(key, path)
    return path


def _link(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        with contextlib.suppress(FileNotFoundError):
            dst.unlink()
        shutil.copyfile(src, dst)


def resume(follower: Any, env: ClusterEnv, channel: int, ckpt: dict[str, Any] | None, s3: S3ObjectStore | None,
           cache_dir: Path, with_indexes: bool = True, keep: Keep | None = None) -> tuple[int, int]:
    """Load the channel's checkpoint into a fresh `Follower`: returns (the Kafka offset to read
    the channel from, segments loaded). Without S3 or a checkpoint: (0, 0), the whole channel.
    `keep`: see `load_checkpoint`."""
    if ckpt is None or s3 is None:
        return 0, 0
    follower.catch_up(0)  # a catalog at least as new as the one the checkpoint was taken under
    records = read_index_records(env) if with_indexes else {}
    loaded = load_checkpoint(follower.engine, ckpt, s3, cache_dir, records, keep)
    lsn = int(ckpt["lsn"])
    follower.mark_applied(channel, lsn)
    return lsn, loaded  # LSN = offset + 1, so the first record after it is at offset `lsn`
