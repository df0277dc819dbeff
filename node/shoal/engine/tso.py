"""The timestamp oracle: Milvus hybrid timestamps, `physical_ms << 18 | logical`.

One instance per engine. Timestamps are strictly increasing across calls and across
restarts (the engine feeds back the largest timestamp it recovered).
"""

from __future__ import annotations

import threading
import time

LOGICAL_BITS = 18
LOGICAL_MASK = (1 << LOGICAL_BITS) - 1


def compose(physical_ms: int, logical: int = 0) -> int:
    return (physical_ms << LOGICAL_BITS) | logical


def physical_ms(ts: int) -> int:
    return ts >> LOGICAL_BITS


class TimestampOracle:
    def __init__(self, floor: int = 0) -> None:
        self._lock = threading.Lock()
        self._last = floor

    def observe(self, ts: int) -> None:
        """Never issue a timestamp at or below `ts` (recovered from disk)."""
        with self._lock:
            self._last = max(self._last, ts)

    def allocate(self, count: int = 1) -> int:
        """Reserve `count` consecutive timestamps and return the first."""
        with self._lock:
            first = max(compose(int(time.time() * 1000)), self._last + 1)
            self._last = first + count - 1
            return first

    def now(self) -> int:
        """A timestamp at least as new as every one issued so far."""
        return self.allocate()

    @property
    def last(self) -> int:
        return self._last
