"""The engine's backup service driven directly: the cut at the backup timestamp.

Writes that land between the timestamp and the flush sit in the flushed segments; a restore
must leave them out (rows inserted after T) or undo them (deletes after T). A flush that
writes first makes that happen every time."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from shoal.engine import open_engine
from shoal.engine.requests import QueryRequest
from shoal.schema import CollectionSchema, Column, DataType, FieldSchema


def _schema() -> CollectionSchema:
    return CollectionSchema(fields=[
        FieldSchema("id", DataType.INT64, field_id=100, is_primary=True),
        FieldSchema("vec", DataType.FLOAT_VECTOR, field_id=101, dim=4),
    ])


def _insert(eng, ids: range) -> None:
    n = len(ids)
    batch = {"id": Column(np.arange(ids.start, ids.stop, dtype=np.int64)),
             "vec": Column(np.full((n, 4), 0.5, np.float32))}
    eng.insert("", "c", "", batch, n)


def _ids(eng, name: str) -> list[int]:
    res = eng.query("", name, QueryRequest(expr="id >= 0", output_fields=["id"], limit=10000))
    return sorted(int(x) for x in res.fields["id"].values)


def test_rows_and_deletes_after_the_timestamp_are_cut_on_restore(tmp_path: Path) -> None:
    eng = open_engine(tmp_path / "a", {"min_index_rows": 100})
    try:
        eng.create_collection("", "c", _schema())
        _insert(eng, range(0, 300))
        eng.flush("", ["c"])
        _insert(eng, range(300, 400))  # growing at T
        eng.delete("", "c", "", "id < 10")
        real_flush = eng.persistence.flush
        calls = []

        def late_flush(meta, data):  # writes between T and the flush's seal
            if not calls:
                calls.append(1)
                _insert(eng, range(1000, 1050))
                eng.delete("", "c", "", "id in [20, 310]")
            return real_flush(meta, data)

        eng.persistence.flush = late_flush
        snap = eng.backups.snapshot("", ["c"])
        eng.persistence.flush = real_flush
        (coll,) = snap["collections"]
        assert coll["rows"] == 400 - 10
        assert any(s["max_ts"] > snap["ts"] for s in coll["segments"])
        # ship the staged files to a second engine, as `shoal backup` does over HTTP
        other = open_engine(tmp_path / "b", {"min_index_rows": 100})
        try:
            plan = {"ts": snap["ts"], "collections": [coll], "renames": {"c": "copy"}}
            rid = other.backups.restore_begin(plan)
            for sha, size in snap["files"].items():
                with open(eng.backups.snapshot_file(snap["id"], sha), "rb") as f:
                    other.backups.restore_put(rid, sha, f, size)
            (done,) = other.backups.restore_commit(rid, plan)
            assert done["name"] == "copy" and done["rows"] == 390
            other.load_collection("", "copy")
            assert _ids(other, "copy") == list(range(10, 400))
        finally:
            other.close()
        eng.backups.release(snap["id"])
        assert not (tmp_path / "a" / "backup-staging" / snap["id"]).exists()
    finally:
        eng.close()
    shutil.rmtree(tmp_path, ignore_errors=True)
