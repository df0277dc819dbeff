"""Sealed segment directories: round trips, memory maps, atomic writes and removal."""

from __future__ import annotations

import mmap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_storage_codec import assert_same_batch, every_type_batch

from shoal.errors import ShoalError
from shoal.schema import Column, object_array
from shoal.storage.segment_files import (
    read_array,
    read_manifest,
    read_segment,
    remove_segment,
    remove_stale_temps,
    write_array_atomic,
    write_segment,
)


def is_memory_mapped(arr: np.ndarray) -> bool:
    base: Any = arr
    while base is not None:
        if isinstance(base, mmap.mmap):
            return True
        base = getattr(base, "base", None)
    return False


def test_segment_round_trips_every_type_with_memory_maps(tmp_path: Path) -> None:
    batch = every_type_batch()
    extra = {"segment_id": 7, "collection": "books", "min_ts": 1, "max_ts": 2**60}
    seg = tmp_path / "segments" / "7"
    write_segment(seg, batch, extra)

    got, got_extra = read_segment(seg)
    assert got_extra == extra
    assert_same_batch(got, batch)
    assert is_memory_mapped(got["vec"].values)
    assert is_memory_mapped(got["pk"].values)
    assert not got["vec"].values.flags.writeable
    assert type(got["vec"].values) is np.ndarray  # not numpy.memmap
    assert (seg / "c0.npy").exists()  # dense columns are plain .npy files
    assert np.load(seg / "c0.npy").tolist() == batch["pk"].values.tolist()

    loaded, _ = read_segment(seg, mmap=False)
    assert_same_batch(loaded, batch)
    assert not is_memory_mapped(loaded["vec"].values)
    assert read_manifest(seg)["rows"] == 5


def test_zero_row_segment(tmp_path: Path) -> None:
    batch = {"pk": Column(np.zeros(0, np.int64)), "v": Column(np.zeros((0, 4), np.float32))}
    write_segment(tmp_path / "s", batch, {})
    got, extra = read_segment(tmp_path / "s")
    assert_same_batch(got, batch)
    assert extra == {}


def test_segments_are_immutable(tmp_path: Path) -> None:
    batch = {"pk": Column(np.arange(3))}
    write_segment(tmp_path / "s", batch, {"v": 1})
    with pytest.raises(ShoalError):
        write_segment(tmp_path / "s", {"pk": Column(np.arange(5))}, {"v": 2})
    got, extra = read_segment(tmp_path / "s")
    assert got["pk"].values.tolist() == [0, 1, 2] and extra == {"v": 1}


def test_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    bad = {"pk": Column(np.arange(2)), "odd": Column(object_array([{1, 2}, None]))}
    with pytest.raises(ShoalError):
        write_segment(tmp_path / "s", bad, {})
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ShoalError):
        write_segment(tmp_path / "t", {"a": Column(np.arange(2)), "b": Column(np.arange(3))}, {})
    assert list(tmp_path.iterdir()) == []


def test_interrupted_write_is_invisible_and_cleaned_up(tmp_path: Path) -> None:
    write_segment(tmp_path / "s1", {"pk": Column(np.arange(3))}, {})
    # What a crash mid-write leaves: a temp directory beside the segments.
    leftover = tmp_path / ".shoal-tmp-s2.0123456789ab"
    leftover.mkdir()
    (leftover / "c0.npy").write_bytes(b"partial")
    with pytest.raises(ShoalError):
        read_segment(tmp_path / "s2")
    assert remove_stale_temps(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s1"]


def test_remove_segment(tmp_path: Path) -> None:
    write_segment(tmp_path / "s", {"pk": Column(np.arange(3))}, {})
    mapped, _ = read_segment(tmp_path / "s")
    remove_segment(tmp_path / "s")
    assert list(tmp_path.iterdir()) == []
    assert mapped["pk"].values.tolist() == [0, 1, 2]  # open maps stay readable
    remove_segment(tmp_path / "s")  # already gone: fine


def test_side_arrays_are_replaced_atomically(tmp_path: Path) -> None:
    path = tmp_path / "s" / "deletes.npy"
    write_array_atomic(path, np.array([5, 9], dtype=np.int64))
    first = read_array(path)
    write_array_atomic(path, np.array([5, 9, 11], dtype=np.int64))
    assert first.tolist() == [5, 9]  # a reader of the old file is unaffected
    assert read_array(path).tolist() == [5, 9, 11]
    assert read_array(path, mmap=False).flags.writeable
    assert sorted(p.name for p in path.parent.iterdir()) == ["deletes.npy"]
    with pytest.raises(ShoalError):
        read_array(tmp_path / "missing.npy")
    with pytest.raises(ShoalError):
        write_array_atomic(path, object_array(["x"]))
