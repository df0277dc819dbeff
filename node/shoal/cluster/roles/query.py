"""A query node: a full copy of the WAL channel's data, serving reads.

It tails the channel (read_committed: only acknowledged writes) into a local `Follower`
engine with the same apply code as the owner, and answers search/query/counts/index progress
with the standalone read path. A read carries the LSN the owner last acknowledged and the
catalog version the proxy knows; the node waits until it has applied both, which makes every
read Strong. At start it loads the channel's checkpoint (the sealed segments in S3, through a
local disk cache, memory-mapped) and tails Kafka from the checkpoint's offset, not from 0.
While it runs it seals at the same FLUSH records as the owner and keeps its own copy, so a
later checkpoint needs no download. This version builds indexes on the query node itself
(the index role idles).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from shoal.cluster.roles.checkpoint import open_segment_store, read_checkpoint, resume
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
        self.data_dir = data_dir
        self.follower = Follower(env, data_dir / "local")
        self.s3 = open_segment_store(env)
        self.caught_up = threading.Event()
        self._stop = threading.Event()
        # what the start-up read: segments from S3, then records from Kafka until caught up
        self.startup: dict[str, int] = {"checkpoint_lsn": 0, "segments_loaded": 0, "records_replayed": 0}

    def handlers(self) -> dict[str, Any]:
        return {"read": self.read, "applied": lambda: self.follower.applied, "startup": lambda: dict(self.startup)}

    def start(self) -> None:
        threading.Thread(target=self._tail_loop, name="shoal-wal-tail", daemon=True).start()
        threading.Thread(target=self._catalog_loop, name="shoal-catalog-poll", daemon=True).start()

    def _tail_loop(self) -> None:
        if not wait_until(lambda: topic_exists(self.env.kafka, self.env.topic), self._stop, "the WAL topic"):
            return
        try:
            ckpt = read_checkpoint(self.env) if self.s3 is not None else None
            start, loaded = resume(self.follower, self.env, ckpt, self.s3, self.data_dir / "segment-cache")
        except Exception:
            log.exception("loading the checkpoint's segments failed; exiting")
            os._exit(3)
        self.startup.update(checkpoint_lsn=start, segments_loaded=loaded)
        tail = KafkaTail(self.env.kafka, self.env.topic, 0, start)
        try:
            end = tail.end_offset()
            while not self._stop.is_set():
                records, at_end = tail.poll(0.2)
                for rec in records:
                    self.follower.apply(rec)
                if not self.caught_up.is_set():
                    self.startup["records_replayed"] += len(records)
                if tail.position > self.follower.applied:
                    self.follower.mark_applied(tail.position)  # past commit markers and aborted records
                if not self.caught_up.is_set() and (at_end or tail.position >= end):
                    self.caught_up.set()
                    log.info("query node caught up with the WAL channel at offset %d: %d segments from S3 "
                             "(checkpoint offset %d), then %d records from Kafka", tail.position, loaded, start,
                             self.startup["records_replayed"])
        except Exception:
            log.exception("the WAL tail failed; exiting")
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
