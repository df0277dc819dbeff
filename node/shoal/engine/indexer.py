"""Background index builds: one vector index per (persisted sealed segment, indexed field).

A build never blocks inserts or searches: it reads the segment's memory-mapped vectors,
builds outside every lock, saves the index beside the segment and only then attaches it,
so searches switch from exact scoring to the index atomically. Segments smaller than
`min_index_rows` stay exact (an index would not pay for itself) and count as indexed.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from shoal.engine.catalog import CollectionMeta, IndexMeta
from shoal.engine.collection_data import CollectionData
from shoal.engine.persistence import index_dir
from shoal.engine.segments import Segment
from shoal.expr import typed as t
from shoal.expr.binder import bind_json_path
from shoal.index import build_index, load_index, threads_for_builds, validate_index_params
from shoal.index.array import array_index
from shoal.index.json_path import json_path_index
from shoal.index.scalar import build_scalar_index
from shoal.schema import CollectionSchema, Column, DataType

log = logging.getLogger(__name__)
MIN_INDEX_ROWS = 1024  # a smaller segment is searched exactly


def scalar_key(schema: CollectionSchema, index: IndexMeta) -> str | t.JsonPath | None:
    """Where a scalar index's structures live in `Segment.scalar_indexes`: the field's name, or
    the bound path of a JSON-path index (the key the evaluator looks up); None: not a scalar index."""
    if "json_path" in index.params:
        return bind_json_path(index.params["json_path"], schema)
    field = schema.field(index.field_name)
    if field is None or field.dtype.is_vector:
        return None
    return field.name


def _column_of(key: str | t.JsonPath) -> str:
    return key.field if isinstance(key, t.JsonPath) else key


@dataclass
class IndexProgress:
    indexed_rows: int
    total_rows: int
    pending_rows: int
    failed: str = ""


class Indexer:
    def __init__(
        self,
        root,
        lookup: Callable[[], list[tuple[CollectionMeta, CollectionData]]],
        min_index_rows: int = MIN_INDEX_ROWS,
        build_threads: int = 0,
    ) -> None:
        self.root = root
        self._lookup = lookup
        self.min_index_rows = min_index_rows
        self._build_threads = build_threads  # 0: as many as batched searches use
        self.threads_in_use = 0  # what faiss reports in the builder thread, once it runs
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._failures: dict[tuple[int, str], str] = {}
        self._building: tuple[int, int, str] | None = None
        self._thread = threading.Thread(target=self._run, name="shoal-indexer", daemon=True)
        self._thread.start()

    def kick(self) -> None:
        self._wake.set()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)

    def needs_build(self, seg: Segment, index: IndexMeta) -> bool:
        return (
            seg.sealed
            and bool(seg.path)
            and seg.num_rows >= self.min_index_rows
            and index.field_name not in seg.indexes
        )

    def progress(self, meta: CollectionMeta, data: CollectionData, index: IndexMeta) -> IndexProgress:
        field = meta.schema.field(index.field_name)
        vector = field is not None and field.dtype.is_vector
        key = None if vector else scalar_key(meta.schema, index)
        nothing_built = not vector and key is None
        total = indexed = pending = 0
        for seg in data.snapshot():
            if not seg.sealed:
                continue  # growing rows are searched exactly and, as in Milvus, not counted
            total += seg.num_rows
            if vector:  # segments under min_index_rows are searched exactly, never indexed
                nothing_to_build = bool(seg.path) and seg.num_rows < self.min_index_rows
                done = index.field_name in seg.indexes
            else:  # sealed before the field was added: no column, every row null
                nothing_to_build = key is not None and _column_of(key) not in seg.columns
                done = key in seg.scalar_indexes
            if done or nothing_to_build or nothing_built:
                indexed += seg.num_rows
            else:
                pending += seg.num_rows
        failed = self._failures.get((meta.collection_id, index.index_name), "")
        return IndexProgress(indexed, total, pending, failed)

    def forget(self, meta: CollectionMeta, data: CollectionData, index: IndexMeta) -> None:
        """Drop an index's built structures (index dropped or rebuilt with new parameters)."""
        field_name = index.field_name
        key = scalar_key(meta.schema, index)
        for seg in data.snapshot():
            seg.indexes.pop(field_name, None)
            # a path index leaves the field's other indexes (another path, the whole field) alone
            seg.scalar_indexes.pop(field_name if key is None else key, None)
            if seg.path:
                shutil.rmtree(index_dir(self.root, seg.path, field_name), ignore_errors=True)
        for failure in [k for k in self._failures if k[0] == meta.collection_id]:
            del self._failures[failure]

    def build_now(self, meta: CollectionMeta, seg: Segment) -> dict[str, IndexMeta]:
        """Build and attach, in the caller's thread, every index `seg` needs (compaction builds
        a segment's indexes before the segment becomes visible). Returns field -> index built."""
        built: dict[str, IndexMeta] = {}
        threads_for_builds(self._build_threads)
        for index in list(meta.indexes):
            field = meta.schema.field(index.field_name)
            if field is None or not field.dtype.is_vector or not self.needs_build(seg, index):
                continue
            try:
                spec = validate_index_params(field, index.params)
                where = index_dir(self.root, seg.path, field.name)
                shutil.rmtree(where, ignore_errors=True)
                where.mkdir(parents=True, exist_ok=True)
                build_index(spec, seg.columns[field.name].values[: seg.num_rows]).save(where)
                seg.indexes[field.name] = load_index(where, mmap=True)
                built[field.name] = index
            except Exception:  # the background builder retries, and records a failure
                log.exception("building %s on compacted segment %s failed", index.index_name, seg.segment_id)
        return built

    def keep_current(self, meta: CollectionMeta, seg: Segment, built: dict[str, IndexMeta]) -> None:
        """Detach indexes of `seg` whose definition was dropped or replaced since they were built."""
        for field_name, index in built.items():
            if meta.index_for_field(field_name) is not index:
                seg.indexes.pop(field_name, None)
                shutil.rmtree(index_dir(self.root, seg.path, field_name), ignore_errors=True)

    def _run(self) -> None:
        self.threads_in_use = threads_for_builds(self._build_threads)
        while not self._stop.is_set():
            self._wake.wait(timeout=2.0)
            self._wake.clear()
            try:
                while not self._stop.is_set() and self._build_one():
                    pass
            except Exception:
                log.exception("index builder failed")

    @staticmethod
    def _build_scalar(data: CollectionData, key: str | t.JsonPath, params: dict[str, str], array: bool) -> bool:
        """Build one missing scalar index (kept in memory; rebuilt after a restart)."""
        name = _column_of(key)
        for seg in data.snapshot():
            if seg.sealed and seg.path and key not in seg.scalar_indexes and name in seg.columns:
                n, col = seg.num_rows, seg.columns[name]
                rows = Column(col.values[:n], None if col.valid is None else col.valid[:n])
                if isinstance(key, t.JsonPath):
                    seg.scalar_indexes[key] = json_path_index(rows, key.keys, params)
                elif array:
                    seg.scalar_indexes[key] = array_index(rows)
                else:
                    seg.scalar_indexes[key] = build_scalar_index(rows, params)
                return True
        return False

    def _build_one(self) -> bool:
        for meta, data in self._lookup():
            for index in list(meta.indexes):
                if (meta.collection_id, index.index_name) in self._failures:
                    continue
                field = meta.schema.field(index.field_name)
                if field is None or not field.dtype.is_vector:
                    key = scalar_key(meta.schema, index)
                    array = field is not None and field.dtype is DataType.ARRAY
                    if key is not None and self._build_scalar(data, key, index.params, array):
                        return True
                    continue
                for seg in data.snapshot():
                    if not self.needs_build(seg, index):
                        continue
                    try:
                        spec = validate_index_params(field, index.params)
                        vectors = seg.columns[field.name].values[: seg.num_rows]
                        started = time.monotonic()
                        built = build_index(spec, vectors)
                        where = index_dir(self.root, seg.path, field.name)
                        shutil.rmtree(where, ignore_errors=True)
                        where.mkdir(parents=True, exist_ok=True)
                        built.save(where)
                        # Serve from the saved files, memory-mapped: the build's private copy is freed.
                        built = load_index(where, mmap=True)
                    except Exception as exc:
                        log.exception("building %s on segment %s failed", index.index_name, seg.segment_id)
                        self._failures[(meta.collection_id, index.index_name)] = str(exc)
                        return True
                    log.info(
                        "index %s (%s) of %s.%s built as %s over segment %s (%d rows) in %.2fs",
                        index.index_name, spec.index_type, meta.name, field.name, spec.built_as,
                        seg.segment_id, seg.num_rows, time.monotonic() - started,
                    )
                    live = any(s is seg for s in data.segments)
                    if meta.index_for_field(field.name) is index and live:
                        seg.indexes[field.name] = built
                    else:  # index dropped (maybe re-created), segment compacted or collection dropped
                        shutil.rmtree(where, ignore_errors=True)
                        dropped = all(m.collection_id != meta.collection_id for m, _ in self._lookup())
                        for parent in (where.parent, where.parent.parent) if dropped else (where.parent,):
                            try:
                                parent.rmdir()  # only when nothing else is left in it
                            except OSError:
                                break
                    return True
        return False
