"""The coordinator: the catalog's only writer, and the one that assigns the WAL channels.

Active-standby: every coord process campaigns for `coord/leader` (an etcd lease); only the
holder opens the catalog and serves. DDL runs through the standalone `Engine` over the etcd
catalog (`VersionedStore`), so every Milvus rule stays where standalone has it; the coordinator
holds no rows (row counts and index progress are answered by query nodes). Its engine's local
WAL is never written.

Timestamps: the oracle is the standalone one, floored at start by `tso/limit` in etcd, a bound
kept `TSO_WINDOW_MS` ahead of the clock, so a new leader never issues a timestamp its
predecessor may have issued. Streaming nodes stamp writes with their own oracle, floored by the
newest timestamp they replayed (one owner per channel keeps them increasing).

Channel assignment: each channel's owner key names a live streaming node and an epoch. When the
owner's registration lapses (its lease expired: the process died or hung, or it drained), the
coordinator names the live streaming node with the fewest channels, epoch + 1; that node's
`init_transactions` fences the old one. Balance: while one node owns two channels more than
another (a node joined), one channel moves to the one with the fewest per round, the same way
(the old owner sees the key move, refuses that channel's writes, and the proxies retry them on
the new owner once it replayed the channel).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

from shoal.cluster import placement, shares
from shoal.cluster.roles.catalog_sync import VersionedStore
from shoal.cluster.roles.common import OWNER_PREFIX, ClusterEnv, InFlight, Registration, owner_key, wait_until
from shoal.cluster.roles.share_coord import ShareBalancer
from shoal.cluster.routing import COORD_METHODS
from shoal.cluster.rpc import Unavailable
from shoal.engine.engine import Engine
from shoal.engine.replicas import check_replica_change, check_replica_number
from shoal.engine.tso import compose
from shoal.errors import Code, ShoalError
from shoal.storage.kafka_wal import create_topic

log = logging.getLogger(__name__)

TSO_KEY = "tso/limit"
TSO_WINDOW_MS = 3000
REPLICA_METHODS = frozenset({"load_collection", "load_partitions"})



class Coordinator:
    def __init__(self, env: ClusterEnv, data_dir: Path) -> None:
        self.env = env
        self.data_dir = data_dir
        self.engine: Engine | None = None
        self.store: VersionedStore | None = None
        self._stop = threading.Event()
        self.calls = InFlight(f"coordinator {env.node_id}")
        self._query_nodes: set[str] | None = None  # as of the last loop (None: not looked yet)
        self.balance_decisions: dict[tuple[str, str], int] = {}  # (event, action) -> count, for /metrics
        self._placement_lock = threading.Lock()
        self.shares = ShareBalancer(env, self._decide) if env.cfg.segment_placement == "share" else None

    def become_leader(self, stop: threading.Event) -> None:
        def topic() -> bool:
            channels = create_topic(self.env.kafka, self.env.topic, self.env.cfg.wal_channels)
            if channels != self.env.cfg.wal_channels:
                log.warning("the WAL topic %s has %d partitions: the cluster keeps %d WAL channels (wal_channels %d "
                            "applies only to a new cluster)", self.env.topic, channels, channels,
                            self.env.cfg.wal_channels)
            return True

        if not wait_until(topic, stop, "Kafka, to create the WAL topic"):
            return
        self.store = VersionedStore(self.env.meta_store())
        self.engine = Engine(self.data_dir, self.env.cfg.engine_options(), meta_store=self.store)
        limit = self.env.store.get(TSO_KEY)
        if limit is not None:  # a new leader starts above everything its predecessor could issue
            self.engine.tso.observe(int(limit))
        self._save_tso_window()
        threading.Thread(target=self._assign_loop, name="shoal-assign", daemon=True).start()

    def _save_tso_window(self) -> None:
        """Persist a bound `TSO_WINDOW_MS` ahead of the clock; renewed every loop (0.5 s), so the
        oracle never reaches it while this coordinator lives."""
        assert self.engine is not None
        bound = max(compose(int(time.time() * 1000) + TSO_WINDOW_MS), self.engine.tso.last + 1)
        self.env.store.put(TSO_KEY, str(bound).encode())

    def handlers(self) -> dict[str, Any]:
        return {"ddl": self.ddl, "meta_version": self.meta_version, "replicas": self.replicas}

    def replicas(self) -> dict[str, Any]:
        """Who serves what, for `shoal cluster status`: each loaded collection's replica groups
        (query node ids), each WAL channel's owner and each live query node's address."""
        with self.calls:
            if self.engine is None:
                raise Unavailable("this coordinator is a standby")
            owners = self.env.store.list_prefix(OWNER_PREFIX)
            return {"collections": list(self._placements().values()),
                    "channels": {k.rsplit("/", 1)[1]: json.loads(v) for k, v in sorted(owners.items())},
                    "shares": self._share_rows(),
                    "nodes": {n: str(i["address"]) for n, i in self.env.live_nodes("query").items()}}

    def _share_rows(self) -> dict[str, Any]:
        """Share mode: per loaded collection, the rows of sealed segments each node serves, per group."""
        if self.shares is None:
            return {}
        out = {}
        for doc in self._placements().values():
            share = self.env.get_json(shares.key(int(doc["collection_id"])))
            if share is not None:
                rows = self.shares.rows.get(int(doc["collection_id"]), {})
                out[f"{doc['database']}.{doc['name']}"] = shares.rows_per_node(share, rows)
        return out

    def meta_version(self) -> int:
        with self.calls:
            if self.engine is None or self.store is None:
                raise Unavailable("this coordinator is a standby")
            return self.store.version

    def ddl(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[int, Any]:
        with self.calls:
            if self.engine is None or self.store is None:
                raise Unavailable("this coordinator is a standby")
            if method not in COORD_METHODS:
                raise ShoalError(Code.NOT_SUPPORTED, f"{method} is not a coordinator call")
            if method in REPLICA_METHODS:
                return self.store.version, self._replicated(method, args, kwargs)
            value = getattr(self.engine, method)(*args, **kwargs)
            if method in ("release_collection", "release_partitions", "drop_collection", "rename_collection"):
                self._forget_released()
            return self.store.version, value

    def _replicated(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """A load: as many replica groups as asked, over the live query nodes (Milvus's error
        when there are fewer nodes), recorded in etcd after the catalog says loaded."""
        assert self.engine is not None
        database, name = str(args[0]), str(args[1])
        asked = int(kwargs.pop("replica_number", 1) or 1)
        meta = self.engine.catalog.require(database, name)
        doc = self.env.get_json(placement.key(meta.collection_id))
        loaded = meta.loaded or bool(meta.loaded_partitions)
        check_replica_change(int(doc["replica_number"]) if doc and loaded else int(loaded), asked,
                             partitions=method == "load_partitions")
        live = sorted(self.env.live_nodes("query"))
        wanted = check_replica_number(asked, len(live))
        value = getattr(self.engine, method)(*args, **kwargs)
        meta = self.engine.catalog.require(database, name)
        with self._placement_lock:
            doc = self.env.get_json(placement.key(meta.collection_id))
            if doc is None or int(doc["replica_number"]) != wanted:
                doc = placement.new_doc(meta.collection_id, database, meta.name, wanted, live,
                                        int(doc["version"]) if doc else 0)
                self.env.put_json(placement.key(meta.collection_id), doc)
                self._decide("load", "place", f"{database}.{meta.name}: {wanted} replica group(s) {doc['groups']}")
        return value

    def _forget_released(self) -> None:
        """Drop the groups of collections no longer loaded (released, dropped) and follow renames."""
        assert self.engine is not None
        with self._placement_lock:
            for k, doc in self._placements().items():
                meta = self.engine.catalog.collections.get(int(doc["collection_id"]))
                if meta is None or not (meta.loaded or meta.loaded_partitions):
                    self.env.store.delete(k)
                    self._decide("release", "unplace", f"{doc['database']}.{doc['name']}: replica groups removed")
                elif (meta.database, meta.name) != (doc["database"], doc["name"]):
                    self.env.put_json(k, {**doc, "database": meta.database, "name": meta.name,
                                          "version": int(doc["version"]) + 1})

    def _placements(self) -> dict[str, dict[str, Any]]:
        return {k: json.loads(v) for k, v in self.env.store.list_prefix(placement.PREFIX).items()}

    def _replan(self, live: set[str]) -> None:
        """After a query node joined or left: every loaded collection's groups follow (a joining
        node goes to the smallest group, a gone node's group loses it)."""
        with self._placement_lock:
            for k, doc in self._placements().items():
                groups = placement.plan(doc["groups"], sorted(live))
                if groups != doc["groups"]:
                    self.env.put_json(k, {**doc, "groups": groups, "version": int(doc["version"]) + 1})
                    self._decide("replan", "regroup", f"{doc['database']}.{doc['name']}: replica groups "
                                 f"{doc['groups']} -> {groups}")

    def drain(self, registration: Registration | None, deadline: float) -> None:
        """SIGTERM: refuse new DDL (the proxy retries it), finish what runs, then resign the
        leadership so a standby takes over at once instead of after the lease's TTL."""
        self.calls.close()
        if not self.calls.wait_idle(deadline - time.monotonic()):
            log.warning("coordinator drain: DDL still running at the deadline")
        self._stop.set()
        self.env.resign()
        if registration is not None:
            registration.withdraw()

    def _assign_loop(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self._save_tso_window()
                self._assign_once()
                self._balance_once()
                if self.shares is not None:
                    self.shares.step()
            except Exception as e:
                log.warning("coordinator loop: %s", e)

    def _assign_once(self) -> None:
        """Every channel owned by a live streaming node; then at most one channel moved toward
        an even spread (a joining node gets channels from the one that holds most)."""
        live = self.env.live_nodes("streaming")
        if not live:
            return
        owners = {int(k.rsplit("/", 1)[1]): json.loads(v) for k, v in self.env.store.list_prefix(OWNER_PREFIX).items()}
        load = {node: 0 for node in live}
        orphans = []
        for channel in range(self.env.channels()):
            owner = owners.get(channel)
            if owner is not None and owner.get("node") in live:
                load[owner["node"]] += 1
            else:
                orphans.append(channel)
        for channel in orphans:
            node = min(sorted(load), key=lambda n: load[n])
            load[node] += 1
            self._give(channel, node, live, owners.get(channel), "its owner is gone" if channel in owners else "new")
        if orphans:
            return
        most = max(sorted(load), key=lambda n: load[n])
        least = min(sorted(load), key=lambda n: load[n])
        if load[most] - load[least] >= 2:
            channel = max(c for c, o in owners.items() if o.get("node") == most)
            self._give(channel, least, live, owners[channel], f"balance: {most} owns {load[most]}, {least} {load[least]}")

    def _give(self, channel: int, node: str, live: dict[str, Any], owner: dict[str, Any] | None, why: str) -> None:
        epoch = int(owner["epoch"]) + 1 if owner else 1
        self.env.put_json(owner_key(channel), {"node": node, "address": live[node]["address"], "epoch": epoch})
        action = "move" if owner is not None and owner.get("node") in live else "assign"
        self._decide("channel", action, f"WAL channel {channel} -> {node} (epoch {epoch}; {why})")

    def _balance_once(self) -> None:
        """Notice query nodes joining and leaving, and log and count what placement does about it.
        In this version every query node holds every sealed segment of the channel (loaded from
        S3 and caught up with the WAL before it registers), so rows per node are equal and a
        join or leave moves nothing: a joining node is already complete, and a leaving node's
        segments are held by every other node. The decisions are still made and shown here, the
        place segment assignment will take."""
        live = set(self.env.live_nodes("query"))
        before, self._query_nodes = self._query_nodes, live
        if before is None or before != live:
            self._replan(live)
        if before is None:
            return
        if self.shares is not None:  # share mode: the share documents move segments (`share_coord.py`)
            for node in sorted(live - before):
                self._decide("join", "share", f"query node {node} joined; its replica group's segments are re-shared")
            for node in sorted(before - live):
                self._decide("leave", "share", f"query node {node} left; its segments go to the others of its group, "
                             "loaded from S3")
            return
        for node in sorted(live - before):
            self._decide("join", "none", f"query node {node} joined holding every sealed segment (loaded from S3 "
                         f"before it registered); {len(live)} nodes hold equal rows, nothing to move")
        for node in sorted(before - live):
            action = "none" if live else "wait_for_node"
            self._decide("leave", action, f"query node {node} left (drained or its lease lapsed); " + (
                f"the {len(live)} others hold its segments, nothing to load" if live
                else "no query node is left: reads wait until one registers (it loads every segment from S3)"))

    def _decide(self, event: str, action: str, reason: str) -> None:
        self.balance_decisions[(event, action)] = self.balance_decisions.get((event, action), 0) + 1
        log.info("balance: %s", reason)

    def metrics_text(self) -> str:
        """Prometheus lines of the balancing decisions (appended to the role's /metrics)."""
        lines = ["# HELP shoal_balance_decisions_total query node joins and leaves seen by the active "
                 "coordinator, by the placement action taken",
                 "# TYPE shoal_balance_decisions_total counter"]
        lines += [f'shoal_balance_decisions_total{{event="{e}",action="{a}"}} {n}'
                  for (e, a), n in sorted(self.balance_decisions.items())]
        nodes = self._query_nodes
        lines += ["# HELP shoal_balance_query_nodes query nodes registered, as the active coordinator saw last",
                  "# TYPE shoal_balance_query_nodes gauge", f"shoal_balance_query_nodes {len(nodes or ())}"]
        lines += ["# HELP shoal_replica_group_nodes query nodes in each replica group of each loaded collection",
                  "# TYPE shoal_replica_group_nodes gauge"]
        try:
            docs = self._placements().values()
        except Exception as e:  # etcd briefly away: the other lines still answer
            log.info("reading replica groups for /metrics: %s", e)
            docs = []
        for doc in docs:
            for group in placement.groups_of(doc):
                lines.append(f'shoal_replica_group_nodes{{database="{doc["database"]}",collection="{doc["name"]}",'
                             f'replica="{group.replica_id}"}} {len(group.node_ids)}')
        if self.shares is not None:
            lines += ["# HELP shoal_share_rows rows of sealed segments each query node serves (share mode)",
                      "# TYPE shoal_share_rows gauge"]
            try:
                share_rows = self._share_rows()
            except Exception as e:  # etcd briefly away: the other lines still answer
                log.info("reading share documents for /metrics: %s", e)
                share_rows = {}
            for name, groups in share_rows.items():
                database, collection = name.split(".", 1)
                for i, load in enumerate(groups):
                    lines += [f'shoal_share_rows{{database="{database}",collection="{collection}",group="{i}",'
                              f'node="{node}"}} {rows}' for node, rows in sorted(load.items())]
        return "\n".join(lines) + "\n"

    def close(self) -> None:
        self._stop.set()
        if self.shares is not None:
            self.shares.close()
        if self.engine is not None:
            self.engine.close()
