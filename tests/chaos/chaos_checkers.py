"""Checker threads for the chaos runs, in the manner of Milvus's chaos checkers: each thread
has its own `MilvusClient` (pymilvus's default retry settings) and does one kind of work in a
loop, recording every request (`Request`: checker, call, start and end on `time.monotonic()`,
error). Writes record what was acknowledged, for the auditor (`chaos_audit.py`).

The collection `COLL` is split by primary key:
- `[0, BASE)`: fixed rows (`loadgen.base_rows`); searches and queries filter on them, so a
  successful read must give the answer taken before any fault;
- `[UPSERT_LO, UPSERT_LO + UPSERT_KEYS)`: rows the upserter rewrites, the value in field `v`;
- from `DELETE_LO`: batches the deleter inserts and then deletes;
- from `INSERT_LO`: the inserter's rows.
"""

from __future__ import annotations

import itertools
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pymilvus import DataType, MilvusClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cluster"))
from loadgen import BASE, DIM, base_rows, read_query, read_search  # noqa: E402

COLL = "chaos_main"
INDEX_COLL = "chaos_index"
DDL_PREFIX = "chaos_ddl_"
UPSERT_LO, UPSERT_KEYS = 200_000, 50
DELETE_LO = 1_000_000
INSERT_LO = 10_000_000
BATCH = 10
CALL_TIMEOUT_S = 120.0  # a call to a paused process waits for it; pymilvus retries within this
KINDS = ("insert", "upsert", "delete", "search", "query", "flush", "ddl", "index")
PAUSE_S = {"flush": 3.0, "ddl": 1.0, "index": 1.0}  # between requests; 0.1 s for the others


@dataclass
class Request:
    checker: str
    call: str
    start: float
    end: float
    error: str = ""  # empty: it succeeded


def _row(i: int, v: int = 0) -> dict[str, Any]:
    return {"id": i, "v": v, "vector": [float(i % 11) / 10.0] * DIM}


def create_collections(uri: str, replicas: int = 1) -> dict[str, Any]:
    """The checkers' collections, with their fixed rows, `COLL` loaded with `replicas` replicas;
    returns the expected answers."""
    client = MilvusClient(uri, timeout=CALL_TIMEOUT_S)
    try:
        for name in (COLL, INDEX_COLL):
            if client.has_collection(name):
                client.drop_collection(name)
        schema = client.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("v", DataType.INT64)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
        index = client.prepare_index_params()
        index.add_index("vector", index_type="FLAT", metric_type="L2")
        client.create_collection(COLL, schema=schema, index_params=index)
        rows = [{**r, "v": 0} for r in base_rows()]
        rows += [_row(i, -1) for i in range(UPSERT_LO, UPSERT_LO + UPSERT_KEYS)]
        client.insert(COLL, rows)
        client.flush(COLL)
        if replicas > 1:
            client.release_collection(COLL)
            client.load_collection(COLL, replica_number=replicas)
        client.create_collection(INDEX_COLL, schema=schema)  # no index: the index checker builds it
        client.insert(INDEX_COLL, [{**r, "v": 0} for r in base_rows()])
        client.flush(INDEX_COLL)
        return {"search": read_search(client, COLL), "query": read_query(client, COLL)}
    finally:
        client.close()


@dataclass
class Checkers:
    uri: str
    expected: dict[str, Any]
    kinds: tuple[str, ...] = KINDS
    requests: list[Request] = field(default_factory=list)
    inserted: list[int] = field(default_factory=list)  # acknowledged inserts (the inserter's and the deleter's)
    insert_failed: list[list[int]] = field(default_factory=list)  # batches whose insert raised
    deleted: list[int] = field(default_factory=list)  # acknowledged deletes
    delete_failed: list[int] = field(default_factory=list)
    upserts: dict[int, list[tuple[int, bool]]] = field(default_factory=dict)  # pk -> [(value, acknowledged)]
    wrong_answers: list[tuple[str, Any]] = field(default_factory=list)
    _ids: dict[str, Any] = field(default_factory=lambda: {"insert": itertools.count(INSERT_LO, BATCH),
                                                          "delete": itertools.count(DELETE_LO, BATCH),
                                                          "upsert": itertools.count(1), "ddl": itertools.count(1)})
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        for kind in self.kinds:
            t = threading.Thread(target=self._loop, args=(kind,), name=f"chaos-{kind}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(CALL_TIMEOUT_S * 3 + 30)

    def started(self) -> bool:
        """Every checker has had a successful request."""
        with self._lock:
            return {r.checker for r in self.requests if not r.error} >= set(self.kinds)

    # ---------------------------------------------------------------- the loop

    def _loop(self, kind: str) -> None:
        client: MilvusClient | None = None
        work: Callable[[MilvusClient, Callable[..., Any]], None] = getattr(self, f"_{kind}")
        while not self._stop.is_set():
            try:
                if client is None:
                    client = self._call(kind, "connect", lambda: MilvusClient(self.uri))
                work(client, lambda call, fn, *args, **kw: self._call(kind, call, fn, *args, **kw))
            except Exception:  # recorded by _call; the next round starts over
                pass
            self._stop.wait(PAUSE_S.get(kind, 0.1))
        if client is not None:
            client.close()

    def _call(self, kind: str, call: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        start = time.monotonic()
        try:
            answer = fn(*args, **kw)
        except Exception as e:
            with self._lock:
                self.requests.append(Request(kind, call, start, time.monotonic(), f"{type(e).__name__}: {e}"[:300]))
            raise
        with self._lock:
            self.requests.append(Request(kind, call, start, time.monotonic()))
        return answer

    def _check(self, kind: str, answer: Any) -> None:
        if answer != self.expected[kind]:
            with self._lock:
                self.wrong_answers.append((kind, answer))

    # ---------------------------------------------------------------- the work of each checker

    def _insert_batch(self, client: MilvusClient, call: Callable[..., Any], first: int) -> list[int]:
        ids = list(range(first, first + BATCH))
        try:
            call("insert", client.insert, COLL, [_row(i) for i in ids], timeout=CALL_TIMEOUT_S)
        except Exception:
            with self._lock:
                self.insert_failed.append(ids)
            raise
        with self._lock:
            self.inserted.extend(ids)
        return ids

    def _insert(self, client: MilvusClient, call: Callable[..., Any]) -> None:
        self._insert_batch(client, call, next(self._ids["insert"]))

    def _delete(self, client: MilvusClient, call: Callable[..., Any]) -> None:
        ids = self._insert_batch(client, call, next(self._ids["delete"]))
        try:
            call("delete", client.delete, COLL, filter=f"id in {ids}", timeout=CALL_TIMEOUT_S)
        except Exception:
            with self._lock:
                self.delete_failed.extend(ids)
            raise
        with self._lock:
            self.deleted.extend(ids)

    def _upsert(self, client: MilvusClient, call: Callable[..., Any]) -> None:
        seq = next(self._ids["upsert"])
        pks = [UPSERT_LO + (seq * 7 + k) % UPSERT_KEYS for k in range(3)]  # three keys, each written in turn
        acked = True
        try:
            call("upsert", client.upsert, COLL, [_row(pk, seq) for pk in pks], timeout=CALL_TIMEOUT_S)
        except Exception:
            acked = False
            raise
        finally:
            with self._lock:
                for pk in pks:
                    self.upserts.setdefault(pk, []).append((seq, acked))

    def _search(self, client: MilvusClient, call: Callable[..., Any]) -> None:
        self._check("search", call("search", read_search, client, COLL))

    def _query(self, client: MilvusClient, call: Callable[..., Any]) -> None:
        self._check("query", call("query", read_query, client, COLL))

    def _flush(self, client: MilvusClient, call: Callable[..., Any]) -> None:
        call("flush", client.flush, COLL, timeout=CALL_TIMEOUT_S)

    def _ddl(self, client: MilvusClient, call: Callable[..., Any]) -> None:
        name = f"{DDL_PREFIX}{next(self._ids['ddl']) % 3}"  # a failed round's collection is dropped two rounds on
        if call("has_collection", client.has_collection, name, timeout=CALL_TIMEOUT_S):
            call("drop_collection", client.drop_collection, name, timeout=CALL_TIMEOUT_S)
        call("create_collection", client.create_collection, name, dimension=DIM, timeout=CALL_TIMEOUT_S)
        call("insert", client.insert, name, [{"id": i, "vector": [0.5] * DIM} for i in range(10)],
             timeout=CALL_TIMEOUT_S)
        call("drop_collection", client.drop_collection, name, timeout=CALL_TIMEOUT_S)

    def _index(self, client: MilvusClient, call: Callable[..., Any]) -> None:
        if call("list_indexes", client.list_indexes, INDEX_COLL, timeout=CALL_TIMEOUT_S):
            call("release_collection", client.release_collection, INDEX_COLL, timeout=CALL_TIMEOUT_S)
            call("drop_index", client.drop_index, INDEX_COLL, "vector", timeout=CALL_TIMEOUT_S)
        params = client.prepare_index_params()
        params.add_index("vector", index_type="HNSW", metric_type="L2", params={"M": 8, "efConstruction": 32})
        call("create_index", client.create_index, INDEX_COLL, params, timeout=CALL_TIMEOUT_S)
        call("load_collection", client.load_collection, INDEX_COLL, timeout=CALL_TIMEOUT_S)
        hits = call("search", client.search, INDEX_COLL, [[0.5] * DIM], limit=3, timeout=CALL_TIMEOUT_S)
        if len(hits[0]) != 3:
            with self._lock:
                self.wrong_answers.append(("index", hits))

    # ---------------------------------------------------------------- figures

    def figures(self, since: float = 0.0) -> dict[str, dict[str, Any]]:
        """Per checker: requests, failures, success %, the longest outage (from the last success
        before a failure to the next success) and the longest time between two successes."""
        with self._lock:
            requests = sorted((r for r in self.requests if r.end >= since), key=lambda r: r.end)
        out = {}
        for kind in self.kinds:
            mine = [r for r in requests if r.checker == kind]
            failed = [r for r in mine if r.error]
            outage = gap = 0.0
            last_ok, failing = since, False
            for r in mine:
                if r.error:
                    failing = True
                    continue
                gap = max(gap, r.end - last_ok)
                if failing:
                    outage = max(outage, r.end - last_ok)
                last_ok, failing = r.end, False
            errors: dict[str, int] = {}
            for r in failed:
                key = f"{r.call}: {r.error[:160]}"
                errors[key] = errors.get(key, 0) + 1
            out[kind] = {"requests": len(mine), "failed": len(failed),
                         "success_pct": round(100.0 * (len(mine) - len(failed)) / len(mine), 2) if mine else 0.0,
                         "longest_outage_s": round(outage, 1), "longest_gap_s": round(gap, 1),
                         "still_failing": failing,
                         "errors": dict(sorted(errors.items(), key=lambda kv: -kv[1])[:5])}
        return out


__all__ = ["BASE", "COLL", "INDEX_COLL", "KINDS", "Checkers", "Request", "create_collections"]
