"""Sealed segments on disk: one immutable directory per segment, written atomically.

The engine seals a growing segment into a `Batch` and calls `write_segment`; query
paths call `read_segment` and get memory-mapped arrays back. Side files that change
over a segment's life (delete logs, bitsets) go through `write_array_atomic`.
This module knows `shoal.schema` batches, numpy and files; not what a segment means.

Directory layout::

    manifest.json      {"format": 1, "rows": n, "columns": [...], "extra": {...}}
    c<i>.npy           column i when numeric or a dense vector (memory-mappable)
    c<i>.col           column i otherwise (strings, JSON, arrays, sparse) via `codec`
    c<i>.valid.npy     column i's null mask, when it has one

A segment is written under a temporary name beside its final path, every file and the
directory are fsynced, then it is renamed into place: a reader sees all of it or none.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from shoal.errors import Code, ShoalError, invalid
from shoal.schema import Batch, Column
from shoal.storage.codec import decode_batch, encode_batch
from shoal.storage.durable import fsync_dir, write_atomic
from shoal.storage.npy import load_npy

MANIFEST = "manifest.json"
FORMAT = 1
_TMP_MARK = ".shoal-tmp-"
_NUMERIC_KINDS = "biuf"


def _tmp_sibling(path: Path) -> Path:
    return path.with_name(f"{_TMP_MARK}{path.name}.{uuid.uuid4().hex[:12]}")


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, np.ascontiguousarray(arr), allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())


def _load_npy(path: Path, mmap: bool) -> np.ndarray:
    if mmap:
        try:
            # A plain ndarray view keeps the mapping alive without numpy.memmap's quirks.
            return load_npy(path, mmap_mode="r").view(np.ndarray)
        except ValueError:
            pass  # numpy cannot map an array of zero bytes; such arrays are loaded
    return load_npy(path)


def write_segment(directory: Path, batch: Batch, extra: dict[str, Any]) -> None:
    """Write `batch` as a sealed segment at `directory` (which must not exist yet)."""
    directory = Path(directory)
    if directory.exists():
        raise ShoalError(Code.UNEXPECTED, f"segment directory {directory} already exists")
    rows = {len(col) for col in batch.values()}
    if len(rows) > 1:
        raise invalid(f"segment columns have different row counts: {sorted(rows)}")
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(directory)
    tmp.mkdir()
    try:
        columns = []
        for i, (name, col) in enumerate(batch.items()):
            values = col.values
            entry: dict[str, Any] = {"name": name}
            if isinstance(values, np.ndarray) and values.dtype.kind in _NUMERIC_KINDS:
                entry["file"] = f"c{i}.npy"
                entry["dtype"] = values.dtype.str
                entry["shape"] = list(values.shape)
                _save_npy(tmp / entry["file"], values)
            else:
                entry["file"] = f"c{i}.col"
                entry["dtype"] = "object"
                _write_file(tmp / entry["file"], encode_batch({name: Column(values)}))
            if col.valid is not None:
                entry["valid"] = f"c{i}.valid.npy"
                _save_npy(tmp / entry["valid"], np.asarray(col.valid, dtype=np.bool_))
            columns.append(entry)
        manifest = {"format": FORMAT, "rows": rows.pop() if rows else 0, "columns": columns, "extra": extra}
        _write_file(tmp / MANIFEST, json.dumps(manifest, indent=1).encode())
        fsync_dir(tmp)
        os.rename(tmp, directory)
        fsync_dir(directory.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_manifest(directory: Path) -> dict[str, Any]:
    """The segment's manifest (row count, columns, and the writer's `extra`)."""
    path = Path(directory) / MANIFEST
    try:
        manifest = json.loads(path.read_bytes())
    except FileNotFoundError as e:
        raise ShoalError(Code.UNEXPECTED, f"segment {directory} not found (no {MANIFEST})") from e
    except ValueError as e:
        raise ShoalError(Code.UNEXPECTED, f"segment {directory} has a corrupt manifest: {e}") from e
    if manifest.get("format") != FORMAT:
        raise ShoalError(Code.UNEXPECTED, f"segment {directory} has unknown format {manifest.get('format')}")
    return manifest


def read_segment(directory: Path, mmap: bool = True) -> tuple[Batch, dict[str, Any]]:
    """Read a sealed segment: (its batch, the `extra` it was written with).

    With `mmap`, numeric and vector columns are read-only memory maps of the files.
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    batch: Batch = {}
    for entry in manifest["columns"]:
        name = entry["name"]
        if entry["dtype"] == "object":
            decoded = decode_batch((directory / entry["file"]).read_bytes())
            values = decoded[name].values
        else:
            values = _load_npy(directory / entry["file"], mmap)
            if values.dtype.str != entry["dtype"] or list(values.shape) != entry["shape"]:
                raise ShoalError(
                    Code.UNEXPECTED, f"segment {directory}: column {name} does not match its manifest"
                )
        valid = _load_npy(directory / entry["valid"], mmap) if "valid" in entry else None
        if len(values) != manifest["rows"] or (valid is not None and len(valid) != manifest["rows"]):
            raise ShoalError(Code.UNEXPECTED, f"segment {directory}: column {name} has the wrong row count")
        batch[name] = Column(values, valid)
    return batch, manifest["extra"]


def remove_segment(directory: Path) -> None:
    """Delete a segment; it first disappears from its name in one rename. Missing is fine."""
    directory = Path(directory)
    doomed = _tmp_sibling(directory)
    try:
        os.rename(directory, doomed)
    except FileNotFoundError:
        return
    fsync_dir(directory.parent)
    shutil.rmtree(doomed, ignore_errors=True)


def remove_stale_temps(parent: Path) -> int:
    """Remove leftovers of writes interrupted by a crash under `parent`; return how many."""
    parent = Path(parent)
    if not parent.is_dir():
        return 0
    count = 0
    for entry in parent.iterdir():
        if entry.name.startswith(_TMP_MARK):
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
            count += 1
    return count


def write_array_atomic(path: Path, arr: np.ndarray) -> None:
    """Replace the `.npy` file at `path` with `arr`: readers see the old or the new file."""
    path = Path(path)
    if arr.dtype.kind not in _NUMERIC_KINDS:
        raise invalid(f"write_array_atomic takes numeric arrays, got dtype {arr.dtype}")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda f: np.save(f, np.ascontiguousarray(arr), allow_pickle=False), tmp=_tmp_sibling(path))


def read_array(path: Path, mmap: bool = True) -> np.ndarray:
    """Read an array written by `write_array_atomic` (read-only memory map with `mmap`)."""
    try:
        return _load_npy(Path(path), mmap)
    except FileNotFoundError as e:
        raise ShoalError(Code.UNEXPECTED, f"array file {path} not found") from e
