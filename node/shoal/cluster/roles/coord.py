"""The coordinator: the catalog's only writer, and the one that assigns the WAL channel.

Active-standby: every coord process campaigns for `coord/leader` (an etcd lease); only the
holder opens the catalog and serves. DDL runs through the standalone `Engine` over the etcd
catalog (`VersionedStore`), so every Milvus rule stays where standalone has it; the coordinator
holds no rows (row counts and index progress are answered by query nodes). Its engine's local
WAL is never written.

Timestamps: the oracle is the standalone one, floored at start by `tso/limit` in etcd, a bound
kept `TSO_WINDOW_MS` ahead of the clock, so a new leader never issues a timestamp its
predecessor may have issued. Streaming nodes stamp writes with their own oracle, floored by the
newest timestamp they replayed (one owner per channel keeps them increasing).

Channel assignment: the owner key names a live streaming node and an epoch. When the owner's
registration lapses (its lease expired: the process died or hung), the coordinator names the
next live streaming node with epoch + 1; that node's `init_transactions` fences the old one.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from shoal.cluster.roles.catalog_sync import VersionedStore
from shoal.cluster.roles.common import ClusterEnv, InFlight, Registration, owner_key, wait_until
from shoal.cluster.routing import COORD_METHODS
from shoal.cluster.rpc import Unavailable
from shoal.engine.engine import Engine
from shoal.engine.tso import compose
from shoal.errors import Code, ShoalError
from shoal.storage.kafka_wal import create_topic

log = logging.getLogger(__name__)

TSO_KEY = "tso/limit"
TSO_WINDOW_MS = 3000



class Coordinator:
    def __init__(self, env: ClusterEnv, data_dir: Path) -> None:
        self.env = env
        self.data_dir = data_dir
        self.engine: Engine | None = None
        self.store: VersionedStore | None = None
        self._stop = threading.Event()
        self.calls = InFlight(f"coordinator {env.node_id}")

    def become_leader(self, stop: threading.Event) -> None:
        def topic() -> bool:
            create_topic(self.env.kafka, self.env.topic)
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
        return {"ddl": self.ddl, "meta_version": self.meta_version}

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
            value = getattr(self.engine, method)(*args, **kwargs)
            return self.store.version, value

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
            except Exception as e:
                log.warning("coordinator loop: %s", e)

    def _assign_once(self) -> None:
        live = self.env.live_nodes("streaming")
        owner = self.env.get_json(owner_key())
        if owner is not None and owner.get("node") in live:
            return
        if not live:
            return
        node = sorted(live)[0]
        epoch = int(owner["epoch"]) + 1 if owner else 1
        self.env.put_json(owner_key(), {"node": node, "address": live[node]["address"], "epoch": epoch})
        log.info("WAL channel 0 -> %s (epoch %d)", node, epoch)

    def close(self) -> None:
        self._stop.set()
        if self.engine is not None:
            self.engine.close()
