"""Partition sets for shadowed rows (issue 15).

Milvus keeps a primary key's rows in every partition it was written to, and a read spanning
several of them keeps the newest. Shoal settles that at write time, like "one row per key"
within a partition (`key_index`): a row older than a row of its key in another partition is
*shadowed* by that partition. A key may be written into three or more partitions, so a row
records the set of partitions holding a newer row of its key, and a read hides it when that
set meets the partitions it reads. Sets are interned process-wide (few distinct ones exist:
they are sets of partitions a key was written to), so a segment stores one small id per row.
"""

from __future__ import annotations

import threading
from collections.abc import Collection

import numpy as np

NO_SHADOW = 0  # the empty set: the row is not shadowed

_sets: list[frozenset[int]] = [frozenset()]
_ids: dict[frozenset[int], int] = {frozenset(): NO_SHADOW}
_lock = threading.Lock()


def set_id(parts: frozenset[int]) -> int:
    """The id of a set of partition ids."""
    found = _ids.get(parts)
    if found is not None:
        return found
    with _lock:
        found = _ids.get(parts)
        if found is None:
            found = len(_sets)
            _sets.append(parts)
            _ids[parts] = found
        return found


def with_partition(ids: np.ndarray, partition: np.ndarray | int) -> np.ndarray:
    """Each set of `ids` joined by its partition (one for all, or one per id)."""
    parts = np.broadcast_to(np.asarray(partition, np.int64), ids.shape)
    out = np.empty(len(ids), np.int64)
    pairs = np.stack([ids, parts], axis=1)
    uniq, inverse = np.unique(pairs, axis=0, return_inverse=True)
    joined = np.array([set_id(_sets[int(i)] | {int(p)}) for i, p in uniq], np.int64)
    out[:] = joined[inverse.reshape(-1)]
    return out


def hidden_sets(scope: Collection[int] | None) -> np.ndarray:
    """Bool per set id: whether a read of `scope` (None: every partition) hides a row shadowed
    by that set. Rows may name only sets interned before this call."""
    sets = list(_sets)
    if scope is None:
        return np.fromiter((bool(s) for s in sets), bool, len(sets))
    return np.fromiter((not s.isdisjoint(scope) for s in sets), bool, len(sets))
