"""`Engine`: the standalone wiring of catalog, write path, read path, persistence and indexing.

Implements `EngineAPI` (facade.py). This module resolves names, checks load state and
delegates; the work lives in writer.py, reader.py, persistence.py, indexer.py and
maintenance.py.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from shoal.engine.backup import BackupService
from shoal.engine.catalog import (
    DEFAULT_DB,
    DEFAULT_PARTITION,
    Catalog,
    CollectionMeta,
    IndexMeta,
    PartitionMeta,
    check_name,
)
from shoal.engine.collection_data import CollectionData
from shoal.engine.embedding_list import member_index_params
from shoal.engine.entity_ttl import TTL_FIELD, check_ttl_properties, unexpired
from shoal.engine.filter_cache import DEFAULT_CAPACITY_BYTES, FilterCache
from shoal.engine.fulltext import Bm25Stats, bm25_input, check_functions, minhash_function
from shoal.engine.importer import Importer, ImportJob
from shoal.engine.indexer import MIN_INDEX_ROWS, Indexer
from shoal.engine.maintenance import Compactor
from shoal.engine.partial_update import complete_partial
from shoal.engine.persistence import Persistence
from shoal.engine.reader import Reader
from shoal.engine.replicas import (
    STANDALONE_NODE_ID,
    ReplicaGroup,
    check_replica_change,
    check_streaming_nodes,
    replica_id,
)
from shoal.engine.requests import (
    CollectionInfo,
    CompactionState,
    ConsistencyLevel,
    DatabaseInfo,
    HybridSearchRequest,
    IndexInfo,
    LoadState,
    MutationResult,
    PartitionInfo,
    QueryRequest,
    QueryResult,
    SearchRequest,
    SearchResult,
    SegmentInfo,
)
from shoal.engine.segment_info import persistent_segments, query_segments
from shoal.engine.segments import Segment
from shoal.engine.tso import TimestampOracle
from shoal.engine.writer import Writer
from shoal.errors import Code, ShoalError, invalid
from shoal.expr import compile_filter
from shoal.expr.parser import parse_identifier
from shoal.index import validate_index_params
from shoal.index.params import check_index_properties, flatten_params
from shoal.index.scalar import json_index_name, scalar_index_params
from shoal.schema import DYNAMIC_FIELD, MAX_FIELDS, Batch, CollectionSchema, DataType, FieldSchema
from shoal.storage.meta_store import FileMetaStore, MetaStore
from shoal.storage.wal import DEFAULT_POLICY, WriteAheadLog

log = logging.getLogger(__name__)
DEFAULT_NUM_PARTITIONS = 16
TRUNCATE_WAIT_S = 60.0  # how long a truncate waits for its compaction to drop the segments


class Engine:
    """`meta_store` and `wal` default to the standalone files under `data_dir`; cluster roles pass
    the etcd catalog and the Kafka WAL (`shoal.cluster.roles`) so they run this same code."""

    def __init__(
        self,
        data_dir: Path,
        options: dict[str, Any] | None = None,
        *,
        meta_store: MetaStore | None = None,
        wal: Any = None,
    ) -> None:
        options = options or {}
        self.root = Path(data_dir)
        self.root.mkdir(parents=True, exist_ok=True)
        self.segment_max_rows = int(options.get("segment_max_rows", 1_048_576))
        self.segment_max_bytes = int(options.get("segment_max_bytes", 1 << 30))
        self.ids_from_lsn = bool(options.get("segment_ids_from_lsn", False))
        # False on a cluster node that follows the WAL: it seals only where the owner did (size
        # caps and FLUSH records), never on its own timing, so every node's segments are alike
        self.background_flush = bool(options.get("background_flush", True))
        self.auto_compact = bool(options.get("auto_compact", True))  # False: a follower repeats its owner's
        self.tso = TimestampOracle()
        self.catalog = Catalog(
            meta_store if meta_store is not None else FileMetaStore(self.root / "meta.db"),
            int(options.get("max_collections_per_db", 65536)),
        )
        self.wal = wal if wal is not None else WriteAheadLog(
            self.root / "wal", fsync=str(options.get("wal_fsync", DEFAULT_POLICY))
        )
        self._reload_lock = threading.Lock()
        self.persistence = Persistence(self.root, self.catalog, self.wal, self.tso)
        self.writer = Writer(self.wal, self.tso)
        self.reader = Reader(self.tso, FilterCache(int(options.get("filter_cache_bytes", DEFAULT_CAPACITY_BYTES))))
        self.datas: dict[int, CollectionData] = {}
        self._flush_wanted = threading.Event()
        self._closed = threading.Event()
        for meta in self.catalog.collections.values():
            self.tso.observe(meta.created_ts)
            data = self._new_data(meta)
            self.persistence.load_segments(meta, data)
        replayed = self.persistence.replay(self.datas)
        log.info("recovered %d collections, replayed %d WAL records", len(self.datas), replayed)
        self.indexer = Indexer(
            self.root, self._all_collections, int(options.get("min_index_rows", MIN_INDEX_ROWS)),
            int(options.get("index_build_threads", 0)),
        )
        self.compactor = Compactor(self.root, self.catalog, self.persistence, self.indexer)
        self.importer = Importer(
            self.root, self.catalog, self.tso, self.writer, self.datas.get, self.indexer.kick
        )
        self.backups = BackupService(self)
        self._flusher = threading.Thread(target=self._flush_loop, name="shoal-flusher", daemon=True)
        self._flusher.start()
        self.indexer.kick()

    # ---- plumbing
    def _new_data(self, meta: CollectionMeta) -> CollectionData:
        data = CollectionData(
            meta.collection_id, meta.schema, self.catalog.new_id, self.segment_max_rows, self.segment_max_bytes,
            ids_from_lsn=self.ids_from_lsn,
        )
        data.on_sealed = lambda _d: self._flush_wanted.set()
        self.datas[meta.collection_id] = data
        return data

    def _all_collections(self) -> list[tuple[CollectionMeta, CollectionData]]:
        return [(m, self.datas[cid]) for cid, m in list(self.catalog.collections.items()) if cid in self.datas]

    def _flush_loop(self) -> None:
        while not self._closed.is_set():
            self._flush_wanted.wait(timeout=30.0)
            self._flush_wanted.clear()
            if self._closed.is_set():
                return
            try:
                self._flush_sealed()
            except Exception:
                log.exception("background flush failed")
            try:
                self._auto_compact()
            except Exception:
                log.exception("automatic compaction failed")

    def _flush_sealed(self) -> None:
        if not self.background_flush:
            return
        for meta, data in self._all_collections():
            if data.unpersisted():
                self.persistence.flush(meta, data)
        self.persistence.truncate_wal(list(self.datas.values()))
        self.indexer.kick()

    def _auto_compact(self) -> None:
        """Start a compaction wherever small segments piled up or deletes took a large share."""
        if not self.auto_compact:
            return
        for meta, data in self._all_collections():
            if not self.compactor.running(meta.collection_id) and self.compactor.wanted(data):
                cid = self.compactor.compact(meta, data, self.tso.now(), auto=True)
                log.info("automatic compaction %d of collection %s", cid, meta.name)

    def reload_catalog(self) -> None:
        """Re-read a catalog that another process (the cluster's coordinator) changes, and bring
        the collections' data in line: new collections, drops, dropped partitions and indexes,
        added fields. This node's own segment list is kept (its segments are its own)."""
        with self._reload_lock:
            old = dict(self.catalog.collections)
            self.catalog.reload()
            for cid, meta in list(self.catalog.collections.items()):
                data = self.datas.get(cid)
                prev = old.get(cid)
                if data is None or prev is None:
                    self._new_data(meta)
                    continue
                meta.segments, meta.checkpoint_lsn = prev.segments, prev.checkpoint_lsn
                data.schema = meta.schema
                kept = {p.partition_id for p in meta.partitions}
                for p in prev.partitions:
                    if p.partition_id not in kept:
                        for seg in data.drop_partition(p.partition_id):
                            self.persistence.drop_segment_files(seg)
                indexed = {(i.field_name, i.params.get("json_path")): i.params for i in meta.indexes}
                for index in prev.indexes:
                    if indexed.get((index.field_name, index.params.get("json_path"))) != index.params:
                        self.indexer.forget(meta, data, index)
                data.fill_added_fields()
            for cid, meta in old.items():
                if cid in self.catalog.collections:
                    continue
                data = self.datas.pop(cid, None)
                if data is not None:
                    with data.write_lock:
                        data.dropped = True
                    data.segments = []
                self.persistence.drop_files(meta)
        self.indexer.kick()

    def _resolve(self, database: str, name: str) -> tuple[CollectionMeta, CollectionData]:
        meta = self.catalog.require(database, name)
        return meta, self.datas[meta.collection_id]

    def _loaded(
        self, database: str, name: str, partitions: list[str] | None = None
    ) -> tuple[CollectionMeta, CollectionData]:
        meta, data = self._resolve(database, name)
        for part in partitions or []:  # Milvus resolves a read's partition names before it checks the load
            if meta.partition(part) is None:
                raise invalid(f"partition name {part} not found")
        if not meta.loaded and not meta.loaded_partitions:
            raise ShoalError(Code.COLLECTION_NOT_LOADED, f"collection not loaded[collection={meta.name}]")
        return meta, data

    def _partition_ids(self, meta: CollectionMeta, names: list[str], for_read: bool) -> set[int] | None:
        if names:
            ids = set()
            for name in names:
                if for_read and meta.partition(name) is None:
                    # Milvus's reads name a missing partition so, with code 1100
                    raise invalid(f"partition name {name} not found")
                p = meta.require_partition(name)
                if for_read and not meta.loaded and p.partition_id not in meta.loaded_partitions:
                    raise ShoalError(Code.PARTITION_NOT_LOADED, f"partition not loaded[partition={name}]")
                ids.add(p.partition_id)
            return ids
        if for_read and not meta.loaded:
            return set(meta.loaded_partitions)
        return None

    # ---- time
    def alloc_timestamp(self, count: int = 1) -> int:
        return self.tso.allocate(count)

    # ---- databases
    def create_database(self, name: str, properties: dict[str, str] | None = None) -> None:
        self.catalog.create_database(name, self.tso.allocate(), properties or {})

    def drop_database(self, name: str) -> None:
        self.catalog.drop_database(name)

    def _db_info(self, name: str) -> DatabaseInfo:
        db = self.catalog.require_database(name)
        return DatabaseInfo(db.name, db.database_id, db.created_ts, dict(db.properties))

    def list_databases(self) -> list[DatabaseInfo]:
        return [self._db_info(n) for n in sorted(self.catalog.databases)]

    def describe_database(self, name: str) -> DatabaseInfo:
        return self._db_info(name or DEFAULT_DB)

    def alter_database(self, name: str, properties: dict[str, str], delete_keys: list[str]) -> None:
        self.catalog.alter_database(name or DEFAULT_DB, properties, delete_keys)

    # ---- collections
    def create_collection(
        self,
        database: str,
        name: str,
        schema: CollectionSchema,
        *,
        num_shards: int = 1,
        num_partitions: int = 0,
        consistency_level: ConsistencyLevel = ConsistencyLevel.BOUNDED,
        properties: dict[str, str] | None = None,
    ) -> None:
        database = database or DEFAULT_DB
        check_name("collection", name)
        self.catalog.require_database(database)
        _check_schema(schema)
        existing = self.catalog.find(database, name)
        if existing is not None and existing.name != name:
            raise ShoalError(
                Code.ALIAS_NAME_CONFLICT,
                f"alias and collection name conflict[database={database}][alias={name}]: please choose a unique name",
            )
        if existing is not None:
            if existing.schema.to_dict() == schema.to_dict():
                return  # Milvus accepts an identical re-create
            raise invalid(f"create duplicate collection with different parameters, collection: {name}")
        check_ttl_properties(schema, dict(properties or {}))
        created = self.tso.allocate()
        meta = CollectionMeta(
            collection_id=self.catalog.new_id(),
            database=database,
            name=name,
            schema=schema,
            created_ts=created,
            num_shards=max(1, num_shards or 1),
            consistency_level=int(consistency_level),
            properties=dict(properties or {}),
        )
        if schema.partition_key_field is not None:
            count = num_partitions or DEFAULT_NUM_PARTITIONS
            if not 1 <= count <= 1024:
                raise invalid(f"partition number ({count}) exceeds max configuration (1024)")
            meta.num_partitions = count
            meta.partitions = [PartitionMeta(f"{DEFAULT_PARTITION}_{i}", self.catalog.new_id(), created) for i in range(count)]
        else:
            meta.partitions = [PartitionMeta(DEFAULT_PARTITION, self.catalog.new_id(), created)]
        self._new_data(meta)
        self.catalog.add_collection(meta)

    def drop_collection(self, database: str, name: str) -> None:
        meta = self.catalog.find(database, name)
        if meta is None:
            self.catalog.require_database(database)
            return  # dropping a missing collection is not an error in Milvus
        if self.catalog.aliases_of(meta) and meta.name != name:
            raise invalid(f"cannot drop the collection via alias = {name}")
        data = self.datas.get(meta.collection_id)
        if data is not None:
            with data.write_lock:
                data.dropped = True
        self.catalog.remove_collection(meta)
        self.datas.pop(meta.collection_id, None)
        self.persistence.drop_files(meta)
        if data is not None:
            data.segments = []

    def has_collection(self, database: str, name: str) -> bool:
        self.catalog.require_database(database)
        return self.catalog.find(database, name) is not None

    def _info(self, meta: CollectionMeta) -> CollectionInfo:
        data = self.datas.get(meta.collection_id)
        parts = []
        for p in meta.partitions:
            rows = data.row_count({p.partition_id}) if data else 0
            parts.append(PartitionInfo(p.name, p.partition_id, p.created_ts, rows))
        return CollectionInfo(
            database=meta.database,
            name=meta.name,
            collection_id=meta.collection_id,
            schema=meta.schema,
            created_ts=meta.created_ts,
            num_shards=meta.num_shards,
            num_partitions=meta.num_partitions,
            consistency_level=ConsistencyLevel(meta.consistency_level),
            properties=dict(meta.properties),
            aliases=self.catalog.aliases_of(meta),
            partitions=parts,
            updated_ts=meta.updated_ts or meta.created_ts,
        )

    def describe_collection(self, database: str, name: str) -> CollectionInfo:
        return self._info(self.catalog.require(database, name))

    def list_collections(self, database: str) -> list[CollectionInfo]:
        return [self._info(m) for m in self.catalog.list_collections(database)]

    def rename_collection(self, database: str, old: str, new: str, new_database: str = "") -> None:
        meta = self.catalog.require(database, old)
        self.catalog.rename_collection(meta, new_database or database or DEFAULT_DB, new)

    def alter_collection(self, database: str, name: str, properties: dict[str, str], delete_keys: list[str]) -> None:
        meta = self.catalog.require(database, name)
        if "collection.ttl.seconds" in properties:
            try:
                if int(properties["collection.ttl.seconds"]) < 0:
                    raise ValueError
            except ValueError:
                raise invalid("collection TTL is not a valid positive integer") from None
        properties = dict(properties)
        after = {k: v for k, v in {**meta.properties, **properties}.items() if k not in delete_keys}
        check_ttl_properties(meta.schema, after)
        old_ttl_field = meta.properties.get(TTL_FIELD)
        if old_ttl_field and after.get(TTL_FIELD) != old_ttl_field:
            self._delete_expired(meta, old_ttl_field)
        dynamic = properties.pop("dynamicfield.enabled", None)
        if dynamic is not None:
            enable = str(dynamic).strip().lower()
            if enable not in ("true", "false"):
                raise invalid(f"dynamicfield.enabled must be true or false, got {dynamic}")
            if enable == "false" and meta.schema.enable_dynamic_field:
                raise invalid("dynamic schema cannot supported to be disabled")
        with self.catalog.lock:
            if dynamic is not None and str(dynamic).strip().lower() == "true":
                meta.schema.enable_dynamic_field = True
            meta.updated_ts = self.tso.allocate()
            meta.properties.update(properties)
            for key in delete_keys:
                meta.properties.pop(key, None)
            self.catalog.save_collection(meta)

    def delete_expired(self, database: str, name: str, ttl_field: str) -> None:
        """What `alter_collection` does when `ttl_field` stops being the TTL field; a cluster's proxy
        asks the shard's owner for it (so the deletes go through the WAL) before the coordinator alters."""
        meta = self.catalog.require(database, name)
        if meta.properties.get(TTL_FIELD) == ttl_field:
            self._delete_expired(meta, ttl_field)

    def _delete_expired(self, meta: CollectionMeta, ttl_field: str) -> None:
        """Delete the entities `ttl_field` has expired: they stay gone once it is dropped."""
        data = self.datas.get(meta.collection_id)
        if data is None:
            return
        pk = meta.schema.primary_field.name
        with data.write_lock:
            now = self.tso.now()

            def expired(seg: Segment, n: int) -> np.ndarray | None:
                alive = unexpired(seg, ttl_field, now, n)
                return None if alive is None else ~alive[:n]

            keys = data.visible_keys(pk, now, expired)
            if len(keys):
                self.writer.delete(meta, data, 0, unique_in_order(keys))

    def add_collection_field(self, database: str, name: str, field: FieldSchema) -> None:
        meta = self.catalog.require(database, name)
        if meta.schema.field(field.name) is not None:
            raise invalid(f"duplicate field name: {field.name}")
        if not field.nullable:
            raise invalid(f"added field must be nullable, please check it, field name = {field.name}")
        if field.is_primary:
            raise invalid("cannot add a primary key field")
        if len(meta.schema.fields) >= MAX_FIELDS:
            raise invalid(f"the number of fields exceeds the limit ({MAX_FIELDS})")
        with self.catalog.lock:
            field.field_id = max((f.field_id for f in meta.schema.fields), default=99) + 1
            meta.schema.fields.append(field)
            meta.updated_ts = self.tso.allocate()
            self.catalog.save_collection(meta)
        data = self.datas.get(meta.collection_id)
        if data is not None:
            data.fill_added_fields()

    def collection_row_count(self, database: str, name: str) -> int:
        _, data = self._resolve(database, name)
        return data.written_rows()

    # ---- partitions
    def create_partition(self, database: str, collection: str, partition: str) -> None:
        meta = self.catalog.require(database, collection)
        if meta.schema.partition_key_field is not None:
            raise invalid("disable create partition if partition key mode is used")
        self.catalog.add_partition(meta, partition, self.tso.allocate())

    def drop_partition(self, database: str, collection: str, partition: str) -> None:
        meta, data = self._resolve(database, collection)
        if partition == DEFAULT_PARTITION:
            raise invalid("default partition cannot be deleted")
        if meta.schema.partition_key_field is not None:
            raise invalid("disable drop partition if partition key mode is used")
        p = meta.partition(partition)
        if p is None:
            return
        if p.partition_id in meta.loaded_partitions or meta.loaded:
            raise invalid(f"partition cannot be dropped, partition is loaded, please release it first[partition={partition}]")
        for seg in data.drop_partition(p.partition_id):
            self.persistence.drop_segment_files(seg)
        with self.catalog.lock:
            meta.partitions = [x for x in meta.partitions if x is not p]
            meta.segments = [s for s in meta.segments if s.partition_id != p.partition_id]
            self.catalog.save_collection(meta)

    def has_partition(self, database: str, collection: str, partition: str) -> bool:
        return self.catalog.require(database, collection).partition(partition) is not None

    def list_partitions(self, database: str, collection: str) -> list[PartitionInfo]:
        return self._info(self.catalog.require(database, collection)).partitions

    def partition_row_count(self, database: str, collection: str, partition: str) -> int:
        meta, data = self._resolve(database, collection)
        return data.written_rows({meta.require_partition(partition).partition_id})

    # ---- aliases
    def create_alias(self, database: str, alias: str, collection: str) -> None:
        meta = self.catalog.require(database, collection)
        if meta.name != collection:
            raise invalid(f"cannot create an alias of an alias: {collection}")
        self.catalog.create_alias(database, alias, meta)

    def alter_alias(self, database: str, alias: str, collection: str) -> None:
        self.catalog.alter_alias(database, alias, collection)

    def drop_alias(self, database: str, alias: str) -> None:
        self.catalog.drop_alias(database, alias)

    def describe_alias(self, database: str, alias: str) -> str:
        return self.catalog.describe_alias(database, alias).name

    def list_aliases(self, database: str, collection: str = "") -> list[str]:
        if collection:
            return self.catalog.aliases_of(self.catalog.require(database, collection))
        self.catalog.require_database(database)
        return self.catalog.aliases_in(database)

    # ---- load / release (segments are memory-mapped at start-up, so loading is a state change)
    def load_collection(self, database: str, name: str, replica_number: int = 1) -> None:
        meta = self.catalog.require(database, name)
        check_replica_change(1 if meta.loaded or meta.loaded_partitions else 0, replica_number)
        check_streaming_nodes(replica_number, 1)
        with self.catalog.lock:
            meta.loaded = True
            meta.loaded_partitions = []
            self.catalog.save_collection(meta)

    def release_collection(self, database: str, name: str) -> None:
        meta = self.catalog.require(database, name)
        with self.catalog.lock:
            meta.loaded = False
            meta.loaded_partitions = []
            self.catalog.save_collection(meta)

    def load_partitions(self, database: str, name: str, partitions: list[str], replica_number: int = 1) -> None:
        meta = self.catalog.require(database, name)
        check_replica_change(1 if meta.loaded or meta.loaded_partitions else 0, replica_number, partitions=True)
        check_streaming_nodes(replica_number, 1)
        ids = [meta.require_partition(p).partition_id for p in partitions]
        with self.catalog.lock:
            if not meta.loaded:
                meta.loaded_partitions = sorted(set(meta.loaded_partitions) | set(ids))
            self.catalog.save_collection(meta)

    def release_partitions(self, database: str, name: str, partitions: list[str]) -> None:
        meta = self.catalog.require(database, name)
        ids = {meta.require_partition(p).partition_id for p in partitions}
        with self.catalog.lock:
            loaded = {p.partition_id for p in meta.partitions} if meta.loaded else set(meta.loaded_partitions)
            meta.loaded = False
            meta.loaded_partitions = sorted(loaded - ids)
            self.catalog.save_collection(meta)

    def load_state(self, database: str, name: str, partitions: list[str] | None = None) -> LoadState:
        meta = self.catalog.find(database, name)
        if meta is None:
            return LoadState.NOT_EXIST
        if partitions:
            for p in partitions:
                part = meta.partition(p)
                if part is None:
                    return LoadState.NOT_EXIST
                if not meta.loaded and part.partition_id not in meta.loaded_partitions:
                    return LoadState.NOT_LOAD
            return LoadState.LOADED
        return LoadState.LOADED if meta.loaded or meta.loaded_partitions else LoadState.NOT_LOAD

    def describe_replicas(self, database: str, name: str) -> list[ReplicaGroup]:
        """One node serves everything: one group on node 1 once the collection (or a partition)
        is loaded, none before (Milvus answers an empty list then)."""
        meta = self.catalog.require(database, name)
        if self.load_state(database, name) != LoadState.LOADED:
            return []
        return [ReplicaGroup(replica_id(meta.collection_id, 0), meta.collection_id, [STANDALONE_NODE_ID],
                             meta.num_shards)]

    def loading_progress(self, database: str, name: str, partitions: list[str] | None = None) -> int:
        state = self.load_state(database, name, partitions)
        if state == LoadState.NOT_EXIST:
            raise self._not_found(database, name)
        if state != LoadState.LOADED:
            raise ShoalError(Code.COLLECTION_NOT_LOADED, f"collection not loaded[collection={name}]")
        return 100

    def _not_found(self, database: str, name: str) -> ShoalError:
        self.catalog.require(database, name)
        return ShoalError(Code.PARTITION_NOT_FOUND, "partition not found")

    # ---- writes
    def insert(self, database: str, collection: str, partition: str, batch: Batch, num_rows: int) -> MutationResult:
        meta, data = self._resolve(database, collection)
        return self.writer.insert(meta, data, partition, batch, num_rows)

    def upsert(
        self,
        database: str,
        collection: str,
        partition: str,
        batch: Batch,
        num_rows: int,
        partial_update: bool = False,
    ) -> MutationResult:
        meta, data = self._resolve(database, collection)
        if not partial_update:
            return self.writer.insert(meta, data, partition, batch, num_rows, upsert=True)
        with data.write_lock:  # nothing may land between reading the stored rows and the upsert
            full = complete_partial(meta.schema, batch, num_rows, lambda keys, fields: self._stored_rows(meta, data, keys, fields))
            return self.writer.insert(meta, data, partition, full, num_rows, upsert=True)

    def _stored_rows(self, meta: CollectionMeta, data: CollectionData, keys: np.ndarray, fields: list[str]) -> QueryResult:
        pk = meta.schema.primary_field.name
        req = QueryRequest(expr=f"{pk} in {{keys}}", expr_params={"keys": keys.tolist()}, output_fields=[pk, *fields])
        return self.reader.query(meta, data.snapshot(), req)

    def delete(
        self,
        database: str,
        collection: str,
        partition: str,
        expr: str,
        expr_params: dict[str, Any] | None = None,
    ) -> MutationResult:
        meta, data = self._resolve(database, collection)
        if not expr.strip():
            raise invalid("delete plan can't be empty or always true")
        pk = meta.schema.primary_field
        flt = compile_filter(expr, meta.schema, expr_params or {})
        if flt.sample is not None:
            raise invalid("random_sample is not allowed in a delete filter")
        partition_id = meta.require_partition(partition).partition_id if partition else 0
        keys = flt.primary_key_values(pk.name)
        if keys is not None:
            dtype = np.int64 if pk.dtype == DataType.INT64 else object
            pks = np.array(keys, dtype=dtype) if dtype is np.int64 else np.array([str(k) for k in keys], dtype=object)
            pks = unique_in_order(pks)
        else:
            req = QueryRequest(expr=expr, expr_params=expr_params or {}, output_fields=[pk.name])
            parts = {partition_id} if partition_id else None
            found = self.reader.query(meta, data.snapshot(parts), req)
            pks = unique_in_order(np.asarray(found.fields[pk.name].values))
        return self.writer.delete(meta, data, partition_id, pks)

    def truncate_collection(self, database: str, name: str) -> MutationResult:
        """Remove every row, keeping schema, partitions and indexes: one logged delete of every live key.

        Being a delete, it is durable and replayed like any other; compaction then drops the rows.
        """
        meta, data = self._resolve(database, name)
        pk = meta.schema.primary_field.name
        with data.write_lock:
            keys = data.visible_keys(pk, self.tso.now())
            res = self.writer.delete(meta, data, 0, unique_in_order(keys))
        # as Milvus, the collection holds no segment afterwards: compacting rows that are all
        # deleted writes nothing, so this waits only for the bookkeeping
        job = self.compact(database, name)
        deadline = time.monotonic() + TRUNCATE_WAIT_S
        while self.compactor.state(job).state != "Completed" and time.monotonic() < deadline:
            time.sleep(0.02)
        return res

    def flush(self, database: str, collections: list[str]) -> dict[str, tuple[list[int], int]]:
        out = {}
        for name in collections:
            meta, data = self._resolve(database, name)
            self.persistence.flush(meta, data)
            out[name] = ([s.segment_id for s in meta.segments], self.tso.allocate())
        self.persistence.truncate_wal(list(self.datas.values()))
        self.indexer.kick()
        self._flush_wanted.set()  # the background loop then checks for automatic compaction
        return out

    def flush_state(self, database: str, collection: str, flush_ts: int) -> bool:
        return True  # flush is synchronous: once Flush answered, the data is in segment files

    # ---- bulk import
    def import_files(
        self, database: str, collection: str, partition: str, files: list[list[str]], options: dict[str, str]
    ) -> ImportJob:
        meta, _ = self._resolve(database, collection)
        return self.importer.submit(database or DEFAULT_DB, meta, partition, files, options)

    def import_job(self, job_id: int) -> ImportJob:
        return self.importer.get(job_id)

    def list_import_jobs(self, database: str, collection: str = "") -> list[ImportJob]:
        cid = self._resolve(database, collection)[0].collection_id if collection else None
        return self.importer.list(database or DEFAULT_DB, cid)

    # ---- reads
    def query(self, database: str, collection: str, request: QueryRequest) -> QueryResult:
        meta, data = self._loaded(database, collection, request.partition_names)
        parts = self._partition_ids(meta, request.partition_names, for_read=True)
        return self.reader.query(meta, data.snapshot(parts), request)

    def search(self, database: str, collection: str, request: SearchRequest) -> SearchResult:
        meta, data = self._loaded(database, collection, request.partition_names)
        parts = self._partition_ids(meta, request.partition_names, for_read=True)
        return self.reader.search(meta, data.snapshot(parts), request)

    def text_stats(self, database: str, collection: str, request: SearchRequest) -> Bm25Stats | None:
        meta, data = self._loaded(database, collection, request.partition_names)
        parts = self._partition_ids(meta, request.partition_names, for_read=True)
        return self.reader.text_stats(meta, data.snapshot(parts), request)

    def hybrid_search(self, database: str, collection: str, request: HybridSearchRequest) -> SearchResult:
        meta, data = self._loaded(database, collection, request.partition_names)
        parts = self._partition_ids(meta, request.partition_names, for_read=True)
        return self.reader.hybrid_search(meta, data.snapshot(parts), request)

    # ---- indexes
    def create_index(
        self, database: str, collection: str, field: str, index_name: str, params: dict[str, str]
    ) -> None:
        meta, data = self._resolve(database, collection)
        fld = meta.schema.field(field)
        member_params = None if fld is not None else member_index_params(meta.schema, field, flatten_params(params))
        if member_params is not None:
            self._add_member_index(meta, field, index_name or field, member_params)
            return
        key_path = ""  # a path under a dynamic-field key, as the client wrote it
        if fld is None and meta.schema.enable_dynamic_field and "json_cast_type" in params:
            # a dynamic-field key: a JSON-path index of $meta, described under the key's name
            given = str(params.get("json_path") or "")
            if given:
                parse_identifier(given)  # Milvus reads the path as an identifier first
            under_key = given.startswith(field) and given[len(field):][:1] in ("", "[")
            key_path = given if under_key else ""
            internal = f'{DYNAMIC_FIELD}["{field}"]' + (given[len(field):] if under_key else "")
            params = {**params, "json_path": given if given.startswith(DYNAMIC_FIELD) else internal}
            fld = FieldSchema(name=DYNAMIC_FIELD, dtype=DataType.JSON, is_dynamic=True)
        if fld is None:
            raise invalid(f"cannot create index on non-exist field: {field}")
        if not fld.dtype.is_vector:
            spec_params = scalar_index_params(fld, params)
        else:
            is_bm25 = bm25_input(meta.schema, fld) is not None
            if is_bm25 and not flatten_params(params).get("metric_type"):
                params = {**params, "metric_type": "BM25"}
            elif minhash_function(meta.schema, fld) is not None and not flatten_params(params).get("metric_type"):
                params = {**params, "metric_type": "MHJACCARD"}
            spec_params = validate_index_params(fld, params, creating=True).to_params()
            if is_bm25 != (spec_params["metric_type"] == "BM25"):
                raise invalid(
                    f"the metric type of the BM25 function output {field} must be BM25"
                    if is_bm25
                    else f"metric type BM25 only applies to the output field of a BM25 function, not {field}"
                )
        path = spec_params.get("json_path")
        # Milvus names a path index by its path as a JSON Pointer ("$meta/key/a" under a dynamic key)
        name = index_name or (json_index_name(path) if path and (fld.name != DYNAMIC_FIELD or key_path) else field)
        if key_path:
            spec_params["json_path"] = path = key_path  # described as the client wrote it
        with self.catalog.lock:
            # Milvus's order: an index of the same name must be this very index; another name on the
            # same field (the same path of a JSON field) is a second index there
            same_name = next((i for i in meta.indexes if i.index_name == name), None)
            if same_name is not None:
                if same_name.field_name == field and same_name.params == spec_params:
                    return
                if meta.loaded or meta.loaded_partitions:
                    raise invalid(
                        "at most one distinct index is allowed per field; drop the index (release the collection first) "
                        "to create it again with other parameters"
                    )
                raise invalid("at most one distinct index is allowed per field")
            if any(i.field_name == field and i.params.get("json_path") == path for i in meta.indexes):
                raise invalid("CreateIndex failed: creating multiple indexes on same field is not supported")
            meta.indexes.append(IndexMeta(self.catalog.new_id(), name, field, spec_params))
            self.catalog.save_collection(meta)
        self.indexer.kick()

    def _add_member_index(self, meta: CollectionMeta, path: str, name: str, params: dict[str, str]) -> None:
        """An index on a struct's vector member: recorded and described; searches score it exactly."""
        with self.catalog.lock:
            same = next((i for i in meta.indexes if i.index_name == name or i.field_name == path), None)
            if same is not None:
                if same.field_name == path and same.index_name == name and same.params == params:
                    return
                raise invalid("CreateIndex failed: creating multiple indexes on same field is not supported")
            meta.indexes.append(IndexMeta(self.catalog.new_id(), name, path, params))
            self.catalog.save_collection(meta)

    def _find_indexes(self, meta: CollectionMeta, field: str, index_name: str) -> list[IndexMeta]:
        found = [
            i
            for i in meta.indexes
            if (not field or i.field_name == field) and (not index_name or i.index_name == index_name)
        ]
        if not found:
            raise ShoalError(Code.INDEX_NOT_FOUND, f"index not found[collection={meta.name}]")
        return found

    def describe_index(self, database: str, collection: str, field: str = "", index_name: str = "") -> list[IndexInfo]:
        meta, data = self._resolve(database, collection)
        out = []
        for index in self._find_indexes(meta, field, index_name):
            prog = self.indexer.progress(meta, data, index)
            state = "Failed" if prog.failed else ("InProgress" if prog.pending_rows else "Finished")
            out.append(
                IndexInfo(
                    index_name=index.index_name,
                    field_name=index.field_name,
                    index_id=index.index_id,
                    params=dict(index.params),
                    state=state,
                    indexed_rows=prog.indexed_rows,
                    total_rows=prog.total_rows,
                    pending_index_rows=prog.pending_rows,
                    fail_reason=prog.failed,
                )
            )
        return out

    def drop_index(self, database: str, collection: str, field: str = "", index_name: str = "") -> None:
        meta, data = self._resolve(database, collection)
        try:
            found = self._find_indexes(meta, field, index_name)
        except ShoalError:
            return  # Milvus: dropping a missing index succeeds
        if meta.loaded or meta.loaded_partitions:
            fields = (meta.schema.field(i.field_name) for i in found)
            if any(f is not None and f.dtype.is_vector for f in fields):
                raise invalid(f"vector index cannot be dropped on loaded collection: {meta.collection_id}")
            raise invalid("index cannot be dropped, collection is loaded, please release it first")
        with self.catalog.lock:
            meta.indexes = [i for i in meta.indexes if i not in found]
            self.catalog.save_collection(meta)
        for index in found:
            self.indexer.forget(meta, data, index)

    def alter_index(
        self, database: str, collection: str, index_name: str, properties: dict[str, str], delete_keys: list[str]
    ) -> None:
        meta, _ = self._resolve(database, collection)
        (index,) = self._find_indexes(meta, "", index_name)
        check_index_properties(index.params.get("index_type", ""), properties, delete_keys)
        with self.catalog.lock:
            index.params.update(properties)
            for key in delete_keys:
                index.params.pop(key, None)
            self.catalog.save_collection(meta)

    # ---- maintenance
    def compact(self, database: str, collection: str, force: bool = False) -> int:
        meta, data = self._resolve(database, collection)
        self.persistence.flush(meta, data)
        return self.compactor.compact(meta, data, self.tso.now(), force=force)

    def compaction_state(self, compaction_id: int) -> CompactionState:
        return self.compactor.state(compaction_id)

    def persistent_segments(self, database: str, collection: str, states: list[str] | None = None) -> list[SegmentInfo]:
        meta, data = self._resolve(database, collection)
        return persistent_segments(meta, data, states or [])

    def query_segments(self, database: str, collection: str) -> list[SegmentInfo]:
        meta, data = self._loaded(database, collection)
        return query_segments(meta, data)

    def stats(self) -> dict[str, float]:
        disk = shutil.disk_usage(self.root)
        segments = sum(len(d.segments) for d in self.datas.values())
        rows = sum(d.row_count() for d in self.datas.values())
        cache = self.reader.filter_cache
        return {
            "collections": len(self.catalog.collections), "segments": segments, "rows": rows,
            "filter_cache_hits": cache.hits, "filter_cache_misses": cache.misses,
            "filter_cache_bytes": cache.size_bytes, "index_build_threads": self.indexer.threads_in_use,
            # WAL records not yet in a flushed segment: what a restart would replay (the alerts' "WAL lag")
            "wal_unflushed_records": max(0, self.wal.last_lsn - self.wal.checkpoint_lsn),
            "data_disk_free_bytes": disk.free, "data_disk_total_bytes": disk.total,
        }

    def gauges(self) -> dict[str, int]:
        """The counts behind Milvus's coordinator and node gauges (`shoal.api.milvus_metrics`)."""
        out = dict.fromkeys(("collections", "partitions", "loaded_collections", "loaded_partitions",
                             "rows", "loaded_rows", "growing_segments", "sealed_segments"), 0)
        for meta, data in self._all_collections():
            segments = data.snapshot()
            rows = sum(s.live_rows() for s in segments)
            out["collections"] += 1
            out["partitions"] += len(meta.partitions)
            out["rows"] += rows
            out["growing_segments"] += sum(1 for s in segments if not s.sealed)
            out["sealed_segments"] += sum(1 for s in segments if s.sealed)
            if meta.loaded or meta.loaded_partitions:
                out["loaded_collections"] += 1
                out["loaded_partitions"] += len(meta.partitions) if meta.loaded else len(meta.loaded_partitions)
                out["loaded_rows"] += rows if meta.loaded else data.row_count(set(meta.loaded_partitions))
        out["timestamp"] = self.tso.last
        return out

    # ---- lifecycle
    def close(self, flush: bool = True) -> None:
        """`flush=False`: a cluster node's local cache, rebuilt from the WAL at its next start."""
        if self._closed.is_set():
            return
        self._closed.set()
        self.importer.close()
        self._flush_wanted.set()
        self._flusher.join(timeout=30)
        self.indexer.close()
        for meta, data in self._all_collections() if flush else []:
            try:
                self.persistence.flush(meta, data)
            except Exception:
                log.exception("flush of %s on close failed", meta.name)
        self.persistence.truncate_wal(list(self.datas.values()))
        self.wal.close()
        self.catalog.store.close()


def unique_in_order(values: np.ndarray) -> np.ndarray:
    """Unique values keeping first-seen order."""
    if len(values) == 0:
        return values
    _, first = np.unique(values, return_index=True)
    return values[np.sort(first)]


def _check_schema(schema: CollectionSchema) -> None:
    """Collection-level rules; field-level ones (dims, lengths, types) are checked while decoding."""
    if len(schema.fields) > MAX_FIELDS:
        raise invalid(f"maximum field's number should be limited to {MAX_FIELDS}")
    names = [f.name for f in schema.fields]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise invalid(f"duplicated field name {dup} found")
    primaries = [f for f in schema.fields if f.is_primary]
    if len(primaries) != 1:
        raise invalid("there should be exactly one primary key field in a collection schema")
    if not schema.vector_fields:
        raise invalid("schema does not contain vector field")
    if sum(1 for f in schema.fields if f.is_partition_key) > 1:
        raise invalid("there are more than one partition key")
    check_functions(schema)
    for f in schema.fields:
        check_name("field", f.name)
