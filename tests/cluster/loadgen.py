"""A mixed load for the fault tests: searches, queries and inserts from threads, each with its
own `MilvusClient` (pymilvus's default retry settings), recording every request.

The collection holds `BASE` fixed rows; searches and queries filter on `id < BASE`, so their
answers stay fixed while the inserter adds rows with ids from `next_id` (>= BASE). A request
is a `Request(kind, start, end, error)` on `time.monotonic()`; `answer_changed` counts the
successful reads whose answer differs from `expected` (taken before any fault).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pymilvus import DataType, MilvusClient

DIM = 8
BASE = 2000
QUERY_VECTORS = np.random.default_rng(16).random((4, DIM), dtype=np.float32).round(3).tolist()
SEARCH_FILTER = f"id < {BASE}"
REQUEST_TIMEOUT_S = 120.0  # pymilvus retries until then; a hung call cannot stall the test
INSERT_BATCH = 10
PAUSE_S = 0.05  # between one thread's requests: a loaded 2-core CI machine serves the cluster too


def base_rows() -> list[dict[str, Any]]:
    vectors = np.random.default_rng(7).random((BASE, DIM), dtype=np.float32)
    return [{"id": i, "vector": vectors[i].tolist()} for i in range(BASE)]



def create_base_collection(client: MilvusClient, coll: str, flush: bool = False) -> None:
    """`coll` with `base_rows()`, a FLAT index (exact: answers cannot move with an index build)
    and Strong reads; flushed (sealed and in S3) when asked."""
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    index = client.prepare_index_params()
    index.add_index("vector", index_type="FLAT", metric_type="L2")
    client.create_collection(coll, schema=schema, index_params=index, consistency_level="Strong")
    client.insert(coll, base_rows())
    if flush:
        client.flush(coll)


def wait_for(pred: Callable[[], object], timeout_s: float, what: str, period: float = 0.5) -> object:
    """`pred()`'s first truthy value, polled every `period` s; fails after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(period)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")

def read_search(client: MilvusClient, coll: str) -> list[list[tuple[int, float]]]:
    hits = client.search(coll, QUERY_VECTORS, limit=5, filter=SEARCH_FILTER, consistency_level="Strong",
                         timeout=REQUEST_TIMEOUT_S)
    return [[(int(h["id"]), round(float(h["distance"]), 4)) for h in row] for row in hits]


def read_query(client: MilvusClient, coll: str) -> list[int]:
    rows = client.query(coll, filter="id < 300", output_fields=["id"], consistency_level="Strong",
                        timeout=REQUEST_TIMEOUT_S)
    return sorted(int(r["id"]) for r in rows)


@dataclass
class Request:
    kind: str
    start: float
    end: float
    error: str = ""  # empty: it succeeded


@dataclass
class MixedLoad:
    uri: str
    coll: str
    next_id: int
    expected: dict[str, Any]  # kind -> the answer every successful read must give
    requests: list[Request] = field(default_factory=list)
    acked: list[int] = field(default_factory=list)  # ids of acknowledged inserts
    failed: list[list[int]] = field(default_factory=list)  # ids of inserts that raised
    answer_changed: list[tuple[str, Any]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        for kind, work in (("search", self._search), ("query", self._query), ("insert", self._insert)):
            t = threading.Thread(target=self._loop, args=(kind, work), name=f"load-{kind}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(REQUEST_TIMEOUT_S + 30)

    def _loop(self, kind: str, work: Callable[[MilvusClient], None]) -> None:
        client: MilvusClient | None = None
        while not self._stop.is_set():
            start = time.monotonic()
            error = ""
            try:
                if client is None:  # a client that could not connect is made again
                    client = MilvusClient(self.uri)
                work(client)
            except Exception as e:
                error = f"{type(e).__name__}: {e}"[:300]
            with self._lock:
                self.requests.append(Request(kind, start, time.monotonic(), error))
            self._stop.wait(PAUSE_S)
        if client is not None:
            client.close()

    def _check(self, kind: str, answer: Any) -> None:
        if answer != self.expected[kind]:
            with self._lock:
                self.answer_changed.append((kind, answer))

    def _search(self, client: MilvusClient) -> None:
        self._check("search", read_search(client, self.coll))

    def _query(self, client: MilvusClient) -> None:
        self._check("query", read_query(client, self.coll))

    def _insert(self, client: MilvusClient) -> None:
        with self._lock:
            ids = list(range(self.next_id, self.next_id + INSERT_BATCH))
            self.next_id += INSERT_BATCH
        rows = [{"id": i, "vector": [float(i % 7)] * DIM} for i in ids]
        try:
            client.insert(self.coll, rows, timeout=REQUEST_TIMEOUT_S)
        except Exception:
            with self._lock:
                self.failed.append(ids)
            raise
        with self._lock:
            self.acked.extend(ids)

    # ---- figures
    def failures(self) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.error]

    def successes(self, kind: str, after: float) -> list[Request]:
        """Successful requests of `kind` that ended after `after`, in order of their end."""
        with self._lock:
            return sorted((r for r in self.requests if r.kind == kind and not r.error and r.end > after),
                          key=lambda r: r.end)

    def longest_gap(self, kind: str, since: float) -> float:
        """The longest time between two successful `kind` requests ending after `since`."""
        ends = [since] + [r.end for r in self.successes(kind, since)]
        return max((b - a for a, b in zip(ends, ends[1:], strict=False)), default=0.0)


def visible(client: MilvusClient, coll: str, lo: int, hi: int) -> dict[int, int]:
    """How often each id in [lo, hi) is visible (Strong), read in windows of 10,000 ids."""
    seen: dict[int, int] = {}
    for start in range(lo, hi, 10_000):
        rows = client.query(coll, filter=f"id >= {start} and id < {min(hi, start + 10_000)}", output_fields=["id"],
                            consistency_level="Strong", timeout=REQUEST_TIMEOUT_S)
        for row in rows:
            seen[int(row["id"])] = seen.get(int(row["id"]), 0) + 1
    return seen


def assert_acked_once(load: MixedLoad, seen: dict[int, int]) -> None:
    """Every acknowledged insert is there exactly once; a failed one is all there (once) or absent."""
    assert load.acked, "no insert was acknowledged"
    for i in load.acked:
        assert seen.get(i) == 1, f"acknowledged insert {i} seen {seen.get(i, 0)} times"
    for batch in load.failed:
        present = [i for i in batch if i in seen]
        assert len(present) in (0, len(batch)), f"a failed insert is half visible: {present}"
        assert all(seen[i] == 1 for i in present)
