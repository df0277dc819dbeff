"""A query node: a full copy of the WAL channels' data, serving reads.

It tails every channel (read_committed: only acknowledged writes) into one local `Follower`
engine with the same apply code as the owners (a collection is on one channel, so the channels
never touch the same collection; what is applied is kept per channel), and answers
search/query/counts/index progress with the standalone read path. At start it loads each
channel's checkpoint (the sealed segments in S3, through a local disk cache, memory-mapped) and
tails Kafka from the checkpoint's offset, not from 0. While it runs it seals at the same FLUSH records as the owner and keeps its
own copy, so a later checkpoint needs no download (share mode: only the segments no share names
and its own share, `shares_node.ShareHolder`). This version builds indexes on the query node
itself (the index role idles).

How fresh a read is follows the request's consistency level as Milvus defines it (the level
the request names, else the collection's; `read_guarantee` holds the rule); positions and
waits are those of the collection's channel:
- Strong: every write acknowledged before the read arrived is visible. The node asks the
  owner for its acknowledged position *while* it runs the read; when the answer is not past
  what was applied before the read began (the usual case), the result stands, else the node
  waits for the position and reads again. So a Strong read costs max(read, position call),
  not their sum.
- Session / Customized: the proxy's own writes (the owner's position after its newest write,
  sent with the read: a local wait) and the request's guarantee timestamp (pymilvus sends its
  last write's timestamp for the collection) are visible: served at once when the node applied
  a record that new, else handled as Strong (a timestamp no record carries, e.g. a delete that
  matched nothing, must not make it wait).
- Bounded (pymilvus's default for a new collection): the node is within `GRACEFUL_S` of the
  owner, checked by a background loop, not per read; plus the session as above (stronger than
  Milvus, which may hide a client's newest writes, so insert-then-search keeps working).
- Eventually: what the node has, no wait.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from shoal.cluster import gather, shares
from shoal.cluster.roles.checkpoint import open_segment_store, read_checkpoint, resume
from shoal.cluster.roles.common import ClusterEnv, Registration, owner_key, wait_until
from shoal.cluster.roles.follower import Follower
from shoal.cluster.roles.shares_node import ShareHolder
from shoal.cluster.routing import READ_METHODS, channel_of
from shoal.cluster.rpc import RpcClient, Unavailable
from shoal.engine.collection_data import READ_SHARE
from shoal.engine.requests import ConsistencyLevel
from shoal.errors import Code, ShoalError
from shoal.storage.kafka_wal import KafkaTail, topic_exists

log = logging.getLogger(__name__)

READ_WAIT_S = 60.0
GRACEFUL_S = 5.0  # Milvus's common.gracefulTime default (5000 ms): Bounded's staleness bound
FRESH_PERIOD_S = 0.5  # how often the background loop confirms the node is level with the owner
ROUTE_CACHE_S = 3.0  # longer than a proxy keeps its list of query nodes (proxy_engine.QUERY_LIST_S)


class QueryNode:
    def __init__(self, env: ClusterEnv, data_dir: Path) -> None:
        self.env = env
        self.data_dir = data_dir
        self.follower = Follower(env, data_dir / "local")
        self.s3 = open_segment_store(env)
        if self.s3 is not None:
            self.follower.import_source = (self.s3, data_dir / "segment-cache")
        self.caught_up = threading.Event()
        self._stop = threading.Event()
        self._owners: dict[int, RpcClient] = {}  # channel -> its owner
        self._owner_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="shoal-position")
        # channel -> monotonic time up to which every acknowledged write of the channel is applied
        self.fresh_at: dict[int, float] = {}
        # what the start-up read: segments from S3, then records from Kafka until caught up
        # (share mode: `segments_left`, the checkpoint segments left to the nodes that serve them)
        self.startup: dict[str, int] = {"checkpoint_lsn": 0, "segments_loaded": 0, "records_replayed": 0,
                                        "segments_left": 0}
        # share mode (`cluster/shares.py`): hold only the sealed segments assigned here
        self.shares = (ShareHolder(env, self.follower, self.s3, data_dir / "segment-cache", self.caught_up)
                       if env.cfg.segment_placement == "share" and self.s3 is not None else None)

    def handlers(self) -> dict[str, Any]:
        return {"read_at": self.read_at_level, "applied_by_channel": lambda: dict(self.follower.applied),
                "startup": lambda: dict(self.startup), "holdings": self.holdings,
                "compactions_settled_on": self.compactions_settled, "read_share_at": self.read_share,
                "share_held": self.share_held,
                # before WAL channels (one channel, 0): what a proxy of that version calls
                "read": lambda m, v, lsn, a, k: self.read(m, v, {0: lsn}, a, k),
                "read_at_level": lambda m, v, lsn, a, k: self.read_at_level(m, v, {0: lsn}, a, k),
                "read_share": lambda m, v, lsn, sh, a, k: self.read_share(m, v, {0: lsn}, sh, a, k),
                "compactions_settled": lambda lsn: self.compactions_settled(0, lsn)}

    def share_held(self) -> dict[str, list[int]] | None:
        """Segment ids held per collection id in share mode; None in copy mode."""
        return self.shares.held() if self.shares is not None else None

    def read_share(self, method: str, meta_version: int, session: dict[int, int], share: dict[str, Any],
                   args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """One node's part of a gathered read (share mode): the read at its level over the segments
        `share` names (`ShareHolder.select`); for a search also its metric and whether higher scores
        rank first."""
        if self.shares is None:
            raise ShoalError(Code.NOT_SUPPORTED, f"query node {self.env.node_id} runs segment_placement copy: it "
                             "cannot answer for a share (every role must run the same segment_placement)")
        token = READ_SHARE.set(self.shares.select(share))
        try:
            result = self.read_at_level(method, meta_version, session, args, kwargs)
        finally:
            READ_SHARE.reset(token)
        return gather.node_part(self.follower.engine, method, args, result)

    def holdings(self) -> dict[str, Any]:
        """What this node holds per collection: its sealed segments ([id, rows]) and growing rows
        (`shoal cluster status`; ids are the channel's, alike on every node)."""
        out: dict[str, Any] = {}
        for meta, data in self.follower.engine._all_collections():
            segments = data.snapshot()
            out[f"{meta.database}.{meta.name}"] = {
                "sealed": sorted([s.segment_id, s.num_rows] for s in segments if s.sealed),
                "growing_rows": sum(s.num_rows for s in segments if not s.sealed),
            }
        return out

    def compactions_settled(self, channel: int, lsn: int) -> bool:
        """Whether this node applied the channel up to `lsn` and finished repeating the compactions
        logged there (the proxy's `compaction_state` is Completed only then)."""
        engine = self.follower.engine
        return (self.follower.wait_applied(channel, lsn, 5.0)
                and not any(engine.compactor.running(c) for c in list(engine.datas)))

    def start(self) -> None:
        threading.Thread(target=self._tail_loop, name="shoal-wal-tail", daemon=True).start()
        threading.Thread(target=self._catalog_loop, name="shoal-catalog-poll", daemon=True).start()
        threading.Thread(target=self._fresh_loop, name="shoal-fresh", daemon=True).start()
        if self.shares is not None:
            threading.Thread(target=self.shares.run, args=(self._stop,), name="shoal-shares", daemon=True).start()

    def _tail_loop(self) -> None:
        if not wait_until(lambda: topic_exists(self.env.kafka, self.env.topic), self._stop, "the WAL topic"):
            return
        channels = self.env.channels()
        starts: dict[int, int] = {}
        try:
            for channel in range(channels):
                ckpt = read_checkpoint(self.env, channel) if self.s3 is not None else None
                # share mode: only the segments no share names and this node's share; the rest stay on their nodes
                keep = self.shares.startup_keep(ckpt) if self.shares is not None else None
                starts[channel], loaded = resume(self.follower, self.env, channel, ckpt, self.s3,
                                                 self.data_dir / "segment-cache", keep=keep)
                self.startup["segments_loaded"] += loaded
        except Exception:
            log.exception("loading the checkpoints' segments failed; exiting")
            os._exit(3)
        self.startup.update(checkpoint_lsn=sum(starts.values()),
                            segments_left=self.shares.skipped_segments if self.shares is not None else 0)
        behind = set(starts)
        done = threading.Lock()

        def caught_up(channel: int) -> None:
            with done:
                behind.discard(channel)
                if behind or self.caught_up.is_set():
                    return
                self.caught_up.set()
            log.info("query node caught up with %d WAL channel(s): %d segments from S3 (%d left to the nodes "
                     "serving them), then %d records from Kafka", channels, self.startup["segments_loaded"],
                     self.startup["segments_left"], self.startup["records_replayed"])

        for channel in range(channels):
            threading.Thread(target=self._tail, args=(channel, starts[channel], caught_up),
                             name=f"shoal-wal-tail-{channel}", daemon=True).start()

    def _tail(self, channel: int, start: int, caught_up: Any) -> None:
        tail = KafkaTail(self.env.kafka, self.env.topic, channel, start)
        try:
            end = tail.end_offset()
            reached = False
            while not self._stop.is_set():
                records, at_end = tail.poll(0.2)
                for rec in records:
                    self.follower.apply(channel, rec)
                if not reached:
                    self.startup["records_replayed"] += len(records)
                if tail.position > self.follower.applied.get(channel, 0):
                    self.follower.mark_applied(channel, tail.position)  # past commit markers and aborted records
                if not reached and (at_end or tail.position >= end):
                    reached = True
                    caught_up(channel)
        except Exception:
            log.exception("the tail of WAL channel %d failed; exiting", channel)
            os._exit(3)
        finally:
            tail.close()

    def _catalog_loop(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.follower.catch_up(0)
            except Exception as e:
                log.warning("catalog poll: %s", e)

    # ---- the owners' acknowledged positions
    def _owner_position(self, channel: int) -> int:
        """The channel owner's acknowledged LSN; 0 when no owner answers (a failover: writes wait
        too). A cached address that fails is looked up again once (the owner may have moved)."""
        position = self._ask_owner(channel)
        return position if position >= 0 else max(0, self._ask_owner(channel))

    def _ask_owner(self, channel: int) -> int:
        try:
            with self._owner_lock:
                owner = self._owners.get(channel)
                if owner is None:
                    value = self.env.get_json(owner_key(channel))
                    if value is None:
                        raise Unavailable(f"no owner of WAL channel {channel} yet")
                    owner = self._owners[channel] = RpcClient(str(value["address"]))
            return int(owner.call("position_of", channel, timeout=5))
        except Unavailable as e:
            log.info("read without the owner's position: %s", e.message)
            with self._owner_lock:
                gone = self._owners.pop(channel, None)
            if gone is not None:
                gone.close()
            return -1

    def _fresh_loop(self) -> None:
        while not self._stop.wait(FRESH_PERIOD_S):
            if not self.caught_up.is_set():
                continue  # the channels are known once the tails run
            for channel in range(self.env.channels()):
                asked = time.monotonic()
                position = self._owner_position(channel)
                if position and self.follower.wait_applied(channel, position, GRACEFUL_S):
                    self.fresh_at[channel] = max(self.fresh_at.get(channel, float("-inf")), asked)

    # ---- reads
    def _channel(self, args: tuple[Any, ...]) -> int:
        """The WAL channel of the collection a read names (database, collection first); 0 for a
        name this node does not know (the read then fails as standalone would)."""
        meta = self.follower.engine.catalog.find(str(args[0]), str(args[1])) if len(args) >= 2 else None
        return channel_of(meta.collection_id, self.env.channels()) if meta is not None else 0

    def read(self, method: str, meta_version: int, lsns: dict[int, int], args: tuple[Any, ...],
             kwargs: dict[str, Any]) -> Any:
        """Protocol 1's read: wait for the LSN the proxy fetched from the owner (always Strong)."""
        if method not in READ_METHODS:
            raise Unavailable(f"{method} is not a query-node call")
        self.follower.catch_up(meta_version)
        channel = self._channel(args)
        self._wait_applied(channel, lsns.get(channel, 0))
        return self.follower.call(method, args, kwargs)

    def read_at_level(
        self, method: str, meta_version: int, session: dict[int, int], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """`session`: per channel, the owner's position after the proxy's newest write there."""
        if method not in READ_METHODS:
            raise Unavailable(f"{method} is not a query-node call")
        self.follower.catch_up(meta_version)
        level, guarantee_ts = self.read_guarantee(method, args)
        if level == ConsistencyLevel.EVENTUALLY:
            return self.follower.call(method, args, kwargs)
        channel = self._channel(args)
        if level != ConsistencyLevel.STRONG:
            self._wait_applied(channel, session.get(channel, 0))  # the proxy's own writes: a local wait
        if level != ConsistencyLevel.STRONG and guarantee_ts <= self.follower.applied_ts.get(channel, 0):
            fresh = time.monotonic() - self.fresh_at.get(channel, float("-inf")) <= GRACEFUL_S
            if level != ConsistencyLevel.BOUNDED or fresh:
                return self.follower.call(method, args, kwargs)
        return self._strong(channel, method, args, kwargs)

    def read_guarantee(self, method: str, args: tuple[Any, ...]) -> tuple[ConsistencyLevel, int]:
        """The level a read asks for (its own, else its collection's) and its guarantee timestamp;
        reads without a consistency (counts, index progress, segments, compaction) are Strong."""
        request = args[2] if method in ("query", "search", "hybrid_search", "text_stats") and len(args) > 2 else None
        consistency = getattr(request, "consistency", None)
        if consistency is None:
            return ConsistencyLevel.STRONG, 0
        if consistency.travel_ts:  # time travel: the state as of that timestamp must be complete
            return ConsistencyLevel.STRONG, 0
        level = consistency.level
        if consistency.use_default or level is None:
            meta = self.follower.engine.catalog.find(str(args[0]), str(args[1]))
            level = ConsistencyLevel(meta.consistency_level) if meta is not None else ConsistencyLevel.STRONG
        return ConsistencyLevel(level), int(consistency.guarantee_ts)

    def _strong(self, channel: int, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        applied = self.follower.applied.get(channel, 0)
        position = self._pool.submit(self._owner_position, channel)
        try:
            result: Any = self.follower.call(method, args, kwargs)
            error: ShoalError | None = None
        except ShoalError as e:  # may be stale (a collection made by a write not yet applied)
            result, error = None, e
        lsn = position.result()
        if lsn > applied:
            self._wait_applied(channel, lsn)
            return self.follower.call(method, args, kwargs)
        if error is not None:
            raise error
        return result

    def _wait_applied(self, channel: int, lsn: int) -> None:
        started = time.monotonic()
        if not self.follower.wait_applied(channel, lsn, READ_WAIT_S):
            raise Unavailable(
                f"query node {self.env.node_id} did not reach LSN {lsn} of WAL channel {channel} within "
                f"{READ_WAIT_S:.0f} s (applied {self.follower.applied.get(channel, 0)})"
            )
        if time.monotonic() - started > 1.0:
            log.info("read waited %.1f s for LSN %d of WAL channel %d", time.monotonic() - started, lsn, channel)

    def drain(self, registration: Registration | None, deadline: float) -> None:
        """SIGTERM: every query node holds every segment of the channels, so handing over means
        another query node serves them: wait (up to half the grace period) until one is
        registered, which a rolling update's replacement does once it loaded the checkpoint and
        caught up. Then withdraw the registration and keep answering for `ROUTE_CACHE_S`, while
        proxies still route here from their cached list; what is in flight then finishes."""
        until = time.monotonic() + max(0.0, deadline - time.monotonic()) / 2
        mine = registration.key.rsplit("/", 1)[1] if registration is not None else ""

        def another() -> bool:
            return any(node != mine for node in self.env.live_nodes("query"))

        if not wait_until(another, _Until(until), "another query node before handing over"):
            log.warning("query node drain: no other query node is registered; its reads wait for one")
        if registration is not None:
            registration.withdraw()
        if self.shares is not None:  # share mode: answer until the coordinator serves this node's share elsewhere
            until = time.monotonic() + max(0.0, deadline - time.monotonic()) * 3 / 4 - ROUTE_CACHE_S
            if not wait_until(lambda: not self._serving_here(), _Until(until), "its segments to load elsewhere"):
                log.warning("query node drain: segments still served here at the deadline; their reads retry")
        time.sleep(max(0.0, min(ROUTE_CACHE_S, deadline - time.monotonic())))

    def _serving_here(self) -> bool:
        me = self.env.node_id
        docs = self.env.store.list_prefix(shares.PREFIX).values()
        return any(me in g.get("serving", {}).values() for v in docs for g in json.loads(v)["groups"])

    def close(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=False)
        self.follower.close()


class _Until:
    """An Event-like deadline for `wait_until` (it stops waiting once the time has come)."""

    def __init__(self, at: float) -> None:
        self.at = at

    def is_set(self) -> bool:
        return time.monotonic() >= self.at

    def wait(self, timeout: float) -> bool:
        time.sleep(max(0.0, min(timeout, self.at - time.monotonic())))
        return self.is_set()
