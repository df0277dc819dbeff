"""A query node: a full copy of the WAL channel's data, serving reads.

It tails the channel (read_committed: only acknowledged writes) into a local `Follower`
engine with the same apply code as the owner, and answers search/query/counts/index progress
with the standalone read path. A read carries the LSN the owner last acknowledged and the
catalog version the proxy knows; the node waits until it has applied both, which makes every
read Strong. This version builds indexes on the query node itself (the index role idles).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from shoal.cluster.roles.common import ClusterEnv, wait_until
from shoal.cluster.roles.follower import Follower
from shoal.cluster.rpc import Unavailable
from shoal.storage.kafka_wal import KafkaTail, topic_exists

log = logging.getLogger(__name__)

READ_METHODS = frozenset({
    "query", "search", "hybrid_search", "describe_index", "collection_row_count", "partition_row_count",
})
READ_WAIT_S = 60.0


class QueryNode:
    def __init__(self, env: ClusterEnv, data_dir: Path) -> None:
        self.env = env
        self.follower = Follower(env, data_dir / "local")
        self.caught_up = threading.Event()
        self._stop = threading.Event()

    def handlers(self) -> dict[str, Any]:
        return {"read": self.read, "applied": lambda: self.follower.applied}

    def start(self) -> None:
        threading.Thread(target=self._tail_loop, name="shoal-wal-tail", daemon=True).start()
        threading.Thread(target=self._catalog_loop, name="shoal-catalog-poll", daemon=True).start()

    def _tail_loop(self) -> None:
        if not wait_until(lambda: topic_exists(self.env.kafka, self.env.topic), self._stop, "the WAL topic"):
            return
        tail = KafkaTail(self.env.kafka, self.env.topic, 0)
        try:
            end = tail.end_offset()
            while not self._stop.is_set():
                records, at_end = tail.poll(0.2)
                for rec in records:
                    self.follower.apply(rec)
                if tail.position > self.follower.applied:
                    self.follower.mark_applied(tail.position)  # past commit markers and aborted records
                if not self.caught_up.is_set() and (at_end or tail.position >= end):
                    self.caught_up.set()
                    log.info("query node caught up with the WAL channel at offset %d", tail.position)
        except Exception:
            log.exception("the WAL tail failed; exiting")
            import os

            os._exit(3)
        finally:
            tail.close()

    def _catalog_loop(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.follower.catch_up(0)
            except Exception as e:
                log.warning("catalog poll: %s", e)

    def read(self, method: str, meta_version: int, lsn: int, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if method not in READ_METHODS:
            raise Unavailable(f"{method} is not a query-node call")
        started = time.monotonic()
        self.follower.catch_up(meta_version)
        if not self.follower.wait_applied(lsn, READ_WAIT_S):
            raise Unavailable(
                f"query node {self.env.node_id} did not reach LSN {lsn} within {READ_WAIT_S:.0f} s "
                f"(applied {self.follower.applied})"
            )
        if time.monotonic() - started > 1.0:
            log.info("read waited %.1f s for LSN %d", time.monotonic() - started, lsn)
        return self.follower.call(method, args, kwargs)

    def close(self) -> None:
        self._stop.set()
        self.follower.close()
