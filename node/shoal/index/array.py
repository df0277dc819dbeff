"""The inverted index of list values (an ARRAY field, or a JSON path cast to ARRAY_*):
each distinct element maps to the sorted rows holding it, so `array_contains`,
`array_contains_any` and `array_contains_all` become unions and intersections of
posting lists instead of a Python walk over every row.

Elements are keyed as `jsonvalues.norm` keys them, the very equality the scan uses
(1 == 1.0, True != 1), and a row that is not a list (null, missing, another kind) is
unknown, as in the scan.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from shoal.expr import jsonvalues as jv
from shoal.index.scalar import ScalarIndex
from shoal.schema import Column, object_array


class ArrayIndex:
    def __init__(self, rows: list[Any]) -> None:
        self.n = len(rows)
        self._rows = rows
        self._positions: dict[int, tuple[ScalarIndex, np.ndarray] | None] = {}
        self.is_list = np.fromiter((isinstance(r, list) for r in rows), dtype=bool, count=self.n)
        postings: dict[Any, list[int]] = defaultdict(list)
        for i, row in enumerate(rows):
            if isinstance(row, list):
                for key in {jv.norm(x) for x in row}:
                    postings[key].append(i)
        self.postings = {key: np.asarray(ids, dtype=np.int64) for key, ids in postings.items()}

    @property
    def memory_bytes(self) -> int:
        return int(self.is_list.nbytes + sum(ids.nbytes + 64 for ids in self.postings.values()))

    def _rows_with(self, value: Any) -> np.ndarray:
        return self.postings.get(jv.norm(value), np.empty(0, dtype=np.int64))

    def contains(self, mode: str, value: Any) -> tuple[np.ndarray, np.ndarray]:
        """(value, valid) of `json_contains`/`array_contains` (mode one), `_all` or `_any`."""
        mask = np.zeros(self.n, dtype=bool)
        if mode == "one":
            mask[self._rows_with(value)] = True
        elif mode == "any":
            for v in value:
                mask[self._rows_with(v)] = True
        else:
            wanted = {jv.norm(v) for v in value}
            if not wanted:
                return self.is_list.copy(), self.is_list
            lists = sorted((self.postings.get(w, np.empty(0, dtype=np.int64)) for w in wanted), key=len)
            rows = lists[0]
            for other in lists[1:]:
                rows = np.intersect1d(rows, other, assume_unique=True)
            mask[rows] = True
        return mask, self.is_list

    def element(self, position: int) -> tuple[ScalarIndex, np.ndarray] | None:
        """A sorted index of the elements at `position` (`arr[i] == x`), built on first use, and
        the rows that have one; None for elements a `ScalarIndex` does not hold (bools, mixed)."""
        if position not in self._positions:
            picked = [r[position] if isinstance(r, list) and position < len(r) else None for r in self._rows]
            valid = np.fromiter((v is not None for v in picked), dtype=bool, count=self.n)
            kinds = {type(v) for v in picked if v is not None}
            if kinds <= {int}:
                values = np.array([v if v is not None else 0 for v in picked], dtype=np.int64)
            elif kinds <= {int, float}:
                values = np.array([v if v is not None else 0.0 for v in picked], dtype=np.float64)
            elif kinds <= {str}:
                values = object_array([v if v is not None else "" for v in picked])
            else:
                self._positions[position] = None
                return None
            self._positions[position] = ScalarIndex(Column(values, valid), scan_above=1.0), valid
        return self._positions[position]

    def compare(self, op: str, value: Any) -> None:
        return None  # a whole-list comparison scans

    def isin(self, values: tuple[Any, ...]) -> None:
        return None

    def like(self, pattern: Any) -> None:
        return None


def array_index(column: Column) -> ArrayIndex:
    """The index of an ARRAY column (a null row holds no list)."""
    values = column.values.tolist() if isinstance(column.values, np.ndarray) else list(column.values)
    if column.valid is not None:
        values = [v if ok else None for v, ok in zip(values, column.valid.tolist(), strict=True)]
    return ArrayIndex(values)
