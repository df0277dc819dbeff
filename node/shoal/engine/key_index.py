"""Which primary keys a segment already holds, so a write can hide the older rows of its keys.

Milvus reads see one row per primary key: the last written. Shoal settles that at write
time: an insert marks older rows of the same keys deleted at its own timestamp, exactly
as an upsert does, so reads never pay for it. To keep the write path cheap the index is
built only when a batch's keys could overlap the segment (`lo`/`hi` bounds are kept on
every append) and only for the rows not indexed yet: INT64 keys as sorted runs merged
like an LSM tree, VARCHAR keys as a set.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np


class KeyIndex:
    def __init__(self) -> None:
        self.lo: Any = None
        self.hi: Any = None
        self.bounded = 0  # rows below this are inside lo..hi
        self._runs: list[np.ndarray] = []
        self._set: set[Any] | None = None
        self._upto = 0
        self._lock = threading.Lock()

    def widen(self, keys: np.ndarray, total: int) -> None:
        """Note the keys of rows appended up to `total` rows (cheap: their min and max)."""
        if len(keys):
            lo, hi = keys.min(), keys.max()
            self.lo = lo if self.lo is None or lo < self.lo else self.lo
            self.hi = hi if self.hi is None or hi > self.hi else self.hi
        self.bounded = total

    def _bound(self, keys: np.ndarray) -> None:
        if self.bounded < len(keys):
            self.widen(keys[self.bounded :], len(keys))

    def may_hold(self, keys: np.ndarray, probe_lo: Any, probe_hi: Any) -> bool:
        self._bound(keys)
        return self.lo is not None and not (probe_hi < self.lo or probe_lo > self.hi)

    def holds(self, keys: np.ndarray, probe: np.ndarray) -> np.ndarray:
        """Bool mask over `probe`: which of them are among `keys` (the segment's key column)."""
        with self._lock:
            self._catch_up(keys)
            if probe.dtype == object:
                held = self._set or set()
                return np.fromiter((k in held for k in probe), bool, len(probe))
            hit = np.zeros(len(probe), bool)
            for run in self._runs:
                at = np.searchsorted(run, probe)
                at[at == len(run)] = len(run) - 1
                hit |= run[at] == probe
            return hit

    def _catch_up(self, keys: np.ndarray) -> None:
        n = len(keys)
        if n <= self._upto:
            return
        fresh = keys[self._upto : n]
        self._upto = n
        if fresh.dtype == object:
            if self._set is None:
                self._set = set()
            self._set.update(fresh.tolist())
            return
        self._runs.append(np.sort(fresh))
        # merge while the newest run is at least half the size of the one before it
        while len(self._runs) > 1 and 2 * len(self._runs[-1]) >= len(self._runs[-2]):
            last = self._runs.pop()
            self._runs[-1] = np.sort(np.concatenate([self._runs[-1], last]), kind="stable")


def last_of_each(keys: np.ndarray) -> np.ndarray | None:
    """Row numbers keeping only the last row of each repeated key, or None when all are distinct."""
    n = len(keys)
    if n < 2:
        return None
    if keys.dtype != object:
        if bool(np.all(keys[1:] > keys[:-1])):
            return None
        _, first_in_reversed = np.unique(keys[::-1], return_index=True)
        if len(first_in_reversed) == n:
            return None
        return np.sort(n - 1 - first_in_reversed)
    last: dict[Any, int] = {}
    for i, k in enumerate(keys.tolist()):
        last[k] = i
    if len(last) == n:
        return None
    return np.fromiter(sorted(last.values()), np.int64, len(last))
