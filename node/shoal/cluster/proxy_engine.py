"""`ClusterEngine`: the `EngineAPI` the proxy's servicer calls, forwarding to the cluster's roles.

The proxy runs the standalone servicer (`shoal.api.servicer`) over this class, so request
parsing and every api-layer rule are the standalone ones; the engine-level rules run on the
role that executes the call, which is the standalone `Engine` too:
- DDL, load state and index definitions -> the coordinator (the catalog's one writer);
- insert/upsert/delete/truncate/flush and starting a bulk import -> the streaming node that owns
  the collection's WAL channel (`routing.channel_of`; an import's state is read from etcd,
  `roles/imports.py`);
- compaction -> the owner, which logs each swap in the WAL for the query nodes to repeat (share
  mode: they do not repeat it, the merged segment reaches them through S3, `cluster/shares.py`);
  `compaction_state` reports Completed once the owner and every query node have completed;
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
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from shoal.cluster import gather, placement, shares
from shoal.cluster.roles.catalog_sync import VERSION_KEY
from shoal.cluster.roles.common import LEADER_KEY, ClusterEnv, owner_key
from shoal.cluster.roles.imports import list_jobs, read_job
from shoal.cluster.routing import COORD_METHODS, READ_METHODS, WRITE_METHODS, channel_of
from shoal.cluster.rpc import RpcClient, Unavailable
from shoal.engine.catalog import DEFAULT_DB
from shoal.engine.entity_ttl import TTL_FIELD, check_ttl_properties
from shoal.engine.importer import ImportJob
from shoal.engine.iterators import IteratorStates
from shoal.engine.replicas import ReplicaGroup
from shoal.engine.requests import LoadState
from shoal.errors import Code, ShoalError
from shoal.security.catalog import SecurityCatalog
from shoal.storage.kafka_wal import WalUnavailable

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
        self._owner_addrs: dict[int, str] = {}  # WAL channel -> its owner's address
        self._query_addrs: list[str] = []
        self._node_addrs: dict[str, str] = {}  # query node id -> address
        self._groups: dict[tuple[str, str], list[list[str]]] = {}  # (database, collection) -> node ids per group
        # share mode (`cluster/shares.py`): each collection's replica groups and share document, by id
        self.share_mode = env.cfg.segment_placement == "share"
        self._group_docs: dict[int, list[list[str]]] = {}
        self._shares: dict[int, dict[str, Any]] = {}
        self._gather_pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="shoal-gather") if self.share_mode else None
        self._iterator_states = IteratorStates()  # share mode: search iterators' steps, gathered here
        self._query_seen = 0.0
        self._rr = itertools.count()
        self._described: dict[tuple[str, str], tuple[int, Any]] = {}
        # per WAL channel: the owner's acknowledged position after this proxy's newest write there
        self._session: dict[int, int] = {}
        self._compactions: dict[int, int] = {}  # compaction id -> its collection's channel
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
                self._coord_addr = ""
                self._owner_addrs = {}
                self._query_seen = 0.0

    def _coord(self, method: str, *args: Any, **kwargs: Any) -> Any:
        def attempt() -> Any:
            if not self._coord_addr:
                self._coord_addr = self._address(LEADER_KEY)
            version, value = self._client(self._coord_addr).call("ddl", method, args, kwargs, timeout=WRITE_ATTEMPT_S * 4)
            self.meta_version = max(self.meta_version, version)
            return value

        return self._retrying(method, attempt)

    def _owner(self, channel: int) -> RpcClient:
        address = self._owner_addrs.get(channel)
        if not address:
            address = self._owner_addrs[channel] = self._address(owner_key(channel))
        return self._client(address)

    def _channel(self, database: str, collection: str) -> int:
        """The WAL channel of a collection (its id, from the described-collection cache)."""
        return channel_of(self.describe_collection(database, collection).collection_id, self.env.channels())

    def _write(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """A write on the owner of the collection's channel (database and collection come first)."""
        return self._write_on(self._channel(str(args[0]), str(args[1])), method, args, kwargs)

    def _write_on(self, channel: int, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        def attempt() -> Any:
            owner = self._owner(channel)
            lsn, result = owner.call("write_at_on", channel, method, self.meta_version, args, kwargs,
                                     timeout=WRITE_ATTEMPT_S)
            self._saw(channel, int(lsn))
            return result

        return self._retrying(method, attempt)

    def _saw(self, channel: int, lsn: int) -> None:
        with self._lock:
            self._session[channel] = max(self._session.get(channel, 0), lsn)

    def flush(self, database: str, collections: list[str]) -> dict[str, tuple[list[int], int]]:
        """Each channel's owner flushes its collections."""
        by_channel: dict[int, list[str]] = {}
        for name in collections:
            by_channel.setdefault(self._channel(database, name), []).append(name)
        out: dict[str, tuple[list[int], int]] = {}
        for channel, names in sorted(by_channel.items()):
            out.update(self._write_on(channel, "flush", (database, names), {}))
        return out

    def _query_nodes(self) -> list[str]:
        self._refresh_query_nodes()
        if not self._query_addrs:
            raise Unavailable("no query node is registered")
        return self._query_addrs

    def _refresh_query_nodes(self) -> None:
        """The live query nodes and the replica groups, re-read at most every `QUERY_LIST_S`."""
        now = time.monotonic()
        if self._query_addrs and now - self._query_seen <= QUERY_LIST_S:
            return
        live = self.env.live_nodes("query")
        docs = [json.loads(v) for v in self.env.store.list_prefix(placement.PREFIX).values()]
        share_docs = ([json.loads(v) for v in self.env.store.list_prefix(shares.PREFIX).values()]
                      if self.share_mode else [])
        with self._lock:
            self._node_addrs = {node: str(info["address"]) for node, info in live.items()}
            self._groups = {(str(d["database"]), str(d["name"])): d["groups"] for d in docs}
            self._group_docs = {int(d["collection_id"]): d["groups"] for d in docs}
            self._shares = {int(d["collection_id"]): d for d in share_docs}
            self._query_addrs = sorted(self._node_addrs.values())
            self._query_seen = now

    def _read_order(self, args: tuple[Any, ...]) -> list[str]:
        """The query nodes to try for one read, best first: a node of the next replica group of
        the collection (round robin across groups, then across the group's nodes), then the
        nodes of its other groups, then any other live node. Every node holds every segment in
        this version, so each is a complete answer; the order spreads reads and says who takes
        over when one fails."""
        addrs = self._query_nodes()
        turn = next(self._rr)
        groups = self._groups.get((str(args[0]), str(args[1]))) if len(args) >= 2 else None
        order: list[str] = []
        if groups:
            for g in range(len(groups)):
                group = [self._node_addrs[n] for n in groups[(turn + g) % len(groups)] if n in self._node_addrs]
                order += [group[(turn // len(groups) + i) % len(group)] for i in range(len(group))]
        rest = [a for a in addrs if a not in order]
        return order + [rest[(turn + i) % len(rest)] for i in range(len(rest))]

    def _read(self, method: str, *args: Any, address: str = "", **kwargs: Any) -> Any:
        if self.share_mode and not address and len(args) >= 2:
            return self._gathered(method, args, kwargs)

        def attempt() -> Any:
            order = [address] if address else self._read_order(args)
            failed: Unavailable | None = None
            for addr in order:  # a node gone mid-request: the next replica answers the same request
                try:
                    return self._read_on(self._client(addr), method, args, kwargs)
                except Unavailable as e:
                    log.info("%s on query node %s: %s; trying the next replica", method, addr, e.message)
                    failed = e
            assert failed is not None
            raise failed

        return self._retrying(method, attempt)

    def _gathered(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Share mode: one read answered by every node of one replica group, each for its share
        (`cluster/gather.py`); a group that fails is replaced by the next within the request, and
        the whole read is retried (with fresh documents) while nodes load and release."""
        info = self.describe_collection(str(args[0]), str(args[1]))
        gather.check(method, args, info.schema)
        cid = info.collection_id
        step = gather.iterator_step(method, args, self._iterator_states)
        calls = gather.node_calls(method, args, info.schema, step)

        def attempt() -> Any:
            self._refresh_query_nodes()
            doc = self._shares.get(cid)
            groups = self._group_docs.get(cid) or [sorted(self._node_addrs)]
            turn = next(self._rr)
            failed: Unavailable | None = None
            for g in range(len(groups)):
                i = (turn + g) % len(groups)
                members = [n for n in groups[i] if n in self._node_addrs]
                share_group = doc["groups"][i] if doc is not None and i < len(doc["groups"]) else {}
                plan = shares.read_shares(share_group, members)
                addrs = {**(doc or {}).get("nodes", {}), **self._node_addrs}
                try:
                    asked = calls
                    stats = gather.text_stats_calls(calls)
                    if stats:  # full-text search: the collection's statistics first
                        found = self._gather_once([c for _, c in stats], kwargs, plan, addrs)
                        asked = gather.with_text_stats(calls, [i for i, _ in stats], found)
                    parts = self._gather_once(asked, kwargs, plan, addrs)
                except Unavailable as e:
                    log.info("%s gathered from group %d: %s; trying the next group", method, i, e.message)
                    failed = e
                    continue
                return gather.merge(method, args, parts, info.schema, step, self._iterator_states)
            raise failed or Unavailable("no query node is registered")

        return self._retrying(method, attempt)

    def _gather_once(self, calls: list[gather.Call], kwargs: dict[str, Any], plan: dict[str, dict[str, Any]],
                     addrs: dict[str, str]) -> list[list[dict[str, Any]]]:
        """Every call asked of every node of the plan at once; the answers per call, per node."""
        if not plan:
            raise Unavailable("no query node of the replica group is registered")
        missing = [n for n in plan if not addrs.get(n)]
        if missing:
            raise Unavailable(f"query node(s) {missing} serve segments but have no address")
        assert self._gather_pool is not None
        asked = [[self._gather_pool.submit(self._client(addrs[n]).call, "read_share_at", method, self.meta_version,
                                           dict(self._session), share, args, kwargs, timeout=READ_ATTEMPT_S)
                  for n, share in sorted(plan.items())] for method, args in calls]
        return [[c.result() for c in per_node] for per_node in asked]

    def _read_on(self, node: RpcClient, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return node.call("read_at", method, self.meta_version, dict(self._session), args, kwargs,
                         timeout=READ_ATTEMPT_S)

    def describe_replicas(self, database: str, name: str) -> list[ReplicaGroup]:
        """The coordinator's replica groups of the collection (`cluster/placement.py`), from etcd."""
        info = self.describe_collection(database, name)
        doc = self.env.get_json(placement.key(info.collection_id))
        if doc is None and self.load_state(database, name) == LoadState.LOADED:  # loaded before groups existed
            doc = placement.new_doc(info.collection_id, database, name, 1, sorted(self.env.live_nodes("query")))
        return placement.groups_of(doc, info.num_shards)

    def compact(self, database: str, collection: str, force: bool = False) -> int:
        channel = self._channel(database, collection)
        compaction_id = int(self._write_on(channel, "compact", (database, collection), {"force": force}))
        with self._lock:
            if len(self._compactions) > 4096:
                self._compactions.clear()
            self._compactions[compaction_id] = channel
        return compaction_id

    def compaction_state(self, compaction_id: int) -> Any:
        channel = self._compactions.get(compaction_id)
        if channel is None:  # asked of another proxy, or before a restart: the owner that knows it
            channel = self._channel_knowing(compaction_id)
        state = self._write_on(channel, "compaction_state", (compaction_id,), {})
        if state.state != "Completed":
            return state
        lsn = self._session.get(channel, 0)  # past the owner's COMPACT records: the query nodes repeat them
        self._refresh_query_nodes()
        for addr in list(self._query_addrs):  # none registered: nothing left to repeat it
            try:
                settled = self._client(addr).call("compactions_settled_on", channel, lsn, timeout=READ_ATTEMPT_S)
            except Unavailable:
                continue  # gone: it is no longer asked to read
            except ShoalError as e:
                if e.code != Code.NOT_SUPPORTED:
                    raise
                continue  # an older node (rolling upgrade) that compacts on its own
            if not settled:
                return dataclasses.replace(state, state="Executing")
        return state

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

    def alter_collection(self, database: str, name: str, properties: dict[str, str], delete_keys: list[str]) -> None:
        """As standalone: entities the TTL field had expired stay gone once it is dropped or
        changed, so the owner deletes them through the WAL before the coordinator alters."""
        info = self.describe_collection(database, name)
        old = info.properties.get(TTL_FIELD)
        after = {k: v for k, v in {**info.properties, **properties}.items() if k not in delete_keys}
        if old and after.get(TTL_FIELD) != old:
            check_ttl_properties(info.schema, after)  # a refused alter deletes nothing
            self._write("delete_expired", database, name, old)
        self._coord("alter_collection", database, name, properties, delete_keys)

    def _channel_knowing(self, compaction_id: int) -> int:
        """The channel whose owner knows the compaction (its state is not the unknown id's)."""
        for channel in range(self.env.channels()):
            try:
                self._write_on(channel, "compaction_state", (compaction_id,), {})
                return channel
            except ShoalError as e:
                if e.code == Code.SERVICE_UNAVAILABLE:
                    raise
        return 0  # none knows it: its owner answers "not found"

    def ready(self) -> bool:
        """The cluster serves: a coordinator answers, every channel's owner serves, a query node is up."""
        try:
            self.meta_version = max(self.meta_version, int(self._client(self._address(LEADER_KEY)).call("meta_version", timeout=5)))
            for channel in range(self.env.channels()):
                self._owner(channel).call("position_of", channel, timeout=5)
        except Unavailable:
            self._owner_addrs = {}
            return False
        except WalUnavailable:  # no WAL topic yet
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
        for job in jobs:
            self._saw(channel_of(job.collection_id, self.env.channels()), job.commit_lsn)
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
        if self._gather_pool is not None:
            self._gather_pool.shutdown(wait=False)
        self.env.store.close()


def _forward(kind: str, name: str) -> Any:
    def call(self: ClusterEngine, *args: Any, **kwargs: Any) -> Any:
        return getattr(self, kind)(name, *args, **kwargs)

    call.__name__ = name
    return call


for _name in sorted(COORD_METHODS - {"describe_collection", "alter_collection"}):
    setattr(ClusterEngine, _name, _forward("_coord", _name))
for _name in sorted(WRITE_METHODS - {"flush"}):
    setattr(ClusterEngine, _name, _forward("_write", _name))
for _name in sorted(READ_METHODS):
    setattr(ClusterEngine, _name, _forward("_read", _name))
