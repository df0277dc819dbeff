"""Vector layouts and result shapes shared by the index families.

Converts the column layouts of `shoal.schema` (float32, float16, raw bfloat16 bits in
uint16, int8, packed binary uint8, sparse dicts) into what the search code needs, one chunk
at a time so that half-precision data is never held as a float32 copy; checks shapes; and
holds the top-k / padding helpers that give every family Milvus's score conventions
(L2/HAMMING/JACCARD ascending, IP/COSINE descending, missing hits padded with row -1).

Neighbours: used by `exact`, `dense`, `binary`, `sparse`; imports only numpy and `shoal`
leaf modules.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from itertools import chain
from typing import Any

import numpy as np

from shoal.errors import invalid
from shoal.schema import DataType

DESCENDING_METRICS = frozenset({"IP", "COSINE", "BM25", "MHJACCARD"})
CHUNK_ROWS = 16384  # rows converted to float32 at a time during exact scans and builds


def descending(metric: str) -> bool:
    """True when bigger scores are better (IP, COSINE)."""
    return metric in DESCENDING_METRICS


def worst_score(metric: str) -> float:
    return float("-inf") if descending(metric) else float("inf")


def to_float32(block: np.ndarray) -> np.ndarray:
    """A float32 copy of a dense block in any stored layout (uint16 = raw bfloat16 bits)."""
    if block.dtype == np.float32:
        return block
    if block.dtype == np.uint16:
        return (block.astype(np.uint32) << 16).view(np.float32)
    return block.astype(np.float32)


def normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero); float32 in, float32 out."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (x / norms).astype(np.float32, copy=False)


def dense_dtype_of(field_dtype: DataType) -> np.dtype:
    return {
        DataType.FLOAT_VECTOR: np.dtype(np.float32),
        DataType.FLOAT16_VECTOR: np.dtype(np.float16),
        DataType.BFLOAT16_VECTOR: np.dtype(np.uint16),
        DataType.INT8_VECTOR: np.dtype(np.int8),
        DataType.BINARY_VECTOR: np.dtype(np.uint8),
    }[field_dtype]


def check_dense(vectors: Any, field_dtype: DataType, width: int, what: str = "vectors") -> np.ndarray:
    """A 2-d array of the field's stored layout (lists and matching numbers are converted)."""
    want = dense_dtype_of(field_dtype)
    arr = vectors if isinstance(vectors, np.ndarray) else np.asarray(vectors)
    if arr.ndim == 1 and arr.size == width:
        arr = arr.reshape(1, width)
    if arr.ndim != 2 or arr.shape[1] != width:
        raise invalid(f"{what} should have shape (n, {width}), got {tuple(arr.shape)}")
    if arr.dtype != want:
        if field_dtype is DataType.BFLOAT16_VECTOR and arr.dtype.kind == "f":
            return bfloat16_bits(arr)
        if field_dtype is DataType.BINARY_VECTOR and arr.dtype.kind not in "ui":
            raise invalid(f"{what} of a binary vector field should be uint8 bytes, got {arr.dtype}")
        arr = arr.astype(want)
    return arr


def check_queries(queries: Any, field_dtype: DataType, width: int) -> np.ndarray:
    """Queries as float32 (dense float/int8) or uint8 (binary), shape (nq, width)."""
    arr = queries if isinstance(queries, np.ndarray) else np.asarray(queries)
    if (
        arr.dtype == np.float32
        and arr.ndim == 2
        and arr.shape[1] == width
        and field_dtype is not DataType.BINARY_VECTOR
    ):
        # The hot path (serial nq=1 searches): already the layout faiss wants.
        if not np.isfinite(arr).all():
            raise invalid("query vectors contain NaN or infinity")
        return arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)
    if field_dtype is DataType.BINARY_VECTOR:
        return np.ascontiguousarray(check_dense(arr, field_dtype, width, "queries"))
    if arr.dtype == np.uint16 and field_dtype is DataType.BFLOAT16_VECTOR:
        arr = to_float32(arr)
    if arr.ndim == 1 and arr.size == width:
        arr = arr.reshape(1, width)
    if arr.ndim != 2 or arr.shape[1] != width:
        raise invalid(f"query vectors should have dim {width}, got shape {tuple(arr.shape)}")
    if arr.dtype.kind not in "fiu":
        raise invalid(f"query vectors should be numeric, got {arr.dtype}")
    out = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(out).all():
        raise invalid("query vectors contain NaN or infinity")
    return out


def bfloat16_bits(x: np.ndarray) -> np.ndarray:
    """Raw bfloat16 bits (uint16) of float values, rounding to nearest even."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = bits + np.uint32(0x7FFF) + ((bits >> 16) & np.uint32(1))
    return (rounded >> 16).astype(np.uint16)


# ---------------------------------------------------------------------------- sparse


def sparse_rows(items: Any) -> list[Mapping[int, float]]:
    """Sparse vectors as a list of {dim: value} mappings, checked."""
    if isinstance(items, Mapping):
        items = [items]
    out: list[Mapping[int, float]] = []
    for row in items:
        if not isinstance(row, Mapping):
            raise invalid(f"sparse vector should be a dict of index to value, got {type(row).__name__}")
        out.append(row)
    return out


def to_csr(items: Iterable[Mapping[int, float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indptr int64, indices uint32, values float32) of sparse rows, indices sorted per row."""
    rows = items if isinstance(items, list) else list(items)
    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    total = int(lengths.sum())
    indptr = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(lengths, out=indptr[1:])
    try:
        idx = np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=total)
        val = np.fromiter(chain.from_iterable(r.values() for r in rows), dtype=np.float64, count=total)
    except (TypeError, ValueError, OverflowError) as e:
        raise invalid(f"sparse vectors should map integer indices to numbers: {e}") from None
    if total:
        if idx.min() < 0 or idx.max() >= 2**32 - 1:
            raise invalid("sparse vector index should be in range [0, 4294967294]")
        if not np.isfinite(val).all():
            raise invalid("sparse vector values should be finite")
        row_of = np.repeat(np.arange(len(rows), dtype=np.int64), lengths)
        key = (row_of << 32) | idx
        if (np.diff(key) < 0).any():  # dicts built from the wire are usually sorted already
            order = np.argsort(key, kind="stable")
            idx, val = idx[order], val[order]
    return indptr, idx.astype(np.uint32), val.astype(np.float32)


# ---------------------------------------------------------------------------- results


def empty_results(nq: int, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    return np.full((nq, k), worst_score(metric), np.float32), np.full((nq, k), -1, np.int64)


def topk_rows(scores: np.ndarray, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Best `k` columns of each row of `scores` (nq, m), sorted; padded with -1 beyond m."""
    nq, m = scores.shape
    out_s, out_i = empty_results(nq, k, metric)
    if m == 0:
        return out_s, out_i
    key = -scores if descending(metric) else scores
    kk = min(k, m)
    if kk < m:
        part = np.argpartition(key, kk - 1, axis=1)[:, :kk]
    else:
        part = np.broadcast_to(np.arange(m), (nq, m))
    part_keys = np.take_along_axis(key, part, axis=1)
    order = np.argsort(part_keys, axis=1, kind="stable")
    cols = np.take_along_axis(part, order, axis=1)
    out_i[:, :kk] = cols
    out_s[:, :kk] = np.take_along_axis(scores, cols, axis=1)
    return out_s, out_i


def merge_topk(
    a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], k: int, metric: str
) -> tuple[np.ndarray, np.ndarray]:
    """The best `k` of two sorted candidate sets (rows -1 are ignored)."""
    scores = np.concatenate([a[0], b[0]], axis=1)
    rows = np.concatenate([a[1], b[1]], axis=1)
    scores = np.where(rows < 0, worst_score(metric), scores).astype(np.float32)
    s, cols = topk_rows(scores, k, metric)
    r = np.where(cols >= 0, np.take_along_axis(rows, np.maximum(cols, 0), axis=1), -1)
    return s, r


def mask_invalid(scores: np.ndarray, rows: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Milvus padding: row -1 carries the worst score of the metric."""
    if rows.size and rows.min() < 0:
        scores = scores.copy()
        scores[rows < 0] = worst_score(metric)
    return scores, rows


# Row lists of frozen masks, by mask identity; each entry keeps its mask alive, so no other
# array can take that identity while the entry lives.
_ROWS_MEMO: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
_ROWS_MEMO_ENTRIES = 8
_ROWS_MEMO_SHARE = 8  # memoize only row lists of at most 1/8 of the mask's rows
_rows_memo_lock = threading.Lock()


def allowed_rows(mask: np.ndarray) -> np.ndarray:
    """`np.flatnonzero(mask)`, read-only; remembered for frozen masks (read-only, owning their data).

    A filter repeated across requests comes back from the engine's filter cache as the same
    frozen mask, and a million-row mask costs some 0.25 ms to turn into row numbers.
    """
    if mask.flags.writeable or mask.base is not None:
        return np.flatnonzero(mask)
    with _rows_memo_lock:
        hit = _ROWS_MEMO.get(id(mask))
        if hit is not None and hit[0] is mask:
            _ROWS_MEMO.move_to_end(id(mask))
            return hit[1]
    rows = np.flatnonzero(mask)
    rows.flags.writeable = False
    if len(rows) * _ROWS_MEMO_SHARE <= len(mask):
        with _rows_memo_lock:
            _ROWS_MEMO[id(mask)] = (mask, rows)
            while len(_ROWS_MEMO) > _ROWS_MEMO_ENTRIES:
                _ROWS_MEMO.popitem(last=False)
    return rows


def check_allowed(allowed: Any, n: int) -> np.ndarray | None:
    """The allowed-rows mask as a bool array of length n, or None when every row is allowed."""
    if allowed is None:
        return None
    mask = np.asarray(allowed)
    if mask.dtype != np.bool_ or mask.shape != (n,):
        raise invalid(f"allowed mask should be bool of shape ({n},), got {mask.dtype} {mask.shape}")
    return mask


def range_filter_hits(
    scores: np.ndarray, radius: float, range_filter: float | None, metric_type: str
) -> np.ndarray:
    """Bool mask of `scores` inside Milvus's range search window.

    L2/HAMMING/JACCARD: range_filter <= d < radius; IP/COSINE: radius < s <= range_filter.
    """
    s = np.asarray(scores)
    if descending(metric_type.upper()):
        keep = s > radius
        return keep if range_filter is None else keep & (s <= range_filter)
    keep = s < radius
    return keep if range_filter is None else keep & (s >= range_filter)
