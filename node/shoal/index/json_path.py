"""The index of one JSON path (`json_path` + `json_cast_type`), over one sealed segment.

The values at the path are read once, as the scan reads them (`jsonvalues.lookup`); the
ones of the cast type become a column for the existing structures: a `ScalarIndex` for
BOOL, DOUBLE and VARCHAR (an `NGramIndex` for NGRAM), an `ArrayIndex` for the ARRAY_*
casts. Rows whose value is missing or of another kind are kept out of that column, and
every answer comes with the rows it is known for, exactly as the scan's three-valued
masks: a comparison is unknown on a value of another kind; `in` is known false on it and
unknown only where the path is missing or null. An index also answers `exists` and
`is null` from where the path is present. A question it cannot answer exactly (a
constant of another kind, integers beyond float64's exact range) returns None: scan.

`json_cast_function: STRING_TO_DOUBLE` (DOUBLE cast only) builds the DOUBLE index of the
numbers at the path. Milvus's index also holds each string that C's `strtod` reads a number
from ("99.99", " 7", "1e3x"), so its indexed segments match such strings in numeric filters
while its growing segments (scanned) do not; Shoal answers as the scan on every segment.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shoal.expr import jsonvalues as jv
from shoal.index.array import ArrayIndex
from shoal.index.ngram import LikeQuery, NGramIndex
from shoal.index.scalar import ScalarIndex
from shoal.schema import Column

Tri = tuple[np.ndarray, np.ndarray]
_EXACT = 2**53  # integers a float64 holds exactly


def _kind(value: Any) -> str | None:
    """A constant's kind, None for an integer no float64 holds exactly (the index cannot compare it)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _EXACT:
        return None
    return _kind_of_row(value)


class JsonPathIndex:
    def __init__(self, rows: list[Any], cast: str, params: dict[str, str]) -> None:
        self.n = len(rows)
        self.cast = cast
        missing = jv.MISSING
        self.present = np.fromiter((r is not missing for r in rows), dtype=bool, count=self.n)
        self.nonnull = self.present & np.fromiter((r is not None for r in rows), dtype=bool, count=self.n)
        self.inner: ScalarIndex | NGramIndex | ArrayIndex | None = None
        if cast.startswith("ARRAY"):
            self.typed = np.fromiter((isinstance(r, list) for r in rows), dtype=bool, count=self.n)
            self.inner = ArrayIndex(rows)
            return
        want = cast if cast in ("BOOL", "VARCHAR", "DOUBLE") else None
        self.typed = np.fromiter((want is not None and _kind_of_row(r) == want for r in rows), dtype=bool, count=self.n)
        if want is None:
            return  # a JSON cast: only exists / is null
        if want == "VARCHAR":
            values = np.array([r if ok else "" for r, ok in zip(rows, self.typed.tolist(), strict=True)], dtype=object)
            column = Column(values, self.typed)
            if params.get("index_type") == "NGRAM":
                self.inner = NGramIndex(column, int(params["min_gram"]), int(params["max_gram"]))
            else:
                self.inner = ScalarIndex(column, scan_above=1.0)
            return
        if want == "DOUBLE" and any(isinstance(r, int) and not isinstance(r, bool) and abs(r) > _EXACT for r in rows):
            return  # comparisons in float64 would not be exact: scan
        values = np.array([float(r) if ok else 0.0 for r, ok in zip(rows, self.typed.tolist(), strict=True)])
        self.inner = ScalarIndex(Column(values, self.typed), scan_above=1.0)

    @property
    def memory_bytes(self) -> int:
        inner = self.inner.memory_bytes if self.inner is not None else 0
        return int(inner + self.present.nbytes + self.nonnull.nbytes + self.typed.nbytes)

    def _constant(self, value: Any) -> Any:
        """`value` as the inner column holds it, or None when this index cannot compare it."""
        kind = _kind(value)
        if self.inner is None or kind is None or kind != self.cast:
            return None
        return float(value) if kind in ("BOOL", "DOUBLE") else value

    def _known(self, mask: np.ndarray | None, valid: np.ndarray) -> Tri | None:
        return None if mask is None else (mask & self.typed, valid)

    def compare(self, op: str, value: Any) -> Tri | None:
        const = self._constant(value)
        if const is None or isinstance(self.inner, ArrayIndex):
            return None
        return self._known(self.inner.compare(op, const), self.typed)

    def isin(self, values: tuple[Any, ...]) -> Tri | None:
        consts = [self._constant(v) for v in values]
        if not values or any(c is None for c in consts) or isinstance(self.inner, ArrayIndex):
            return None
        return self._known(self.inner.isin(tuple(consts)), self.nonnull)

    def like(self, pattern: LikeQuery) -> Tri | None:
        if self.cast != "VARCHAR" or self.inner is None or isinstance(self.inner, ArrayIndex):
            return None
        mask = self.inner.like(pattern)
        if mask is None and self.inner.__class__ in (ScalarIndex, NGramIndex):
            # any other pattern: matched once per distinct string rather than once per row
            hits = [i for i, s in enumerate(self.inner.uniques.tolist()) if pattern.match_one(s)]
            mask = np.isin(self.inner.codes, np.asarray(hits, dtype=np.int32))
        return self._known(mask, self.typed)

    def contains(self, mode: str, value: Any) -> Tri | None:
        if not isinstance(self.inner, ArrayIndex):
            return None
        return self.inner.contains(mode, value)


def _kind_of_row(value: Any) -> str | None:
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int | float):
        return "DOUBLE"
    if isinstance(value, str):
        return "VARCHAR"
    return None


def json_path_index(column: Column, keys: tuple[str | int, ...], params: dict[str, str]) -> JsonPathIndex:
    """The index of the values at `keys` in a JSON column (null rows: the path is missing)."""
    missing, lookup = jv.MISSING, jv.lookup
    valid = None if column.valid is None else column.valid.tolist()
    rows = [
        missing if valid is not None and not valid[i] else lookup(v, keys)
        for i, v in enumerate(column.values.tolist() if isinstance(column.values, np.ndarray) else column.values)
    ]
    return JsonPathIndex(rows, params.get("json_cast_type", "JSON"), params)
