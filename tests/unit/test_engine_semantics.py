"""Engine-level Milvus semantics: one row per primary key, and a drop that stops compaction quietly."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pytest

from shoal.engine import open_engine
from shoal.engine.key_index import KeyIndex, last_of_each
from shoal.engine.requests import QueryRequest
from shoal.schema import CollectionSchema, Column, DataType, FieldSchema, object_array

DIM = 4


def _schema(pk: DataType = DataType.INT64) -> CollectionSchema:
    key = FieldSchema("id", pk, field_id=100, is_primary=True, max_length=32 if pk == DataType.VARCHAR else None)
    return CollectionSchema(
        fields=[
            key,
            FieldSchema("v", DataType.INT64, field_id=101),
            FieldSchema("vec", DataType.FLOAT_VECTOR, field_id=102, dim=DIM),
        ]
    )


def _batch(ids: list, values: list[int]) -> dict[str, Column]:
    keys = object_array(ids) if isinstance(ids[0], str) else np.array(ids, np.int64)
    return {
        "id": Column(keys),
        "v": Column(np.array(values, np.int64)),
        "vec": Column(np.zeros((len(ids), DIM), np.float32)),
    }


def _rows(eng) -> list[tuple]:
    res = eng.query("", "c", QueryRequest(expr="v >= 0", output_fields=["v"]))
    return sorted(zip(res.fields["id"].values.tolist(), res.fields["v"].values.tolist(), strict=True))


def test_key_index_finds_held_keys_across_merged_runs() -> None:
    idx = KeyIndex()
    keys = np.array([], np.int64)
    for start in range(0, 1000, 37):  # many appends: runs merge as they grow
        keys = np.concatenate([keys, np.arange(start, start + 37, dtype=np.int64) * 3])
        probe = np.array([0, 3, 4, start * 3, start * 3 + 1, 10**9], np.int64)
        assert idx.holds(keys, probe).tolist() == [True, True, False, True, False, False]
    assert len(idx._runs) <= 12
    strs = KeyIndex()
    assert strs.holds(object_array(["a", "b"]), object_array(["b", "c"])).tolist() == [True, False]
    assert last_of_each(np.array([1, 2, 3])) is None
    assert last_of_each(np.array([3, 1, 3, 2, 1])).tolist() == [2, 3, 4]
    assert last_of_each(object_array(["a", "b", "a"])).tolist() == [1, 2]


@pytest.mark.parametrize("pk", [DataType.INT64, DataType.VARCHAR])
def test_last_write_wins_in_every_layout_and_after_restart(tmp_path: Path, pk: DataType) -> None:
    key = (lambda i: f"k{i}") if pk == DataType.VARCHAR else (lambda i: i)
    eng = open_engine(tmp_path, {"segment_max_rows": 50})
    eng.create_collection("", "c", _schema(pk))
    eng.load_collection("", "c")
    eng.insert("", "c", "", _batch([key(i) for i in range(120)], [0] * 120), 120)  # sealed + growing
    eng.insert("", "c", "", _batch([key(5), key(5), key(110)], [1, 2, 3]), 3)
    eng.flush("", ["c"])
    eng.insert("", "c", "", _batch([key(6)], [4]), 1)  # growing shadows persisted
    want = {key(i): 0 for i in range(120)} | {key(5): 2, key(110): 3, key(6): 4}
    assert _rows(eng) == sorted(want.items())
    cid = eng.compact("", "c")
    deadline = time.monotonic() + 60
    while eng.compaction_state(cid).state != "Completed":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert _rows(eng) == sorted(want.items())
    eng.insert("", "c", "", _batch([key(7)], [5]), 1)  # only in the WAL
    eng.close()
    eng = open_engine(tmp_path, {"segment_max_rows": 50})
    want[key(7)] = 5
    assert _rows(eng) == sorted(want.items())
    # Statistics count written rows, as Milvus's do: the compaction dropped the older
    # copies, the key 7 written after it is counted twice until the next one.
    assert eng.collection_row_count("", "c") == 121
    eng.close()


def test_a_drop_stops_its_compaction_quietly(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    eng = open_engine(tmp_path, {"segment_max_rows": 1000})
    eng.create_collection("", "c", _schema())
    for start in range(0, 400, 50):  # eight small persisted segments
        eng.insert("", "c", "", _batch(list(range(start, start + 50)), [0] * 50), 50)
        eng.flush("", ["c"])
    caplog.set_level(logging.ERROR, logger="shoal")
    cid = eng.compact("", "c")
    eng.drop_collection("", "c")
    deadline = time.monotonic() + 60
    while eng.compaction_state(cid).state != "Completed":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not (tmp_path / "segments").exists() or not any((tmp_path / "segments").iterdir())
    eng.close()


def test_a_field_added_while_a_segment_is_written_reads_its_default(tmp_path: Path, monkeypatch) -> None:
    """A flush writes a segment's files from a snapshot taken outside the write lock; a field
    added in that window must still read its default once the written twin replaces the segment
    (in a cluster, a follower's catalog poll lands there while its WAL tail applies a FLUSH)."""
    import shoal.engine.persistence as persistence

    eng = open_engine(tmp_path, {"segment_max_rows": 1000})
    eng.create_collection("", "c", _schema())
    eng.load_collection("", "c")
    eng.insert("", "c", "", _batch([1, 2, 3], [0, 0, 0]), 3)
    real_write = persistence.write_segment
    added = FieldSchema("extra", DataType.VARCHAR, max_length=8, nullable=True, default_value="aa")

    def write_while_a_field_is_added(*args, **kwargs):
        if eng.catalog.require("", "c").schema.field("extra") is None:
            eng.add_collection_field("", "c", added)
        return real_write(*args, **kwargs)

    monkeypatch.setattr(persistence, "write_segment", write_while_a_field_is_added)
    eng.flush("", ["c"])
    res = eng.query("", "c", QueryRequest(expr="id >= 0", output_fields=["extra"]))
    assert sorted(zip(res.fields["id"].values.tolist(), res.fields["extra"].values.tolist(), strict=True)) == [
        (1, "aa"), (2, "aa"), (3, "aa")]
    eng.close()
