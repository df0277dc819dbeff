"""A catalog reload (a cluster follower re-reading the coordinator's catalog) swaps the maps in
whole: a reader without the lock (the WAL tail looking a collection up) never sees a half-read
or empty catalog, which once made it drop records as if their collection had been dropped."""

from __future__ import annotations

from pathlib import Path

from shoal.engine import open_engine
from shoal.engine.catalog import Catalog
from shoal.schema import CollectionSchema, DataType, FieldSchema
from shoal.storage.meta_store import FileMetaStore


def _schema() -> CollectionSchema:
    return CollectionSchema(fields=[
        FieldSchema("id", DataType.INT64, field_id=100, is_primary=True),
        FieldSchema("v", DataType.FLOAT_VECTOR, field_id=101, dim=4),
    ])


class WatchedStore(FileMetaStore):
    """Checks, at every read of a reload, what a lock-free reader of the catalog sees."""

    catalog: Catalog | None = None
    seen: list[int]

    def list_prefix(self, prefix: str) -> dict[str, bytes]:
        if self.catalog is not None:
            self.seen.append(len(self.catalog.collections))
        return super().list_prefix(prefix)


def test_a_reload_never_shows_a_reader_an_empty_catalog(tmp_path: Path) -> None:
    engine = open_engine(tmp_path / "writer")
    engine.create_collection("", "a", _schema())
    engine.create_collection("", "b", _schema())
    engine.close()
    store = WatchedStore(tmp_path / "writer" / "meta.db")
    store.seen = []
    catalog = Catalog(store)
    assert len(catalog.collections) == 2
    store.catalog = catalog
    catalog.reload()
    assert store.seen and all(n == 2 for n in store.seen), store.seen
    assert sorted(m.name for m in catalog.collections.values()) == ["a", "b"]
