"""Backup snapshots and restores on the standalone engine (the server side of `shoal backup`).

A snapshot is taken at one TSO timestamp T while writes go on: T is allocated, then every
selected collection is flushed (writes take their timestamp and apply under the collection's
write lock, so every write at or below T is applied before the flush seals it). The sealed
segment files, their built index files and a delete sidecar cut at T (deletes after T undone)
are hard-linked into a staging folder under content addresses (SHA-256), so compaction may
remove the live files meanwhile. Rows written after T may sit in the last flushed segments;
their insert timestamps say so, and a restore drops them. While T is taken and the segments
are captured no compaction may swap segments (`Compactor.gate`): one started after T could
drop rows that were deleted after T and are still visible at T.

A restore receives the blobs into another staging folder, links them into new segment
directories under new ids, cuts rows above T out of the segments that have any, and adds
each collection to the catalog in one commit.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from shoal.engine.catalog import (
    DEFAULT_DB,
    CollectionMeta,
    IndexMeta,
    PartitionMeta,
    SegmentMeta,
    check_name,
)
from shoal.engine.persistence import deletes_path, index_dir, segment_dir
from shoal.engine.segments import NOT_DELETED, TS_COLUMN
from shoal.errors import Code, ShoalError, invalid
from shoal.index.base import META_FILE
from shoal.schema import CollectionSchema
from shoal.storage.segment_files import read_array, read_segment, write_array_atomic, write_segment

if TYPE_CHECKING:
    from shoal.engine.engine import Engine

SNAPSHOTS = "backup-staging"
RESTORES = "restore-staging"
_CHUNK = 1 << 20
_SHA = set("0123456789abcdef")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def check_sha(sha: str) -> str:
    if len(sha) != 64 or not set(sha) <= _SHA:
        raise invalid(f"bad content address {sha!r}")
    return sha


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _files_below(directory: Path) -> list[str]:
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())


class BackupService:
    """Snapshots to read out, and restores to fill in, each in its own staging folder."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.root = engine.root
        self._lock = threading.Lock()
        # A sealed segment's files never change: their checksums are computed once.
        self._hashes: dict[tuple[int, int, int, int], str] = {}
        for leftover in (SNAPSHOTS, RESTORES):  # a crash mid-backup leaves only these
            shutil.rmtree(self.root / leftover, ignore_errors=True)

    # ---- snapshots
    def snapshot(self, database: str, names: list[str]) -> dict[str, Any]:
        """Take a snapshot of `names` in `database` (every collection there when empty, every
        collection of every database when `database` is "*")."""
        engine = self.engine
        metas = self._select(database, names)
        snap_id = uuid.uuid4().hex[:16]
        stage = self.root / SNAPSHOTS / snap_id
        stage.mkdir(parents=True)
        files: dict[str, int] = {}
        out: list[dict[str, Any]] = []
        try:
            with engine.compactor.gate:
                ts = engine.tso.allocate()
                for meta in metas:
                    data = engine.datas[meta.collection_id]
                    engine.persistence.flush(meta, data)
                    with data.write_lock:
                        captured = [(s, np.array(s.deleted_ts[: s.num_rows])) for s in data.segments if s.path]
                        indexes = {s.segment_id: self._index_files(s.path, meta) for s, _ in captured}
                        links = [(s, d, self._link_segment(stage, s.path, indexes[s.segment_id])) for s, d in captured]
                    out.append(self._describe(stage, meta, ts, links, files))
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        return {"id": snap_id, "ts": ts, "collections": out, "files": files}

    def _select(self, database: str, names: list[str]) -> list[CollectionMeta]:
        catalog = self.engine.catalog
        if database == "*":
            return sorted(catalog.collections.values(), key=lambda m: m.collection_id)
        database = database or DEFAULT_DB
        if not names:
            return catalog.list_collections(database)
        metas = []
        for name in names:
            meta = catalog.require(database, name)
            if meta not in metas:
                metas.append(meta)
        return metas

    def _index_files(self, rel: str, meta: CollectionMeta) -> dict[str, list[str]]:
        found = {}
        for index in meta.indexes:
            where = index_dir(self.root, rel, index.field_name)
            if (where / META_FILE).is_file():  # written last: the build is complete
                found[index.field_name] = _files_below(where)
        return found

    def _link_segment(self, stage: Path, rel: str, indexes: dict[str, list[str]]) -> dict[str, Path]:
        """Hard-link a segment's files into the staging folder (under the write lock: a live
        segment's files exist). Returns name-in-backup -> staged path."""
        links: dict[str, Path] = {}
        sources = [(f"segment/{n}", self.root / rel / n) for n in _files_below(self.root / rel)]
        for field_name, names in indexes.items():
            where = index_dir(self.root, rel, field_name)
            sources += [(f"index/{field_name}/{n}", where / n) for n in names]
        for name, src in sources:
            dst = stage / f"link-{uuid.uuid4().hex}"
            _link_or_copy(src, dst)
            links[name] = dst
        return links

    def _content_address(self, stage: Path, path: Path, files: dict[str, int]) -> str:
        st = path.stat()
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)  # hard links share the inode
        with self._lock:
            sha = self._hashes.get(key)
        if sha is None:
            sha = file_sha256(path)
            with self._lock:
                self._hashes[key] = sha
        target = stage / sha
        if target.exists():
            path.unlink()
        else:
            os.rename(path, target)
        files[sha] = st.st_size
        return sha

    def _describe(
        self, stage: Path, meta: CollectionMeta, ts: int, links: list[Any], files: dict[str, int]
    ) -> dict[str, Any]:
        segments = []
        rows = 0
        for seg, deleted, linked in links:
            n = seg.num_rows
            deleted = np.where(deleted > ts, NOT_DELETED, deleted)
            rows += int(((seg.ts[:n] <= ts) & (deleted == NOT_DELETED)).sum())
            side = stage / f"deletes-{uuid.uuid4().hex}"
            with open(side, "wb") as f:
                np.save(f, deleted.astype(np.int64), allow_pickle=False)
            entry: dict[str, Any] = {
                "segment_id": seg.segment_id,
                "partition_id": seg.partition_id,
                "num_rows": n,
                "max_ts": int(seg.ts[:n].max()) if n else 0,
                "deletes": self._content_address(stage, side, files),
                "files": {},
                "indexes": {},
            }
            for name, path in linked.items():
                sha = self._content_address(stage, path, files)
                if name.startswith("segment/"):
                    entry["files"][name.removeprefix("segment/")] = sha
                else:
                    _, field_name, rest = name.split("/", 2)
                    entry["indexes"].setdefault(field_name, {})[rest] = sha
            segments.append(entry)
        return {
            "database": meta.database,
            "name": meta.name,
            "collection_id": meta.collection_id,
            "schema": meta.schema.to_dict(),
            "created_ts": meta.created_ts,
            "num_shards": meta.num_shards,
            "num_partitions": meta.num_partitions,
            "consistency_level": meta.consistency_level,
            "properties": dict(meta.properties),
            "partitions": [{"name": p.name, "partition_id": p.partition_id} for p in meta.partitions],
            "indexes": [{"index_name": i.index_name, "field_name": i.field_name, "params": dict(i.params)} for i in meta.indexes],
            "aliases": self.engine.catalog.aliases_of(meta),
            "loaded": bool(meta.loaded or meta.loaded_partitions),
            "rows": rows,
            "segments": segments,
        }

    def snapshot_file(self, snap_id: str, sha: str) -> Path:
        path = self.root / SNAPSHOTS / _check_id(snap_id) / check_sha(sha)
        if not path.is_file():
            raise ShoalError(Code.UNEXPECTED, f"snapshot {snap_id} has no file {sha}")
        return path

    def release(self, snap_id: str) -> None:
        shutil.rmtree(self.root / SNAPSHOTS / _check_id(snap_id), ignore_errors=True)

    # ---- restores
    def restore_begin(self, plan: dict[str, Any]) -> str:
        """Check a restore's targets before any byte moves; returns the restore's staging id."""
        self._targets(plan)
        rid = uuid.uuid4().hex[:16]
        (self.root / RESTORES / rid).mkdir(parents=True)
        return rid

    def restore_has(self, rid: str, sha: str) -> bool:
        return (self.root / RESTORES / _check_id(rid) / check_sha(sha)).is_file()

    def restore_put(self, rid: str, sha: str, body: BinaryIO, size: int) -> None:
        folder = self.root / RESTORES / _check_id(rid)
        if not folder.is_dir():
            raise ShoalError(Code.UNEXPECTED, f"no restore {rid} in progress")
        tmp = folder / f"part-{uuid.uuid4().hex}"
        h = hashlib.sha256()
        left = size
        try:
            with open(tmp, "wb") as f:
                while left > 0:
                    chunk = body.read(min(_CHUNK, left))
                    if not chunk:
                        raise invalid(f"file {sha} ended after {size - left} of {size} bytes")
                    h.update(chunk)
                    f.write(chunk)
                    left -= len(chunk)
            if h.hexdigest() != check_sha(sha):
                raise invalid(f"file {sha} arrived with checksum {h.hexdigest()}: the backup is damaged")
            os.rename(tmp, folder / sha)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def restore_abort(self, rid: str) -> None:
        shutil.rmtree(self.root / RESTORES / _check_id(rid), ignore_errors=True)

    def _targets(self, plan: dict[str, Any]) -> list[tuple[dict[str, Any], str, str]]:
        """(collection entry, target database, target name) per restored collection; refuses
        existing names unless `drop_existing`."""
        catalog = self.engine.catalog
        renames: dict[str, str] = plan.get("renames") or {}
        out = []
        seen = set()
        for entry in plan["collections"]:
            database = plan.get("database") or entry["database"]
            target = renames.get(f"{entry['database']}.{entry['name']}") or renames.get(entry["name"]) or entry["name"]
            if "." in target:
                database, target = target.split(".", 1)
            check_name("collection", target)
            if (database, target) in seen:
                raise invalid(f"two collections of the backup would be restored as {database}.{target}")
            seen.add((database, target))
            if catalog.find(database, target) is not None and not plan.get("drop_existing"):
                raise invalid(
                    f"collection {target} already exists in database {database}: restore under another name "
                    "(--rename OLD:NEW) or replace it (--drop-existing)",
                )
            out.append((entry, database, target))
        return out

    def restore_commit(self, rid: str, plan: dict[str, Any]) -> list[dict[str, Any]]:
        folder = self.root / RESTORES / _check_id(rid)
        if not folder.is_dir():
            raise ShoalError(Code.UNEXPECTED, f"no restore {rid} in progress")
        with_indexes = bool(plan.get("with_indexes", True))
        restored = []
        try:
            for entry, database, target in self._targets(plan):
                for sha in _needed(entry, with_indexes):
                    if not (folder / sha).is_file():
                        raise invalid(f"restore {rid}: file {sha} of collection {entry['name']} was not sent")
                restored.append(self._install(folder, entry, database, target, int(plan["ts"]), with_indexes, plan))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return restored

    def _install(
        self, folder: Path, entry: dict[str, Any], database: str, name: str, ts: int, with_indexes: bool,
        plan: dict[str, Any],
    ) -> dict[str, Any]:
        engine = self.engine
        catalog = engine.catalog
        if database not in catalog.databases:
            engine.create_database(database)
        if catalog.find(database, name) is not None:
            engine.drop_collection(database, name)
        schema = CollectionSchema.from_dict(entry["schema"])
        cid = catalog.new_id()
        created = engine.tso.allocate()
        pids = {p["partition_id"]: catalog.new_id() for p in entry["partitions"]}
        segments: list[SegmentMeta] = []
        rows = 0
        try:
            for seg in entry["segments"]:
                made = self._install_segment(folder, cid, seg, pids[seg["partition_id"]], ts, with_indexes)
                if made is not None:
                    segments.append(made[0])
                    rows += made[1]
            meta = CollectionMeta(
                collection_id=cid,
                database=database,
                name=name,
                schema=schema,
                created_ts=created,
                num_shards=int(entry["num_shards"]),
                num_partitions=int(entry["num_partitions"]),
                consistency_level=int(entry["consistency_level"]),
                properties=dict(entry["properties"]),
                partitions=[PartitionMeta(p["name"], pids[p["partition_id"]], created) for p in entry["partitions"]],
                loaded=bool(entry.get("loaded")),
                indexes=[IndexMeta(catalog.new_id(), i["index_name"], i["field_name"], dict(i["params"])) for i in entry["indexes"]],
                segments=segments,
            )
            data = engine._new_data(meta)
            engine.persistence.load_segments(meta, data)
            catalog.add_collection(meta)
        except BaseException:
            engine.datas.pop(cid, None)
            shutil.rmtree(self.root / "segments" / str(cid), ignore_errors=True)
            raise
        renamed = name != entry["name"] or database != entry["database"]
        aliases = []
        if not renamed and not plan.get("skip_aliases"):
            for alias in entry.get("aliases", []):
                if (database, alias) not in catalog.aliases and catalog.find(database, alias) is None:
                    catalog.create_alias(database, alias, meta)
                    aliases.append(alias)
        engine.indexer.kick()
        return {"database": database, "name": name, "from": f"{entry['database']}.{entry['name']}", "rows": rows,
                "segments": len(segments), "aliases": aliases}

    def _install_segment(
        self, folder: Path, cid: int, seg: dict[str, Any], pid: int, ts: int, with_indexes: bool
    ) -> tuple[SegmentMeta, int] | None:
        sid = self.engine.catalog.new_id()
        rel = segment_dir(cid, sid)
        final = self.root / rel
        final.parent.mkdir(parents=True, exist_ok=True)
        raw = final.with_name(f"{sid}.restoring")
        raw.mkdir()
        try:
            for name, sha in seg["files"].items():
                (raw / name).parent.mkdir(parents=True, exist_ok=True)
                _link_or_copy(folder / sha, raw / name)
            deleted = read_array(folder / seg["deletes"], mmap=False)
            cut = int(seg["max_ts"]) > ts
            if cut:
                columns, extra = read_segment(raw, mmap=False)
                keep = np.flatnonzero(np.asarray(columns[TS_COLUMN].values) <= ts)
                if len(keep) == 0:
                    return None
                write_segment(final, {k: c.take(keep) for k, c in columns.items()}, {**extra, "segment_id": sid})
                deleted = deleted[keep]
            else:
                os.rename(raw, final)
        finally:
            shutil.rmtree(raw, ignore_errors=True)
        write_array_atomic(deletes_path(self.root, rel), np.asarray(deleted, dtype=np.int64))
        if with_indexes and not cut:  # an index of a cut segment names rows that are gone
            for field_name, names in seg["indexes"].items():
                where = index_dir(self.root, rel, field_name)
                for name, sha in names.items():
                    (where / name).parent.mkdir(parents=True, exist_ok=True)
                    _link_or_copy(folder / sha, where / name)
        live = int((deleted == NOT_DELETED).sum())
        return SegmentMeta(sid, pid, len(deleted), rel), live


def _needed(entry: dict[str, Any], with_indexes: bool) -> set[str]:
    shas = set()
    for seg in entry["segments"]:
        shas.update(seg["files"].values())
        shas.add(seg["deletes"])
        if with_indexes:
            for names in seg["indexes"].values():
                shas.update(names.values())
    return shas


def _check_id(value: str) -> str:
    if not value or len(value) > 64 or not all(c.isalnum() for c in value):
        raise invalid(f"bad snapshot or restore id {value!r}")
    return value

