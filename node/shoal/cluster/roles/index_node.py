"""The index role: builds the vector indexes of the sealed segments in S3 and writes them back.

It follows the WAL channel's checkpoint and the catalog's index definitions (both in etcd).
For every (checkpoint segment, vector index) without a record for the current parameters it
reads the segment from S3 (through its local cache), builds the index with the standalone
builder (`shoal.index`: GPU when present, else CPU), uploads the index files under
`<segment key>.index/<field>.<parameter hash>/` (never overwritten) and records them in etcd at
`indexes/<collection>/<segment>/<field>` with the parameters it built with. A starting query
node loads a recorded index whose parameters match the current definition instead of building
it (`checkpoint.load_checkpoint`); a running query node still builds the indexes of the
segments it sealed itself. Without S3 configured the role idles.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any

from shoal.cluster.roles.catalog_sync import FollowerStore
from shoal.cluster.roles.checkpoint import (
    _cached,
    checkpointed_collections,
    index_record_key,
    open_segment_store,
    read_index_records,
)
from shoal.cluster.roles.common import ClusterEnv
from shoal.engine.catalog import Catalog, CollectionMeta, IndexMeta
from shoal.engine.indexer import MIN_INDEX_ROWS
from shoal.storage.segment_files import read_segment

log = logging.getLogger(__name__)


class IndexNode:
    def __init__(self, env: ClusterEnv, data_dir: Path) -> None:
        self.env = env
        self.data_dir = data_dir
        self.cache_dir = data_dir / "segment-cache"
        self.s3 = open_segment_store(env)
        self.store = FollowerStore(env.meta_store())
        self.catalog = Catalog(self.store)
        self.version = self.store.version()
        self.built = 0
        self._failed: set[tuple[str, str]] = set()  # (record key, parameters) that failed to build
        self._stop = threading.Event()

    def handlers(self) -> dict[str, Any]:
        return {"built": lambda: self.built}

    def start(self) -> None:
        if self.s3 is None:
            log.info("no S3 endpoint: the index role idles (query nodes build every index)")
            return
        threading.Thread(target=self._loop, name="shoal-index-node", daemon=True).start()

    def _loop(self) -> None:
        from shoal.index import threads_for_builds

        threads_for_builds(0)
        while not self._stop.wait(1.0):
            try:
                self.build_pending()
            except Exception as e:
                log.warning("index role: %s", e)

    def build_pending(self) -> int:
        """Build every missing index of the current checkpoint; returns how many were built."""
        ckpt = {"collections": checkpointed_collections(self.env)}  # every channel's
        if not ckpt["collections"]:
            return 0
        version = self.store.version()
        if version != self.version:
            self.catalog.reload()
            self.version = version
        records = read_index_records(self.env)
        count = 0
        for cid, col in ckpt.get("collections", {}).items():
            meta = self.catalog.collections.get(int(cid))
            if meta is None:
                continue
            for index in list(meta.indexes):
                field = meta.schema.field(index.field_name)
                if field is None or not field.dtype.is_vector:
                    continue  # scalar indexes are in memory on the query nodes
                for seg in col["segments"]:
                    if self._stop.is_set():
                        return count
                    key = index_record_key(cid, seg, field.name)
                    record = records.get(key)
                    params = json.dumps(index.params, sort_keys=True)
                    if int(seg["rows"]) < MIN_INDEX_ROWS or (key, params) in self._failed:
                        continue
                    if record is not None and record["params"] == index.params:
                        continue
                    try:
                        self._build(meta, index, seg, key, params)
                        count += 1
                    except Exception:
                        log.exception("building %s on segment %s failed", index.index_name, seg["key"])
                        self._failed.add((key, params))
        return count

    def _build(self, meta: CollectionMeta, index: IndexMeta, seg: dict[str, Any], key: str, params: str) -> None:
        from shoal.index import build_index, validate_index_params

        assert self.s3 is not None
        field = meta.schema.field(index.field_name)
        assert field is not None
        for name in seg["files"]:
            _cached(self.s3, self.cache_dir, f"{seg['key']}/{name}")
        columns, _ = read_segment(self.cache_dir / seg["key"], mmap=True)
        if field.name not in columns:
            return  # written before the field was added: every row is null, nothing to index
        spec = validate_index_params(field, index.params)
        built = build_index(spec, columns[field.name].values[: int(seg["rows"])])
        out = self.data_dir / "build" / uuid.uuid4().hex
        try:
            built.save(out)
            files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
            digest = hashlib.blake2b(params.encode(), digest_size=8).hexdigest()
            prefix = f"{seg['key']}.index/{field.name}.{digest}"
            for name in files:
                self.s3.put_file(f"{prefix}/{name}", out / name)
        finally:
            shutil.rmtree(out, ignore_errors=True)
        record = {"params": index.params, "index_name": index.index_name, "key": prefix, "files": files}
        self.env.store.put(key, json.dumps(record).encode())  # visible once the files are all in S3
        self.built += 1
        log.info("index %s of %s.%s built as %s over S3 segment %s (%d rows)", index.index_name, meta.name,
                 field.name, spec.built_as, seg["key"], int(seg["rows"]))

    def close(self) -> None:
        self._stop.set()
        self.store.close()
