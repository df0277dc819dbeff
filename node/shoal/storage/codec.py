"""Self-describing binary encoding of columnar batches and small records (no pickle).

Used by the WAL (one record per insert/delete) and by segment files (object columns).
Knows only `shoal.schema` types and numpy; nothing about the engine, files or the WAL.

Layout of an encoded document::

    b"SHC1" | header_len u32 LE | header (UTF-8 JSON) | pad to 8 | buffers, each 8-aligned

The header is a JSON tree that describes the document and points at buffers by number
(`"bufs"` lists each buffer's offset and length, relative to the first buffer). Numeric
and dense-vector arrays are stored as raw little-endian bytes plus dtype and shape and
decode with `np.frombuffer` without copying, so decoded arrays are read-only views of
the input. Object columns are stored compactly:

| column content                          | stored as                                     |
|-----------------------------------------|-----------------------------------------------|
| sparse rows (dict[int, float], or None) | row lengths + uint32/int64 indices + f32/f64 |
| anything else (str, JSON values, lists) | one JSON array of the rows (UTF-8)            |

Sparse values are stored as float32 only when that is exact, so round trips are
bit-exact. Object values must be JSON-representable (dicts with str keys, lists,
str, int, float, bool, None); numpy scalars inside them decode as Python numbers, and
a NaN inside a JSON value comes back as the canonical NaN (JSON text has only one).
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

from shoal.errors import ShoalError, invalid
from shoal.schema import Batch, Column, object_array

MAGIC = b"SHC1"
_PREFIX = struct.Struct("<4sI")
_ALIGN = 8
_MARK = "\u0000shoal"  # key of a marker object standing for an array or a batch in a record
_NUMERIC_KINDS = "biuf"


def _pad(n: int) -> int:
    return -n % _ALIGN


class _Writer:
    """Collects buffers and hands out their numbers."""

    def __init__(self) -> None:
        self.parts: list[bytes | memoryview] = []
        self.spans: list[tuple[int, int]] = []
        self.size = 0

    def add(self, data: bytes | memoryview) -> int:
        length = len(data) if isinstance(data, bytes) else data.nbytes
        self.spans.append((self.size, length))
        self.parts.append(data)
        self.size += length
        pad = _pad(length)
        if pad:
            self.parts.append(b"\0" * pad)
            self.size += pad
        return len(self.spans) - 1

    def add_array(self, arr: np.ndarray) -> dict[str, Any]:
        if arr.dtype.kind not in _NUMERIC_KINDS:
            raise invalid(f"cannot encode an array of dtype {arr.dtype}")
        if arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        arr = np.ascontiguousarray(arr)
        raw = memoryview(arr.reshape(-1).view(np.uint8))
        return {"dtype": arr.dtype.str, "shape": list(arr.shape), "b": self.add(raw)}

    def finish(self, tree: Any) -> bytes:
        header = json.dumps({"root": tree, "bufs": self.spans}, separators=(",", ":")).encode()
        head = _PREFIX.pack(MAGIC, len(header)) + header
        return b"".join([head, b"\0" * _pad(len(head)), *self.parts])


class _Reader:
    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        if view.nbytes < _PREFIX.size:
            raise _corrupt("too short")
        magic, header_len = _PREFIX.unpack_from(view, 0)
        if magic != MAGIC:
            raise _corrupt("bad magic")
        end = _PREFIX.size + header_len
        if end > view.nbytes:
            raise _corrupt("header past the end")
        try:
            header = json.loads(bytes(view[_PREFIX.size : end]))
            self.root = header["root"]
            self.spans: list[list[int]] = header["bufs"]
        except (ValueError, KeyError, TypeError) as e:
            raise _corrupt(f"bad header: {e}") from e
        self.view = view
        self.base = end + _pad(end)
        for off, length in self.spans:
            if self.base + off + length > view.nbytes:
                raise _corrupt("buffer past the end")

    def buffer(self, index: int) -> memoryview:
        off, length = self.spans[index]
        start = self.base + off
        return self.view[start : start + length]

    def array(self, desc: dict[str, Any]) -> np.ndarray:
        dtype = np.dtype(desc["dtype"])
        if dtype.kind not in _NUMERIC_KINDS:
            raise _corrupt(f"dtype {dtype}")
        shape = tuple(desc["shape"])
        off, length = self.spans[desc["b"]]
        count = int(np.prod(shape, dtype=np.int64))
        if count * dtype.itemsize != length:
            raise _corrupt("array size does not match its shape")
        return np.frombuffer(self.view, dtype=dtype, count=count, offset=self.base + off).reshape(shape)


def _corrupt(why: str) -> ShoalError:
    return invalid(f"cannot decode shoal record: {why}")


# ---- object columns ---------------------------------------------------------------


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise invalid(f"value of type {type(obj).__name__} cannot be stored in a JSON/ARRAY/VARCHAR column")


def _dumps(value: Any) -> bytes:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_json_default)
    return text.encode("utf-8", "surrogatepass")


def _loads(data: memoryview) -> Any:
    return json.loads(bytes(data).decode("utf-8", "surrogatepass"))


def _looks_sparse(values: np.ndarray) -> bool:
    """True when every row is a dict (or None) and the non-empty dicts have int keys."""
    seen_dict = False
    for row in values:
        if row is None:
            continue
        if type(row) is not dict:
            return False
        seen_dict = True
        for key in row:
            if not isinstance(key, (int, np.integer)) or isinstance(key, bool):
                return False
            break
    return seen_dict


def _exact_f32(vals: np.ndarray) -> bool:
    """True when float32 holds every value bit-exactly (NaN payloads and signs included)."""
    with np.errstate(over="ignore", invalid="ignore"):
        back = vals.astype(np.float32).astype(np.float64)
    return bool(np.array_equal(back.view(np.uint64), vals.view(np.uint64)))


def _encode_sparse(w: _Writer, values: np.ndarray) -> dict[str, Any]:
    lengths = np.fromiter((0 if r is None else len(r) for r in values), dtype=np.int64, count=len(values))
    total = int(lengths.sum())
    keys = [k for r in values if r for k in r]
    vals_list = [v for r in values if r for v in r.values()]
    if not all(isinstance(k, (int, np.integer)) and not isinstance(k, bool) for k in keys) or not all(
        isinstance(v, (float, int, np.floating, np.integer)) and not isinstance(v, bool) for v in vals_list
    ):
        raise invalid("a sparse vector must map int indices to float values")
    try:
        idx = np.array(keys, dtype=np.int64).reshape(total)
    except OverflowError as e:
        raise invalid(f"sparse index out of range: {e}") from e
    vals = np.array(vals_list, dtype=np.float64).reshape(total)
    if total and idx.min() >= 0 and idx.max() < 2**32:
        idx = idx.astype(np.uint32)
    if _exact_f32(vals):
        vals = vals.astype(np.float32)
    desc: dict[str, Any] = {
        "k": "sparse",
        "lengths": w.add_array(lengths.astype(np.uint32) if total < 2**32 else lengths),
        "idx": w.add_array(idx),
        "vals": w.add_array(vals),
    }
    nones = np.fromiter((r is None for r in values), dtype=np.bool_, count=len(values))
    if nones.any():
        desc["none"] = w.add_array(nones)
    return desc


def _decode_sparse(r: _Reader, desc: dict[str, Any]) -> np.ndarray:
    lengths = r.array(desc["lengths"]).astype(np.int64)
    idx = r.array(desc["idx"]).tolist()
    vals = r.array(desc["vals"]).tolist()
    nones = r.array(desc["none"]) if "none" in desc else None
    ends = np.cumsum(lengths).tolist()
    rows: list[Any] = []
    start = 0
    for i, end in enumerate(ends):
        if nones is not None and nones[i]:
            rows.append(None)
        else:
            rows.append(dict(zip(idx[start:end], vals[start:end], strict=True)))
        start = end
    return object_array(rows)


# ---- columns and batches ----------------------------------------------------------


def _encode_column(w: _Writer, col: Column) -> dict[str, Any]:
    values = col.values
    if not isinstance(values, np.ndarray):
        raise invalid(f"column values must be a numpy array, got {type(values).__name__}")
    if values.dtype.kind in _NUMERIC_KINDS:
        desc = {"k": "nd", **w.add_array(values)}
    elif values.dtype.kind == "O":
        if values.ndim != 1:
            raise invalid("object columns must be one-dimensional")
        if _looks_sparse(values):
            desc = _encode_sparse(w, values)
        else:
            desc = {"k": "json", "n": len(values), "b": w.add(_dumps(values.tolist()))}
    else:
        raise invalid(f"cannot encode a column of dtype {values.dtype}")
    if col.valid is not None:
        desc["valid"] = w.add_array(np.asarray(col.valid, dtype=np.bool_))
    return desc


def _decode_column(r: _Reader, desc: dict[str, Any]) -> Column:
    kind = desc.get("k")
    if kind == "nd":
        values = r.array(desc)
    elif kind == "sparse":
        values = _decode_sparse(r, desc)
    elif kind == "json":
        rows = _loads(r.buffer(desc["b"]))
        if not isinstance(rows, list) or len(rows) != desc["n"]:
            raise _corrupt("json column length")
        values = object_array(rows)
    else:
        raise _corrupt(f"unknown column kind {kind!r}")
    valid = r.array(desc["valid"]) if "valid" in desc else None
    if valid is not None and len(valid) != len(values):
        raise _corrupt("valid mask length")
    return Column(values, valid)


def _encode_batch_tree(w: _Writer, batch: Batch) -> dict[str, Any]:
    return {"cols": [[name, _encode_column(w, col)] for name, col in batch.items()]}


def _decode_batch_tree(r: _Reader, tree: dict[str, Any]) -> Batch:
    return {name: _decode_column(r, desc) for name, desc in tree["cols"]}


def encode_batch(batch: Batch) -> bytes:
    """Encode a batch (column order, dtypes, shapes, nulls and masks all preserved)."""
    w = _Writer()
    return w.finish({"batch": _encode_batch_tree(w, batch)})


def decode_batch(data: bytes | bytearray | memoryview) -> Batch:
    """Decode `encode_batch` output; numeric columns are read-only views of `data`."""
    try:
        r = _Reader(data)
        if not isinstance(r.root, dict) or "batch" not in r.root:
            raise _corrupt("not a batch")
        return _decode_batch_tree(r, r.root["batch"])
    except (KeyError, TypeError, IndexError, ValueError, struct.error) as e:
        raise _corrupt(str(e)) from e


# ---- small records ----------------------------------------------------------------


def _encode_value(w: _Writer, value: Any) -> Any:
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "O":
            return {_MARK: "obj", **_encode_column(w, Column(value))}
        return {_MARK: "nd", **w.add_array(value)}
    if isinstance(value, Column):
        return {_MARK: "col", **_encode_column(w, value)}
    if isinstance(value, dict):
        if value and all(isinstance(v, Column) for v in value.values()):
            return {_MARK: "batch", **_encode_batch_tree(w, value)}
        if not all(isinstance(k, str) for k in value):
            raise invalid("record keys must be str")
        if _MARK in value:
            raise invalid(f"record keys may not be {_MARK!r}")
        return {k: _encode_value(w, v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode_value(w, v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, bytes):
        return {_MARK: "bytes", "b": w.add(value)}
    raise invalid(f"cannot encode a value of type {type(value).__name__} in a record")


def _decode_value(r: _Reader, value: Any) -> Any:
    if isinstance(value, list):
        return [_decode_value(r, v) for v in value]
    if not isinstance(value, dict):
        return value
    tag = value.get(_MARK)
    if tag is None:
        return {k: _decode_value(r, v) for k, v in value.items()}
    if tag == "nd":
        return r.array(value)
    if tag == "col":
        return _decode_column(r, value)
    if tag == "obj":
        return _decode_column(r, value).values
    if tag == "batch":
        return _decode_batch_tree(r, value)
    if tag == "bytes":
        return bytes(r.buffer(value["b"]))
    raise _corrupt(f"unknown marker {tag!r}")


def encode_record(record: dict[str, Any]) -> bytes:
    """Encode a small dict (e.g. a WAL entry). Values may be JSON-like data, `bytes`,
    numpy arrays, `Column`s or whole batches (a non-empty dict of `Column`)."""
    if not isinstance(record, dict):
        raise invalid("a record must be a dict")
    w = _Writer()
    return w.finish({"record": _encode_value(w, record)})


def decode_record(data: bytes | bytearray | memoryview) -> dict[str, Any]:
    """Decode `encode_record` output; arrays are read-only views of `data`."""
    try:
        r = _Reader(data)
        if not isinstance(r.root, dict) or "record" not in r.root:
            raise _corrupt("not a record")
        return _decode_value(r, r.root["record"])
    except (KeyError, TypeError, IndexError, ValueError, struct.error) as e:
        raise _corrupt(str(e)) from e
