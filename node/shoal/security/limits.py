"""Counters that say "not now": failed logins, and token buckets for Milvus's rate quotas.

`FailedLogins`: after `max_failures` failed attempts by one key (peer host, user) within
`window_s`, the key is refused until `window_s` has passed since the first of them.
`TokenBucket`: `rate` units per second with a burst of one second's worth; `take(n)`
says whether n units are available now. Both take a clock so tests need not sleep.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable

Clock = Callable[[], float]


class FailedLogins:
    def __init__(self, max_failures: int = 5, window_s: float = 60.0, clock: Clock = time.monotonic) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._clock = clock
        self._seen: dict[Hashable, tuple[float, int]] = {}  # key → (first failure, count)
        self._lock = threading.Lock()

    def blocked(self, key: Hashable) -> float:
        """Seconds left before `key` may try again (0: it may)."""
        with self._lock:
            entry = self._seen.get(key)
            if entry is None:
                return 0.0
            left = entry[0] + self.window_s - self._clock()
            if left <= 0:
                del self._seen[key]
                return 0.0
            return left if entry[1] >= self.max_failures else 0.0

    def record(self, key: Hashable) -> None:
        with self._lock:
            now = self._clock()
            first, count = self._seen.get(key, (now, 0))
            if now - first > self.window_s:
                first, count = now, 0
            self._seen[key] = (first, count + 1)
            if len(self._seen) > 100_000:  # a flood of distinct keys must not grow without end
                self._seen.clear()

    def clear(self, key: Hashable) -> None:
        with self._lock:
            self._seen.pop(key, None)


class TokenBucket:
    def __init__(self, rate: float, clock: Clock = time.monotonic) -> None:
        self.rate = float(rate)
        self._clock = clock
        self._tokens = self.rate
        self._at = clock()
        self._lock = threading.Lock()

    def take(self, n: float) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.rate, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if n > self._tokens and not (n > self.rate and self._tokens >= self.rate):
                return False
            self._tokens -= n
            return True
