"""Filter results on sealed segments, kept so that a filter repeated across requests skips its scan.

A sealed segment's rows never change, so the rows a filter matches in it never change either:
deletes, TTL and time travel are applied afterwards, from the segment's timestamps. Filters
repeat in practice (a tenant, a category, a date window), and on a million-row segment the
scan and the row list it feeds cost more than the filtered vector search. Milvus keeps such a
cache as well (`queryNode.exprResCacheEnabled`).

The key is the segment id (ids are never reused), its row count and the bound filter tree, so
the same text bound differently (a field added since, other template values) is a new entry.
Growing, unwritten and small segments are evaluated every time. Entries are evicted least
recently used first once their masks exceed the byte budget; a budget of 0 turns it off.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from shoal.engine.segments import Segment
from shoal.expr import CompiledFilter
from shoal.schema import Batch

DEFAULT_CAPACITY_BYTES = 64 << 20
# Below this many rows a scan costs about as much as the lookup.
MIN_ROWS = 16384


class FilterCache:
    def __init__(self, capacity_bytes: int = DEFAULT_CAPACITY_BYTES) -> None:
        self.capacity_bytes = max(0, int(capacity_bytes))
        self._entries: OrderedDict[tuple[int, int, str], np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def evaluate(self, flt: CompiledFilter, seg: Segment, batch: Batch, n: int) -> np.ndarray:
        """The filter's mask over the segment's first `n` rows; read-only when it comes from the cache."""
        # (a sealed segment not yet written may still be put in key order: cached once written)
        if not seg.sealed or not seg.path or n < MIN_ROWS or self.capacity_bytes == 0:
            return flt.evaluate(batch, n, seg.scalar_indexes)
        key = (seg.segment_id, n, flt.cache_key)
        with self._lock:
            mask = self._entries.get(key)
            if mask is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return mask
            self.misses += 1
        mask = flt.evaluate(batch, n, seg.scalar_indexes)
        if mask.base is not None or not mask.flags.writeable:
            mask = mask.copy()  # never freeze an array the segment or an index still owns
        mask.flags.writeable = False
        if mask.nbytes > self.capacity_bytes:
            return mask
        with self._lock:
            if key not in self._entries:
                self._entries[key] = mask
                self._bytes += mask.nbytes
                while self._bytes > self.capacity_bytes:
                    _, old = self._entries.popitem(last=False)
                    self._bytes -= old.nbytes
        return mask
