"""The catalog: databases, collections, partitions, aliases and index definitions.

Metadata only — rows live in `segments`. Every change is one atomic `MetaStore.commit`
(one key per database and per collection), so a crash leaves the old or the new catalog,
never a mix. Names resolve here (aliases included) and the Milvus "not found" errors are
raised here.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from shoal.engine.requests import ConsistencyLevel
from shoal.errors import Code, ShoalError, collection_not_found, invalid
from shoal.schema import MAX_NAME_LENGTH, MAX_PARTITIONS, CollectionSchema
from shoal.storage.meta_store import MetaStore

DEFAULT_DB = "default"
DEFAULT_PARTITION = "_default"
MAX_DATABASES = 64
MAX_COLLECTIONS = 65536
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Milvus lets a partition name start with a digit and carry `-`
_PARTITION_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")


def check_name(kind: str, name: str) -> None:
    if not name:
        raise invalid(f"{kind} name should not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise invalid(f"the length of a {kind} name must be less than {MAX_NAME_LENGTH} characters: {name}")
    if not (_PARTITION_NAME if kind == "partition" else _NAME).match(name):
        raise invalid(
            f"the first character of a {kind} name must be an underscore or letter, and it can only "
            f"contain numbers, letters and underscores: {name}"
        )


@dataclass
class PartitionMeta:
    name: str
    partition_id: int
    created_ts: int


@dataclass
class IndexMeta:
    index_id: int
    index_name: str
    field_name: str
    params: dict[str, str]


@dataclass
class SegmentMeta:
    segment_id: int
    partition_id: int
    num_rows: int
    path: str  # relative to the data dir


@dataclass
class CollectionMeta:
    collection_id: int
    database: str
    name: str
    schema: CollectionSchema
    created_ts: int
    num_shards: int = 1
    num_partitions: int = 0
    consistency_level: int = int(ConsistencyLevel.BOUNDED)
    properties: dict[str, str] = field(default_factory=dict)
    partitions: list[PartitionMeta] = field(default_factory=list)
    loaded: bool = False
    loaded_partitions: list[int] = field(default_factory=list)
    indexes: list[IndexMeta] = field(default_factory=list)
    segments: list[SegmentMeta] = field(default_factory=list)
    checkpoint_lsn: int = 0
    updated_ts: int = 0  # last schema or property change (Milvus's update_timestamp)

    def partition(self, name: str) -> PartitionMeta | None:
        return next((p for p in self.partitions if p.name == name), None)

    def require_partition(self, name: str) -> PartitionMeta:
        p = self.partition(name)
        if p is None:
            raise ShoalError(Code.PARTITION_NOT_FOUND, f"partition not found[partition={name}]")
        return p

    def index_for_field(self, field_name: str) -> IndexMeta | None:
        return next((i for i in self.indexes if i.field_name == field_name), None)

    @property
    def ttl_seconds(self) -> int:
        try:
            return int(self.properties.get("collection.ttl.seconds", "0"))
        except ValueError:
            return 0

    def to_json(self) -> bytes:
        d = asdict(self)
        d["schema"] = self.schema.to_dict()
        return json.dumps(d).encode()

    @classmethod
    def from_json(cls, data: bytes) -> CollectionMeta:
        d = json.loads(data)
        d["schema"] = CollectionSchema.from_dict(d["schema"])
        d["partitions"] = [PartitionMeta(**p) for p in d["partitions"]]
        d["indexes"] = [IndexMeta(**i) for i in d["indexes"]]
        d["segments"] = [SegmentMeta(**s) for s in d["segments"]]
        return cls(**d)


@dataclass
class DatabaseMeta:
    name: str
    database_id: int
    created_ts: int
    properties: dict[str, str] = field(default_factory=dict)


class Catalog:
    """In-memory catalog mirrored to a MetaStore. All methods hold one lock."""

    def __init__(self, store: MetaStore, max_collections_per_db: int = MAX_COLLECTIONS) -> None:
        self.store = store
        self.max_collections_per_db = max_collections_per_db
        self.lock = threading.RLock()
        self.databases: dict[str, DatabaseMeta] = {}
        self.collections: dict[int, CollectionMeta] = {}
        self.aliases: dict[tuple[str, str], int] = {}  # (database, alias) -> collection id
        self._next_id = 1
        self._load()

    # ---- persistence
    def _load(self) -> None:
        databases: dict[str, DatabaseMeta] = {}
        collections: dict[int, CollectionMeta] = {}
        aliases: dict[tuple[str, str], int] = {}
        for value in self.store.list_prefix("db/").values():
            db = DatabaseMeta(**json.loads(value))
            databases[db.name] = db
        for value in self.store.list_prefix("coll/").values():
            meta = CollectionMeta.from_json(value)
            collections[meta.collection_id] = meta
        for key, value in self.store.list_prefix("alias/").items():
            _, db, alias = key.split("/", 2)
            aliases[(db, alias)] = int(value)
        # Swapped in whole: a cluster follower's WAL tail looks collections up without the lock
        # while a reload runs, and must never see a half-read (or empty) catalog.
        self.databases, self.collections, self.aliases = databases, collections, aliases
        raw = self.store.get("next_id")
        self._next_id = int(raw) if raw else 1
        if DEFAULT_DB not in self.databases:
            self.databases[DEFAULT_DB] = DatabaseMeta(DEFAULT_DB, 1, 0)
            self._commit(dbs=[DEFAULT_DB])

    def reload(self) -> None:
        """Re-read everything from the store (a follower of a catalog another process writes)."""
        with self.lock:
            local_next = self._next_id
            self._load()
            self._next_id = max(self._next_id, local_next)

    def reserve_ids(self, upto: int) -> None:
        """Never hand out an id at or below `upto` (ids another process already used)."""
        with self.lock:
            self._next_id = max(self._next_id, upto)

    def new_id(self) -> int:
        with self.lock:
            self._next_id += 1
            return self._next_id

    def _commit(
        self,
        dbs: list[str] = (),  # type: ignore[assignment]
        collections: list[int] = (),  # type: ignore[assignment]
        aliases: list[tuple[str, str]] = (),  # type: ignore[assignment]
    ) -> None:
        puts: dict[str, bytes] = {"next_id": str(self._next_id).encode()}
        deletes: list[str] = []
        for name in dbs:
            key = f"db/{name}"
            if name in self.databases:
                puts[key] = json.dumps(asdict(self.databases[name])).encode()
            else:
                deletes.append(key)
        for cid in collections:
            key = f"coll/{cid}"
            if cid in self.collections:
                puts[key] = self.collections[cid].to_json()
            else:
                deletes.append(key)
        for db, alias in aliases:
            key = f"alias/{db}/{alias}"
            if (db, alias) in self.aliases:
                puts[key] = str(self.aliases[(db, alias)]).encode()
            else:
                deletes.append(key)
        self.store.commit(puts, deletes)

    def save_collection(self, meta: CollectionMeta) -> None:
        with self.lock:
            self._commit(collections=[meta.collection_id])

    # ---- databases
    def require_database(self, name: str) -> DatabaseMeta:
        db = self.databases.get(name or DEFAULT_DB)
        if db is None:
            raise ShoalError(Code.DATABASE_NOT_FOUND, f"database not found[database={name}]")
        return db

    def create_database(self, name: str, created_ts: int, properties: dict[str, str]) -> None:
        check_name("database", name)
        with self.lock:
            if name in self.databases:
                raise invalid(f"database already exist: {name}")
            if len(self.databases) >= MAX_DATABASES:
                raise ShoalError(Code.DATABASE_NUM_LIMIT, f"database number ({MAX_DATABASES}) exceeds max configuration")
            self.databases[name] = DatabaseMeta(name, self.new_id(), created_ts, dict(properties))
            self._commit(dbs=[name])

    def drop_database(self, name: str) -> None:
        with self.lock:
            if name == DEFAULT_DB:
                raise invalid("can not drop default database")
            if name not in self.databases:
                return
            if any(c.database == name for c in self.collections.values()):
                raise invalid(f"database:{name} not empty, must drop all collections before drop database")
            del self.databases[name]
            self._commit(dbs=[name])

    def alter_database(self, name: str, properties: dict[str, str], delete_keys: list[str]) -> None:
        with self.lock:
            db = self.require_database(name)
            db.properties.update(properties)
            for k in delete_keys:
                db.properties.pop(k, None)
            self._commit(dbs=[db.name])

    # ---- collections
    def find(self, database: str, name: str) -> CollectionMeta | None:
        database = database or DEFAULT_DB
        with self.lock:
            cid = self.aliases.get((database, name))
            if cid is not None:
                return self.collections.get(cid)
            for meta in self.collections.values():
                if meta.database == database and meta.name == name:
                    return meta
            return None

    def require(self, database: str, name: str) -> CollectionMeta:
        self.require_database(database)
        meta = self.find(database, name)
        if meta is None:
            raise collection_not_found(name, database or DEFAULT_DB)
        return meta

    def add_collection(self, meta: CollectionMeta) -> None:
        with self.lock:
            if self.find(meta.database, meta.name) is not None:
                raise invalid(f"collection already exists: {meta.name}")
            if len(self.collections) >= MAX_COLLECTIONS:
                raise ShoalError(Code.COLLECTION_NUM_LIMIT, "exceeded the limit number of collections")
            in_db = sum(1 for c in self.collections.values() if c.database == meta.database)
            if in_db >= self.max_collections_per_db:
                raise ShoalError(
                    Code.COLLECTION_NUM_LIMIT,
                    f"exceeded the limit number of collections[dbName={meta.database}]"
                    f"[limit={self.max_collections_per_db}] (max_collections_per_db)",
                )
            self.collections[meta.collection_id] = meta
            self._commit(collections=[meta.collection_id])

    def remove_collection(self, meta: CollectionMeta) -> None:
        with self.lock:
            self.collections.pop(meta.collection_id, None)
            gone = [k for k, v in self.aliases.items() if v == meta.collection_id]
            for k in gone:
                del self.aliases[k]
            self._commit(collections=[meta.collection_id], aliases=gone)

    def rename_collection(self, meta: CollectionMeta, new_database: str, new_name: str) -> None:
        check_name("collection", new_name)
        with self.lock:
            self.require_database(new_database)
            if (new_database or DEFAULT_DB, new_name) in self.aliases:
                raise ShoalError(
                    Code.ALIAS_NAME_CONFLICT,
                    f"alias and collection name conflict[database={new_database or DEFAULT_DB}][alias={new_name}]",
                )
            if self.find(new_database, new_name) is not None:
                raise invalid(f"duplicated new collection name {new_name} in database {new_database}")
            meta.database, meta.name = new_database, new_name
            self._commit(collections=[meta.collection_id])

    def list_collections(self, database: str) -> list[CollectionMeta]:
        self.require_database(database)
        with self.lock:
            return sorted(
                (c for c in self.collections.values() if c.database == (database or DEFAULT_DB)),
                key=lambda c: c.collection_id,
            )

    # ---- partitions
    def add_partition(self, meta: CollectionMeta, name: str, created_ts: int) -> None:
        check_name("partition", name)
        with self.lock:
            if meta.partition(name) is not None:
                return  # as Milvus: creating an existing partition succeeds
            if len(meta.partitions) >= MAX_PARTITIONS:
                raise invalid(
                    f"partition number ({MAX_PARTITIONS}) exceeds max configuration ({MAX_PARTITIONS}), "
                    f"collection: {meta.name}"
                )
            meta.partitions.append(PartitionMeta(name, self.new_id(), created_ts))
            self._commit(collections=[meta.collection_id])

    # ---- aliases
    def create_alias(self, database: str, alias: str, meta: CollectionMeta) -> None:
        check_name("alias", alias)
        database = database or DEFAULT_DB
        with self.lock:
            self._check_no_collection_named(database, alias)
            current = self.aliases.get((database, alias))
            if current == meta.collection_id:
                return  # as Milvus: the same alias of the same collection again succeeds
            if current is not None:
                raise ShoalError(
                    Code.ALIAS_ALREADY_EXISTS,
                    f"alias already exist[database={database}][alias={alias}]: "
                    f"{alias} is alias to another collection: {self.collections[current].name}",
                )
            self.aliases[(database, alias)] = meta.collection_id
            self._commit(aliases=[(database, alias)])

    def _check_no_collection_named(self, database: str, alias: str) -> None:
        if any(c.database == database and c.name == alias for c in self.collections.values()):
            raise ShoalError(
                Code.ALIAS_NAME_CONFLICT, f"alias and collection name conflict[database={database}][alias={alias}]"
            )

    def alter_alias(self, database: str, alias: str, collection: str) -> None:
        database = database or DEFAULT_DB
        self.require_database(database)
        with self.lock:
            self._check_no_collection_named(database, alias)
            meta = self.find(database, collection)
            if meta is None or meta.name != collection:
                # Milvus's wording for alter_alias names no database
                raise ShoalError(Code.COLLECTION_NOT_FOUND, f"collection not found[collection={collection}]")
            if (database, alias) not in self.aliases:
                raise ShoalError(Code.ALIAS_NOT_FOUND, f"alias not found[database={database}][alias={alias}]")
            self.aliases[(database, alias)] = meta.collection_id
            self._commit(aliases=[(database, alias)])

    def drop_alias(self, database: str, alias: str) -> None:
        database = database or DEFAULT_DB
        with self.lock:
            if (database, alias) not in self.aliases:
                return  # as Milvus: dropping a missing alias succeeds
            del self.aliases[(database, alias)]
            self._commit(aliases=[(database, alias)])

    def describe_alias(self, database: str, alias: str) -> CollectionMeta:
        database = database or DEFAULT_DB
        with self.lock:
            cid = self.aliases.get((database, alias))
            if cid is None:
                raise ShoalError(Code.ALIAS_NOT_FOUND, f"alias not found[database={database}][alias={alias}]")
            return self.collections[cid]

    def aliases_of(self, meta: CollectionMeta) -> list[str]:
        with self.lock:
            return sorted(a for (db, a), cid in self.aliases.items() if cid == meta.collection_id)

    def aliases_in(self, database: str) -> list[str]:
        database = database or DEFAULT_DB
        with self.lock:
            return sorted(a for (db, a) in self.aliases if db == database)


def properties_to_str(props: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in props.items()}
