"""How the one catalog in etcd is shared: the coordinator writes it, every other role follows it.

`VersionedStore` (coordinator) adds a `catalog_version` counter to every catalog commit, in
the same etcd transaction. `FollowerStore` (streaming, query) reads the same keys and never
writes: a follower's own writes (a segment list after a local flush) stay in its memory, so
only the coordinator's view is ever in etcd. A follower reloads when it learns of a newer
version: from a request (the proxy passes the version its DDL answered), from a WAL record's
header, or from polling.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from shoal.storage.meta_store import MetaStore

VERSION_KEY = "catalog_version"


class VersionedStore:
    def __init__(self, store: MetaStore) -> None:
        self._store = store
        raw = store.get(VERSION_KEY)
        self.version = int(raw) if raw else 0

    def get(self, key: str) -> bytes | None:
        return self._store.get(key)

    def put(self, key: str, value: bytes) -> None:
        self.commit({key: value}, ())

    def delete(self, key: str) -> None:
        self.commit({}, (key,))

    def list_prefix(self, prefix: str) -> dict[str, bytes]:
        return self._store.list_prefix(prefix)

    def commit(self, puts: Mapping[str, bytes], deletes: Iterable[str]) -> None:
        self.version += 1
        self._store.commit({**puts, VERSION_KEY: str(self.version).encode()}, deletes)

    def close(self) -> None:
        self._store.close()


class FollowerStore:
    def __init__(self, store: MetaStore) -> None:
        self._store = store

    def version(self) -> int:
        raw = self._store.get(VERSION_KEY)
        return int(raw) if raw else 0

    def get(self, key: str) -> bytes | None:
        return self._store.get(key)

    def put(self, key: str, value: bytes) -> None:
        pass

    def delete(self, key: str) -> None:
        pass

    def list_prefix(self, prefix: str) -> dict[str, bytes]:
        return self._store.list_prefix(prefix)

    def commit(self, puts: Mapping[str, bytes], deletes: Iterable[str]) -> None:
        pass  # only the coordinator writes the catalog

    def close(self) -> None:
        self._store.close()
