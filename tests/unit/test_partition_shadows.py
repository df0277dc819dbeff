"""A key written into several partitions lives in each (issue 15): engine-level checks of the
shadows that keep a read spanning partitions at one row per key, and of their recompute."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from shoal.engine import open_engine
from shoal.engine.requests import QueryRequest
from shoal.schema import CollectionSchema, Column, DataType, FieldSchema, object_array

DIM = 4


def _schema(pk: DataType) -> CollectionSchema:
    key = FieldSchema("id", pk, field_id=100, is_primary=True, max_length=32 if pk == DataType.VARCHAR else None)
    return CollectionSchema(fields=[
        key, FieldSchema("v", DataType.INT64, field_id=101), FieldSchema("vec", DataType.FLOAT_VECTOR, field_id=102, dim=DIM),
    ])


def _batch(ids: list, values: list[int]) -> dict[str, Column]:
    keys = object_array(ids) if isinstance(ids[0], str) else np.array(ids, np.int64)
    return {"id": Column(keys), "v": Column(np.array(values, np.int64)), "vec": Column(np.zeros((len(ids), DIM), np.float32))}


def _rows(eng, parts: list[str] | None = None) -> list[tuple]:
    req = QueryRequest(expr="v >= 0", output_fields=["v"], partition_names=parts or [])
    res = eng.query("", "c", req)
    return sorted(zip(res.fields["id"].values.tolist(), res.fields["v"].values.tolist(), strict=True))


def _count(eng, parts: list[str] | None = None) -> int:
    return int(eng.query("", "c", QueryRequest(output_fields=["count(*)"], partition_names=parts or [])).count)


def _compact(eng) -> None:
    job = eng.compact("", "c", force=True)
    deadline = time.monotonic() + 60
    while eng.compaction_state(job).state != "Completed":
        assert time.monotonic() < deadline
        time.sleep(0.05)


def _open(path: Path, pk: DataType, fresh: bool):
    eng = open_engine(path, {"segment_max_rows": 50})
    if fresh:
        eng.create_collection("", "c", _schema(pk))
        for p in ("p1", "p2", "p3"):
            eng.create_partition("", "c", p)
    eng.load_collection("", "c")
    return eng


@pytest.mark.parametrize("pk", [DataType.INT64, DataType.VARCHAR])
@pytest.mark.parametrize("flush", [False, True])
def test_a_key_in_two_partitions_reads_per_partition_and_newest_across(tmp_path: Path, pk: DataType, flush: bool) -> None:
    key = (lambda i: f"k{i}") if pk == DataType.VARCHAR else (lambda i: i)
    eng = _open(tmp_path, pk, fresh=True)
    eng.insert("", "c", "p1", _batch([key(i) for i in range(60)], [1] * 60), 60)  # sealed + growing
    eng.insert("", "c", "p2", _batch([key(i) for i in range(100, 160)], [2] * 60), 60)
    eng.upsert("", "c", "p1", _batch([key(0)], [10]), 1)
    eng.upsert("", "c", "p2", _batch([key(0)], [20]), 1)
    eng.insert("", "c", "p3", _batch([key(1)], [30]), 1)  # a plain insert deletes nothing elsewhere
    if flush:
        eng.flush("", ["c"])

    def check(e) -> None:
        assert (key(0), 10) in _rows(e, ["p1"]) and (key(0), 20) in _rows(e, ["p2"])
        assert (key(1), 1) in _rows(e, ["p1"]) and _rows(e, ["p3"]) == [(key(1), 30)]
        everywhere = _rows(e)
        assert len(everywhere) == 120 and (key(0), 20) in everywhere and (key(1), 30) in everywhere
        assert _count(e) == 120 and _count(e, ["p1", "p2"]) == 120 and _count(e, ["p1", "p3"]) == 60
        assert _count(e, ["p1"]) == 60 and _count(e, ["p2"]) == 61

    check(eng)
    eng.close()
    eng = _open(tmp_path, pk, fresh=False)  # shadows are recomputed from the rows loaded
    check(eng)
    _compact(eng)
    check(eng)
    eng.close()


def test_deleting_the_newest_row_in_its_partition_brings_back_the_next_newest(tmp_path: Path) -> None:
    eng = _open(tmp_path, DataType.INT64, fresh=True)
    eng.insert("", "c", "p1", _batch([7], [1]), 1)
    eng.insert("", "c", "p2", _batch([7], [2]), 1)
    eng.insert("", "c", "p3", _batch([7], [3]), 1)
    assert _rows(eng) == [(7, 3)] and _rows(eng, ["p1", "p2"]) == [(7, 2)]
    eng.flush("", ["c"])
    eng.insert("", "c", "p1", _batch([8], [1]), 1)
    eng.insert("", "c", "p2", _batch([8], [2]), 1)
    eng.close(flush=False)
    eng = _open(tmp_path, DataType.INT64, fresh=False)  # 7 recomputed from segments, 8 replayed
    assert _rows(eng) == [(7, 3), (8, 2)] and _rows(eng, ["p1", "p2"]) == [(7, 2), (8, 2)]
    assert _rows(eng, ["p1", "p3"]) == [(7, 3), (8, 1)]
    eng.delete("", "c", "p3", "id in [7]")
    assert _rows(eng) == [(7, 2), (8, 2)] and _rows(eng, ["p3"]) == []
    eng.delete("", "c", "p2", "v >= 0")  # by a filter: the rows p2 holds
    assert _rows(eng) == [(7, 1), (8, 1)]
    eng.insert("", "c", "p2", _batch([7], [4]), 1)
    eng.delete("", "c", "", "id in [7, 8]")  # no partition: every row of the key
    assert _rows(eng) == [] and _count(eng) == 0
    eng.close()


def test_an_auto_id_upsert_deletes_its_old_key_only_in_its_partition(tmp_path: Path) -> None:
    schema = _schema(DataType.INT64)
    schema.fields[0].auto_id = True
    eng = open_engine(tmp_path, {})
    eng.create_collection("", "c", schema)
    eng.create_partition("", "c", "p1")
    eng.load_collection("", "c")
    batch = _batch([0], [1])
    del batch["id"]
    ids = eng.insert("", "c", "_default", batch, 1).ids
    eng.upsert("", "c", "p1", _batch([int(ids[0])], [2]), 1)
    assert [v for _, v in _rows(eng)] == [1, 2]  # the old key lives on in _default
    eng.upsert("", "c", "_default", _batch([int(ids[0])], [3]), 1)
    assert sorted(v for _, v in _rows(eng)) == [2, 3]
    eng.close()
