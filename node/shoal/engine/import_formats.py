"""Bulk-import files → raw batches, in the layouts pymilvus's `bulk_writer` writes.

One file group is one unit of an import request: a single `.json` (`{"rows": [...]}` or a
list of rows), `.jsonl`, `.parquet` or `.csv` file, or one `.npy` file per field.
`read_group(paths, schema)` yields `Chunk`s of at most `CHUNK_ROWS` rows: a `Batch` of raw
columns (not yet checked against the schema: `validation.normalize_insert` does that),
where the chunk starts in its file, and how much of the group has been read (for
progress). Parquet is streamed by row group through pyarrow and NumPy files are
memory-mapped, so neither is ever loaded whole. Errors name the file, row and field.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from shoal.errors import invalid, not_supported
from shoal.schema import (
    DYNAMIC_FIELD,
    SCALAR_DTYPES,
    VECTOR_DTYPES,
    Batch,
    CollectionSchema,
    Column,
    DataType,
    FieldSchema,
    object_array,
)
from shoal.storage.npy import load_npy

CHUNK_ROWS = 65_536
FORMATS = (".json", ".jsonl", ".parquet", ".csv", ".npy")


@dataclass
class Chunk:
    batch: Batch
    num_rows: int
    file: str
    first_row: int  # 0-based row of the file the chunk starts at
    done: float  # share of the group read once this chunk is consumed, 0..1


class ImportFileError(Exception):
    """A problem with an import file; the message names file, row and field where known."""


def fail(path: str, message: str, row: int | None = None, field: str | None = None) -> ImportFileError:
    where = path.strip("<>") if path.startswith("<") else f"file {os.path.basename(path)}"
    if row is not None:  # 0-based in the code, counted from 1 for people
        where += f", row {row + 1}"
    if field is not None:
        where += f", field {field}"
    return ImportFileError(f"{where}: {message}")


def input_fields(schema: CollectionSchema) -> list[FieldSchema]:
    """The fields an import file carries: all but an auto_id key and function outputs."""
    return [
        f for f in schema.fields
        if not (f.is_primary and f.auto_id) and not f.is_dynamic and not getattr(f, "is_function_output", False)
    ]


def group_format(paths: list[str]) -> str:
    remote = next((p for p in paths if "://" in p), None)
    if remote is not None:
        raise not_supported(f"import from object storage ({remote}); give paths on the server's file system")
    exts = {os.path.splitext(p)[1].lower() for p in paths}
    if len(exts) != 1 or next(iter(exts)) not in FORMATS:
        raise invalid(f"unsupported import files {paths}: expected one .json, .jsonl, .parquet or .csv file, "
                      "or one .npy file per field")
    ext = exts.pop()
    if ext != ".npy" and len(paths) != 1:
        raise invalid(f"a {ext} import takes one file per group, got {len(paths)}")
    return ext


def read_group(paths: list[str], schema: CollectionSchema, options: dict[str, str]) -> Iterator[Chunk]:
    ext = group_format(paths)
    for p in paths:
        if not os.path.isfile(p):
            raise fail(p, "no such file")
    if ext == ".parquet":
        yield from _parquet(paths[0], schema)
    elif ext == ".npy":
        yield from _numpy(paths, schema)
    elif ext == ".csv":
        yield from _csv(paths[0], schema, options)
    else:
        yield from _json(paths[0], schema, ext == ".jsonl")


def group_rows(paths: list[str]) -> int | None:
    """Rows in a group when the files say so without reading them (Parquet, NumPy)."""
    ext = group_format(paths)
    if ext == ".parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(paths[0]).metadata.num_rows)
    if ext == ".npy":
        return int(load_npy(paths[0], mmap_mode="r").shape[0]) if paths else 0
    return None


# ---------------------------------------------------------------- value conversion

def _bf16_bits(values: np.ndarray) -> np.ndarray:
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)


def _is_16bit_bytes(f: FieldSchema, arr: np.ndarray) -> bool:
    """bulk_writer stores FLOAT16/BFLOAT16 vectors given as arrays as their raw bytes (uint8, 2 per element)."""
    return f.dtype in (DataType.FLOAT16_VECTOR, DataType.BFLOAT16_VECTOR) and arr.dtype == np.uint8


def dense_width(f: FieldSchema, arr: np.ndarray) -> int:
    """Elements per row `arr` must have for `f`."""
    return 2 * f.vector_width() if _is_16bit_bytes(f, arr) else f.vector_width()


def dense_from_floats(f: FieldSchema, arr: np.ndarray) -> np.ndarray:
    """A 2-d array of numbers (or of 16-bit vectors' bytes) → the stored layout of `f`'s vector type."""
    if _is_16bit_bytes(f, arr):
        return np.ascontiguousarray(arr).view(VECTOR_DTYPES[f.dtype])
    if f.dtype is DataType.FLOAT16_VECTOR:
        return arr.astype(np.float16)
    if f.dtype is DataType.BFLOAT16_VECTOR:
        return _bf16_bits(arr)
    if f.dtype is DataType.BINARY_VECTOR:
        return arr.astype(np.uint8)
    if f.dtype is DataType.INT8_VECTOR:
        return arr.astype(np.int8)
    return arr.astype(np.float32, copy=False)


def _sparse(value: Any) -> dict[int, float]:
    if isinstance(value, dict) and set(value) == {"indices", "values"}:
        return {int(k): float(v) for k, v in zip(value["indices"], value["values"], strict=True)}
    if isinstance(value, dict):
        return {int(k): float(v) for k, v in value.items()}
    raise ValueError("a sparse vector must be an object of index: value")


def column_from_values(f: FieldSchema, values: list[Any]) -> Column:
    """Python values of one field (None = null) → a raw Column in the field's layout."""
    n = len(values)
    valid = np.array([v is not None for v in values], dtype=bool)
    dt = f.dtype
    if dt in SCALAR_DTYPES:
        filled = [v if v is not None else 0 for v in values]
        if dt is DataType.BOOL:
            filled = [v if v is not None else False for v in values]
        arr = object_array(filled) if not filled or any(isinstance(v, (str, list, dict)) for v in filled) else np.array(filled)
        return Column(arr, None if valid.all() else valid)
    if dt.is_dense_vector:
        width = f.vector_width()
        rows = [v if v is not None else [0] * width for v in values]
        lengths = {len(r) for r in rows}
        if len(lengths) > 1 or (lengths and lengths.pop() != width):
            bad = next(i for i, r in enumerate(rows) if len(r) != width)
            raise ValueError(f"row {bad}: the vector has {len(rows[bad])} elements, the schema wants {width} (dim {f.dim})")
        arr = np.array(rows, dtype=np.float64 if dt is not DataType.BINARY_VECTOR else np.int64).reshape(n, width)
        return Column(dense_from_floats(f, arr), None if valid.all() else valid)
    if dt is DataType.SPARSE_FLOAT_VECTOR:
        return Column(object_array([_sparse(v) if v is not None else {} for v in values]),
                      None if valid.all() else valid)
    return Column(object_array(list(values)), None if valid.all() else valid)


def _from_text(f: FieldSchema, value: Any) -> Any:
    """Values Parquet, NumPy and CSV carry as JSON text (JSON, sparse; CSV: everything non-scalar)."""
    if isinstance(value, str) and (f.dtype in (DataType.JSON, DataType.SPARSE_FLOAT_VECTOR, DataType.ARRAY)
                                   or f.dtype.is_dense_vector):
        return json.loads(value)
    return value


def rows_to_batch(
    path: str, schema: CollectionSchema, rows: list[Any], first_row: int = 0, with_auto_id: bool = False,
    partial: bool = False,
) -> Batch:
    """Rows as JSON objects → raw columns. The RESTful API's insert and upsert use it too (`path`
    "<request>" names no file; an upsert carries the keys even of an auto_id collection)."""
    fields = input_fields(schema)
    pk = schema.primary_field
    if with_auto_id and pk.auto_id:
        fields = [pk, *fields]
    names = {f.name for f in fields}
    if partial:  # a partial upsert: the fields no row names stay out of the batch
        fields = [f for f in fields if f.is_primary or any(isinstance(r, dict) and f.name in r for r in rows)]
    dynamic = schema.enable_dynamic_field
    columns: dict[str, list[Any]] = {f.name: [] for f in fields}
    metas: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise fail(path, "a row must be a JSON object", first_row + i)
        for f in fields:
            if f.name not in row and f.default_value is None and not f.nullable:
                raise fail(path, "the field is missing", first_row + i, f.name)
            columns[f.name].append(row.get(f.name))
        if dynamic:
            meta = dict(row.get(DYNAMIC_FIELD) or {})
            meta.update({k: v for k, v in row.items() if k not in names and k != DYNAMIC_FIELD})
            metas.append(meta)
        else:
            extra = next((k for k in row if k not in names), None)
            if extra is not None and not (schema.primary_field.auto_id and extra == schema.primary_field.name):
                raise fail(path, "the collection has no such field and no dynamic field", first_row + i, extra)
    batch = _convert(path, fields, columns)
    if dynamic:
        batch[DYNAMIC_FIELD] = Column(object_array(metas))
    return batch


def _convert(path: str, fields: list[FieldSchema], columns: dict[str, list[Any]]) -> Batch:
    batch: Batch = {}
    for f in fields:
        try:
            batch[f.name] = column_from_values(f, columns[f.name])
        except (ValueError, TypeError) as e:
            raise fail(path, f"cannot read the value as {f.dtype.name}: {e}", None, f.name) from None
    return batch


# ---------------------------------------------------------------- formats

def _json(path: str, schema: CollectionSchema, lines: bool) -> Iterator[Chunk]:
    size = max(1, os.path.getsize(path))
    if lines:
        with open(path, encoding="utf-8") as fh:
            rows: list[Any] = []
            start = 0
            for i, line in enumerate(fh):
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise fail(path, f"invalid JSON: {e.msg}", i) from None
                if len(rows) == CHUNK_ROWS:
                    yield Chunk(rows_to_batch(path, schema, rows, start), len(rows), path, start, fh.tell() / size)
                    start += len(rows)
                    rows = []
            if rows:
                yield Chunk(rows_to_batch(path, schema, rows, start), len(rows), path, start, 1.0)
        return
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except json.JSONDecodeError as e:
        raise fail(path, f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except UnicodeDecodeError:
        raise fail(path, "the file is not UTF-8 text") from None
    rows = doc.get("rows") if isinstance(doc, dict) else doc
    if not isinstance(rows, list):
        raise fail(path, 'expected a list of rows or an object {"rows": [...]}')
    total = max(1, len(rows))
    for start in range(0, len(rows), CHUNK_ROWS):
        part = rows[start:start + CHUNK_ROWS]
        yield Chunk(rows_to_batch(path, schema, part, start), len(part), path, start, (start + len(part)) / total)


def _parquet(path: str, schema: CollectionSchema) -> Iterator[Chunk]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise fail(path, f"not a readable Parquet file: {e}") from None
    fields = input_fields(schema)
    present = set(pf.schema_arrow.names)
    for f in fields:
        if f.name not in present and f.default_value is None and not f.nullable:
            raise fail(path, "the field is missing", None, f.name)
    known = {f.name for f in fields}
    extra = [c for c in present if c not in known and c != DYNAMIC_FIELD]
    if extra and not schema.enable_dynamic_field:
        raise fail(path, "the collection has no such field and no dynamic field", None, extra[0])
    total = max(1, pf.metadata.num_rows)
    start = 0
    for rb in pf.iter_batches(batch_size=CHUNK_ROWS):
        n = rb.num_rows
        batch: Batch = {}
        for f in fields:
            if f.name not in present:
                batch[f.name] = column_from_values(f, [None] * n)
                continue
            try:
                batch[f.name] = _arrow_column(f, rb.column(f.name), n)
            except (ValueError, TypeError, pa.ArrowException, json.JSONDecodeError) as e:
                raise fail(path, f"cannot read the column as {f.dtype.name}: {e}", None, f.name) from None
        if schema.enable_dynamic_field:
            batch[DYNAMIC_FIELD] = _arrow_meta(path, rb, present, extra, n, start)
        start += n
        yield Chunk(batch, n, path, start - n, start / total)


def _arrow_column(f: FieldSchema, col: Any, n: int) -> Column:
    import pyarrow as pa
    import pyarrow.compute as pc

    nulls = col.null_count
    valid = None if not nulls else np.asarray(col.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    is_list = pa.types.is_list(col.type) or pa.types.is_large_list(col.type) or pa.types.is_fixed_size_list(col.type)
    if f.dtype.is_dense_vector and not nulls and is_list:
        flat = col.flatten().to_numpy(zero_copy_only=False)
        width = dense_width(f, flat)
        lengths = pc.list_value_length(col)
        if pc.min(lengths).as_py() != width or pc.max(lengths).as_py() != width:
            bad = next(i for i, v in enumerate(lengths.to_pylist()) if v != width)
            raise ValueError(f"row {bad} of the chunk: a vector has {lengths[bad].as_py()} elements, "
                             f"the schema wants {width} (dim {f.dim})")
        return Column(dense_from_floats(f, flat.reshape(n, width)), valid)
    if f.dtype in SCALAR_DTYPES and not pa.types.is_string(col.type):
        arr = col.fill_null(False if f.dtype is DataType.BOOL else 0) if nulls else col
        return Column(arr.to_numpy(zero_copy_only=False), valid)
    values = [_from_text(f, v) for v in col.to_pylist()]
    return column_from_values(f, values)


def _arrow_meta(path: str, rb: Any, present: set[str], extra: list[str], n: int, start: int) -> Column:
    metas: list[dict[str, Any]] = [{} for _ in range(n)]
    if DYNAMIC_FIELD in present:
        for i, v in enumerate(rb.column(DYNAMIC_FIELD).to_pylist()):
            if v is None:
                continue
            try:
                got = json.loads(v) if isinstance(v, str) else v
            except json.JSONDecodeError as e:
                raise fail(path, f"invalid JSON: {e.msg}", start + i, DYNAMIC_FIELD) from None
            if not isinstance(got, dict):
                raise fail(path, "the dynamic field must be a JSON object", start + i, DYNAMIC_FIELD)
            metas[i].update(got)
    for name in extra:
        for i, v in enumerate(rb.column(name).to_pylist()):
            if v is not None:
                metas[i][name] = v
    return Column(object_array(metas))


def _numpy(paths: list[str], schema: CollectionSchema) -> Iterator[Chunk]:
    by_name = {os.path.splitext(os.path.basename(p))[0]: p for p in paths}
    fields = input_fields(schema)
    known = {f.name for f in fields} | {DYNAMIC_FIELD}
    for name, p in by_name.items():
        if name not in known:
            raise fail(p, "the collection has no field of this file's name", None, name)
    arrays: dict[str, np.ndarray] = {}
    for f in fields + ([FieldSchema(name=DYNAMIC_FIELD, dtype=DataType.JSON)] if schema.enable_dynamic_field else []):
        p = by_name.get(f.name)
        if p is None:
            if f.name == DYNAMIC_FIELD or f.default_value is not None or f.nullable:
                continue
            raise fail(paths[0], "no .npy file for the field", None, f.name)
        try:
            arrays[f.name] = load_npy(p, mmap_mode="r")
        except ValueError as e:
            if "Python objects" in str(e):  # what np.save writes for a column with None in it
                raise fail(p, "holds Python objects (null values?); a .npy import takes plain arrays only, "
                           "nulls need JSON, Parquet or CSV", None, f.name) from None
            raise fail(p, f"not a readable .npy file: {e}", None, f.name) from None
        except OSError as e:
            raise fail(p, f"not a readable .npy file: {e}", None, f.name) from None
    counts = {name: a.shape[0] if a.ndim else 0 for name, a in arrays.items()}
    if len(set(counts.values())) > 1:
        raise invalid(f"import: the .npy files have different row counts: {counts}")
    total = next(iter(counts.values()), 0)
    for start in range(0, total, CHUNK_ROWS):
        stop = min(total, start + CHUNK_ROWS)
        n = stop - start
        batch: Batch = {}
        for f in fields:
            arr = arrays.get(f.name)
            if arr is None:
                batch[f.name] = column_from_values(f, [None] * n)
                continue
            try:
                batch[f.name] = _numpy_column(f, arr[start:stop], n)
            except (ValueError, TypeError, json.JSONDecodeError) as e:
                raise fail(by_name[f.name], f"cannot read the values as {f.dtype.name}: {e}", None, f.name) from None
        if DYNAMIC_FIELD in arrays:
            metas = []
            for i, v in enumerate(arrays[DYNAMIC_FIELD][start:stop].tolist()):
                try:
                    got = json.loads(v) if isinstance(v, str) else v
                except json.JSONDecodeError as e:
                    raise fail(by_name[DYNAMIC_FIELD], f"invalid JSON: {e.msg}", start + i, DYNAMIC_FIELD) from None
                metas.append(got if isinstance(got, dict) else {})
            batch[DYNAMIC_FIELD] = Column(object_array(metas))
        elif schema.enable_dynamic_field:
            batch[DYNAMIC_FIELD] = Column(object_array([{} for _ in range(n)]))
        yield Chunk(batch, n, paths[0], start, stop / max(1, total))


def _numpy_column(f: FieldSchema, arr: np.ndarray, n: int) -> Column:
    if f.dtype.is_dense_vector:
        width = dense_width(f, arr)
        if arr.ndim != 2 or arr.shape[1] != width:
            raise ValueError(f"the array has shape {arr.shape}, the schema wants ({n}, {width}) (dim {f.dim})")
        return Column(dense_from_floats(f, np.asarray(arr)))
    if f.dtype in SCALAR_DTYPES and arr.dtype.kind in "biuf":
        return Column(np.array(arr))
    values = [_from_text(f, v) for v in arr.tolist()]
    return column_from_values(f, values)


def _csv(path: str, schema: CollectionSchema, options: dict[str, str]) -> Iterator[Chunk]:
    sep = options.get("sep", ",")
    nullkey = options.get("nullkey", "")
    size = max(1, os.path.getsize(path))
    fields = input_fields(schema)
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter=sep)
        header = next(reader, None)
        if header is None:
            return
        for f in fields:
            if f.name not in header and f.default_value is None and not f.nullable:
                raise fail(path, "the field is missing from the header", None, f.name)
        rows: list[dict[str, Any]] = []
        start = 0
        for line_no, record in enumerate(reader, start=2):
            if len(record) != len(header):
                raise fail(path, f"{len(record)} values for {len(header)} columns", line_no - 2)
            row: dict[str, Any] = {}
            for name, text in zip(header, record, strict=True):
                f = None if name == DYNAMIC_FIELD else schema.field(name)
                try:
                    row[name] = _csv_value(f, text, nullkey)
                except (ValueError, json.JSONDecodeError) as e:
                    raise fail(path, f"cannot read {text[:40]!r}: {e}", line_no - 2, name) from None
            rows.append(row)
            if len(rows) == CHUNK_ROWS:
                yield Chunk(rows_to_batch(path, schema, rows, start), len(rows), path, start, min(1.0, fh.tell() / size))
                start += len(rows)
                rows = []
        if rows:
            yield Chunk(rows_to_batch(path, schema, rows, start), len(rows), path, start, 1.0)


def _csv_value(f: FieldSchema | None, text: str, nullkey: str) -> Any:
    if text == nullkey and (f is None or f.dtype is not DataType.VARCHAR or f.nullable):
        return None
    if f is None:  # a dynamic key, or $meta itself
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    if f.dtype in (DataType.JSON, DataType.ARRAY, DataType.SPARSE_FLOAT_VECTOR) or f.dtype.is_dense_vector:
        return json.loads(text)
    if f.dtype is DataType.BOOL:
        low = text.strip().lower()
        if low not in ("true", "false", "1", "0"):
            raise ValueError("not a boolean")
        return low in ("true", "1")
    if f.dtype.is_integer:
        return int(text)
    if f.dtype in (DataType.FLOAT, DataType.DOUBLE):
        return float(text)
    return text
