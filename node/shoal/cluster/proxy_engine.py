"""`ClusterEngine`: the `EngineAPI` the proxy's servicer calls, forwarding to the cluster's roles.

The proxy runs the standalone servicer (`shoal.api.servicer`) over this class, so request
parsing and every api-layer rule are the standalone ones; the engine-level rules run on the
role that executes the call, which is the standalone `Engine` too:
- DDL, load state and index definitions -> the coordinator (the catalog's one writer);
- insert/upsert/delete/truncate/flush and starting a bulk import -> the streaming node that owns
  the WAL channel (an import's state is read from etcd, `roles/imports.py`);
- compaction -> every query node (each compacts its own copy); the proxy keeps which id each
  node gave, so `compaction_state` reports Completed once all have completed;
- search/query/counts/index progress/segments -> a query node, once it applied the catalog version
  this proxy last saw and what the request's consistency level asks (the query node decides:
  `roles/query.py`), so a read costs one call, not a position call and a read.

It keeps no state but cached addresses and a cache of `describe_collection` (every search,
query and insert asks it first; Milvus's proxies keep the same meta cache): an entry is good
while the catalog version is unchanged, which this proxy learns from its own DDL answers and
from etcd at most every `META_CHECK_S` (so another proxy's DDL shows here within that). A role that cannot be reached, or a streaming node
that is not (or no longer) the owner, is retried on the current one for up to `RETRY_S`:
this is what makes a failover invisible to clients apart from latency. A retried write is
safe for explicit primary keys (an insert hides older rows of its keys) and for deletes; an
auto-id insert whose first attempt's outcome was unknown may land twice (documented gap).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
import time
from typing import Any

from shoal.cluster.roles.catalog_sync import VERSION_KEY
from shoal.cluster.roles.common import LEADER_KEY, ClusterEnv, owner_key
from shoal.cluster.roles.imports import list_jobs, read_job
from shoal.cluster.routing import COORD_METHODS, READ_METHODS, WRITE_METHODS
from shoal.cluster.rpc import RpcClient, Unavailable
from shoal.engine.catalog import DEFAULT_DB
from shoal.engine.importer import ImportJob
from shoal.errors import Code, ShoalError
from shoal.security.catalog import SecurityCatalog

log = logging.getLogger(__name__)

RETRY_S = 60.0
WRITE_ATTEMPT_S = 15.0  # a hung owner (SIGSTOP, partition) is given up on, and the new owner tried
READ_ATTEMPT_S = 90.0  # a query node may wait up to 60 s for the WAL (query.READ_WAIT_S)
META_CHECK_S = 0.5
QUERY_LIST_S = 2.0  # how long the list of live query nodes is reused (a draining node serves longer)


class ClusterEngine:
    catalog = None  # no local catalog: the coordinator owns it

    def security_catalog(self, root_password: str | None) -> SecurityCatalog:
        """Users, roles and grants: one document in etcd shared by every proxy (the server
        asks this instead of opening its own store). Changes are compare-and-swap writes;
        another proxy's change counts here within `META_CHECK_S`, as DDL does."""
        return SecurityCatalog(self.env.store, root_password, refresh_s=META_CHECK_S)

    def __init__(self, env: ClusterEnv) -> None:
        self.env = env
        self.meta_version = 0
        self._clients: dict[str, RpcClient] = {}
        self._lock = threading.Lock()
        self._coord_addr = ""
        self._owner_addr = ""
        self._query_addrs: list[str] = []
        self._query_seen = 0.0
        self._rr = itertools.count()
        self._described: dict[tuple[str, str], tuple[int, Any]] = {}
        self._compactions: dict[int, dict[str, int]] = {}
        self._session_lsn = 0  # the owner's acknowledged position after this proxy's newest write  # id answered -> each query node's own id
        self._meta_checked = 0.0

    # ---- plumbing
    def _client(self, address: str) -> RpcClient:
        with self._lock:
            c = self._clients.get(address)
            if c is None:
                c = self._clients[address] = RpcClient(address)
            return c

    def _address(self, key: str) -> str:
        value = self.env.get_json(key)
        if value is None:
            raise Unavailable(f"no node holds {key} yet")
        return str(value["address"])

    def _retrying(self, what: str, attempt: Any) -> Any:
        deadline = time.monotonic() + RETRY_S
        delay = 0.1
        while True:
            try:
                return attempt()
            except Unavailable as e:
                if time.monotonic() > deadline:
                    raise ShoalError(Code.SERVICE_UNAVAILABLE, f"{what}: the cluster did not answer: {e.message}") from None
                log.info("%s: %s; retrying", what, e.message)
                time.sleep(delay)
                delay = min(1.0, delay * 2)
                self._coord_addr = self._owner_addr = ""
                self._query_seen = 0.0

    def _coord(self, method: str, *args: Any, **kwargs: Any) -> Any:
        def attempt() -> Any:
            if not self._coord_addr:
                self._coord_addr = self._address(LEADER_KEY)
            version, value = self._client(self._coord_addr).call("ddl", method, args, kwargs, timeout=WRITE_ATTEMPT_S * 4)
            self.meta_version = max(self.meta_version, version)
            return value

        return self._retrying(method, attempt)

    def _owner(self) -> RpcClient:
        if not self._owner_addr:
            self._owner_addr = self._address(owner_key())
        return self._client(self._owner_addr)

    def _write(self, method: str, *args: Any, **kwargs: Any) -> Any:
        def attempt() -> Any:
            owner = self._owner()
            try:
                lsn, result = owner.call("write_at", method, self.meta_version, args, kwargs, timeout=WRITE_ATTEMPT_S)
            except ShoalError as e:
                if e.code != Code.NOT_SUPPORTED or "internal method" not in e.message:
                    raise
                return owner.call("write", method, self.meta_version, args, kwargs, timeout=WRITE_ATTEMPT_S)
            with self._lock:
                self._session_lsn = max(self._session_lsn, int(lsn))
            return result

        return self._retrying(method, attempt)

    def _query_nodes(self) -> list[str]:
        now = time.monotonic()
        if not self._query_addrs or now - self._query_seen > QUERY_LIST_S:
            self._query_addrs = sorted(n["address"] for n in self.env.live_nodes("query").values())
            self._query_seen = now
        if not self._query_addrs:
            raise Unavailable("no query node is registered")
        return self._query_addrs

    def _query_node(self) -> RpcClient:
        addrs = self._query_nodes()
        return self._client(addrs[next(self._rr) % len(addrs)])

    def _read(self, method: str, *args: Any, address: str = "", **kwargs: Any) -> Any:
        def attempt() -> Any:
            node = self._client(address) if address else self._query_node()
            try:
                return node.call(
                    "read_at_level", method, self.meta_version, self._session_lsn, args, kwargs, timeout=READ_ATTEMPT_S
                )
            except ShoalError as e:
                if e.code != Code.NOT_SUPPORTED or "internal method" not in e.message:
                    raise
            # a query node of protocol 1 (rolling upgrade): it waits for the position we pass
            lsn = int(self._owner().call("position", timeout=5))
            return node.call("read", method, self.meta_version, lsn, args, kwargs, timeout=READ_ATTEMPT_S)

        return self._retrying(method, attempt)

    def compact(self, database: str, collection: str, force: bool = False) -> int:
        addrs = self._retrying("compact", self._query_nodes)
        ids = {a: int(self._read("compact", database, collection, force=force, address=a)) for a in addrs}
        first = ids[addrs[0]]
        if len(self._compactions) > 4096:
            self._compactions.clear()
        self._compactions[first] = ids
        return first

    def compaction_state(self, compaction_id: int) -> Any:
        ids = self._compactions.get(compaction_id)
        if ids is None:  # not started through this proxy (or before its restart): ask one node
            return self._read("compaction_state", compaction_id)
        states = [self._read("compaction_state", cid, address=a) for a, cid in ids.items()]
        running = [s for s in states if s.state != "Completed"]
        return dataclasses.replace(running[0] if running else states[0], compaction_id=compaction_id)

    def describe_collection(self, database: str, name: str) -> Any:
        now = time.monotonic()
        if now - self._meta_checked > META_CHECK_S:
            try:
                raw = self.env.store.get("meta/" + VERSION_KEY)
                self.meta_version = max(self.meta_version, int(raw) if raw else 0)
                self._meta_checked = now
            except Exception as e:  # etcd briefly away: ask the coordinator, as without a cache
                log.info("reading the catalog version: %s", e)
                self._described.clear()
        key = (database, name)
        hit = self._described.get(key)
        if hit is not None and hit[0] == self.meta_version:
            return hit[1]
        value = self._coord("describe_collection", database, name)
        if len(self._described) > 4096:
            self._described.clear()
        self._described[key] = (self.meta_version, value)
        return value

    def ready(self) -> bool:
        """The cluster serves: a coordinator answers, the channel's owner serves, a query node is up."""
        try:
            self.meta_version = max(self.meta_version, int(self._client(self._address(LEADER_KEY)).call("meta_version", timeout=5)))
            self._owner().call("position", timeout=5)
        except Unavailable:
            self._owner_addr = ""
            return False
        return bool(self.env.live_nodes("query"))

    # ---- bulk import: the job runs on the channel's owner, its state is in etcd (roles/imports.py)
    def import_files(self, database: str, collection: str, partition: str, files: list[list[str]],
                     options: dict[str, str]) -> ImportJob:
        return self._write("import_files", database, collection, partition, files, options)

    def import_job(self, job_id: int) -> ImportJob:
        return self._seen_jobs([read_job(self.env, job_id)])[0]

    def list_import_jobs(self, database: str, collection: str = "") -> list[ImportJob]:
        cid = self.describe_collection(database, collection).collection_id if collection else None
        database = database or DEFAULT_DB
        return self._seen_jobs([j for j in list_jobs(self.env)
                                if j.database == database and (cid is None or j.collection_id == cid)])

    def _seen_jobs(self, jobs: list[ImportJob]) -> list[ImportJob]:
        """A client that saw an import complete reads its rows through this proxy at any level
        but Eventually, as on standalone: the commit joins this proxy's session position."""
        with self._lock:
            self._session_lsn = max([self._session_lsn, *(j.commit_lsn for j in jobs)])
        return jobs

    def flush_state(self, database: str, collection: str, flush_ts: int) -> bool:
        return True  # a flush answers once the owner flushed; the WAL in Kafka already held the rows

    def stats(self) -> dict[str, float]:
        return {}

    def close(self) -> None:
        with self._lock:
            for c in self._clients.values():
                c.close()
            self._clients.clear()
        self.env.store.close()


def _forward(kind: str, name: str) -> Any:
    def call(self: ClusterEngine, *args: Any, **kwargs: Any) -> Any:
        return getattr(self, kind)(name, *args, **kwargs)

    call.__name__ = name
    return call


for _name in sorted(COORD_METHODS - {"describe_collection"}):
    setattr(ClusterEngine, _name, _forward("_coord", _name))
for _name in sorted(WRITE_METHODS):
    setattr(ClusterEngine, _name, _forward("_write", _name))
for _name in sorted(READ_METHODS):
    setattr(ClusterEngine, _name, _forward("_read", _name))
