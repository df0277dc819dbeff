"""A streaming node: the owner of WAL channels takes every write of their collections.

The coordinator names an owner per channel (`wal/owner/<channel>`, with an epoch); a node may
own several channels, each a `ChannelOwner`. Takeover (the owner key names this node with a
newer epoch): open the channel's transactional producer (which fences the previous owner),
load the channel's checkpoint (sealed segments from S3, `checkpoint.py`) into a local
`Follower` engine, replay the channel from the checkpoint's offset, then serve. A write runs
the standalone write path (`Engine.insert/upsert/delete/...`: validation, auto ids, one
timestamp, one WAL record) over `KafkaWAL`, so it is acknowledged only after Kafka committed it.
Once fenced, or once the owner key names another node (the coordinator moved the channel to
balance, or gave it away when this node's lease lapsed), the channel refuses writes and its
engine closes; the node's other channels go on.

Checkpoints: on every Flush (all collections of the channel are sealed), whenever the engine
persisted a segment that reached its size, and every `checkpoint_interval_s` when there were
writes, the owner writes its sealed segments to S3 and commits the channel's checkpoint in etcd.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from shoal.cluster import routing
from shoal.cluster.roles.checkpoint import CheckpointWriter, open_segment_store, read_checkpoint, resume
from shoal.cluster.roles.common import OWNER_PREFIX, ClusterEnv, InFlight, Registration, owner_key
from shoal.cluster.roles.follower import Follower
from shoal.cluster.roles.imports import ClusterImporter
from shoal.cluster.rpc import Unavailable
from shoal.storage.kafka_wal import KafkaTail, KafkaWAL, WalUnavailable

log = logging.getLogger(__name__)

# bulk import: the job runs here, in the background (`imports.ClusterImporter`); delete_expired:
# what a dropped ttl_field had expired is deleted through the WAL before the coordinator drops it
WRITE_METHODS = routing.WRITE_METHODS | routing.COMPACTION_METHODS | {"import_files", "delete_expired"}
RELEASE_WAIT_S = 15.0  # a released channel's writes in flight may finish (the proxy's attempt timeout)


class ChannelOwner:
    """One WAL channel this node owns: its engine, producer and checkpoints."""

    def __init__(self, env: ClusterEnv, channel: int, data_dir: Path, s3: Any, lost: Any) -> None:
        self.env = env
        self.channel = channel
        self.data_dir = data_dir  # the node's; the channel's engine lives in `local-<channel>`
        self.s3 = s3
        self._lost = lost  # (channel, why): this channel is no longer ours
        self.follower: Follower | None = None
        self.wal: KafkaWAL | None = None
        self.epoch = 0
        self.serving = threading.Event()
        self._stop = threading.Event()
        self.checkpointer: CheckpointWriter | None = None
        self._ckpt_wanted = threading.Event()
        self._ckpt_seen = 0
        self.startup: dict[str, int] = {}
        self.calls = InFlight(f"WAL channel {channel} on {env.node_id}")
        self.local: Path | None = None  # the engine's directory, one per takeover

    def take_over(self, epoch: int) -> bool:
        """Serve the channel at `epoch`; False when the owner key moved on meanwhile."""
        channel = self.channel
        owner_raw = self.env.store.get(owner_key(channel))  # what a checkpoint commit must still find there
        owner = json.loads(owner_raw) if owner_raw else {}
        if owner.get("node") != self.env.node_id or int(owner.get("epoch", 0)) != epoch:
            return False  # moved again meanwhile; the watch loop looks again
        log.info("taking over WAL channel %d at epoch %d", channel, epoch)
        follower_box: list[Follower] = []
        self.wal = KafkaWAL(
            self.env.kafka, self.env.topic, channel, self.env.transactional_id(channel),
            meta_version=lambda: follower_box[0].version if follower_box else 0,
        )
        # a directory per takeover: the engine of an earlier takeover of the channel may still be closing
        self.local = self.data_dir / f"local-{channel}.e{epoch}"
        follower = Follower(self.env, self.local, wal=self.wal, build_indexes=False)
        follower_box.append(follower)
        replayed_imports: list[dict[str, Any]] = []
        if self.s3 is not None:
            follower.import_source = (self.s3, self.data_dir / "segment-cache")
            follower.on_imported = replayed_imports.extend
        ckpt = read_checkpoint(self.env, channel) if self.s3 is not None else None
        start, loaded = resume(
            follower, self.env, channel, ckpt, self.s3, self.data_dir / "segment-cache", with_indexes=False,
        )
        tail = KafkaTail(self.env.kafka, self.env.topic, channel, start)
        end = tail.end_offset()
        count = 0
        while tail.position < end:
            records, _ = tail.poll(1.0)
            for rec in records:
                follower.apply(channel, rec)
                count += 1
        tail.close()
        follower.catch_up(0)
        self.wal.acked_next = end
        self.follower = follower
        self.epoch = epoch
        self.startup = {"checkpoint_lsn": start, "segments_loaded": loaded, "records_replayed": count}
        importer = ClusterImporter(follower.engine, self.env, self.s3, epoch, self.data_dir / f"import-files-{channel}.e{epoch}",
                                   self._imported, lambda why: self._lost(channel, why), channel)
        follower.engine.importer.close()
        follower.engine.importer = importer
        importer.adopt(follower.imported_jobs)
        if self.s3 is not None:
            wal = self.wal
            self.checkpointer = CheckpointWriter(
                self.env, channel, self.s3, follower.engine, owner_raw, epoch, lambda: wal.acked_next, ckpt,
            )
            self._ckpt_seen = start
            wal.on_checkpoint = self._on_engine_checkpoint
        self._imported(replayed_imports)
        follower.lead()
        if self.env.cfg.segment_placement == "share":  # compact only what query nodes can load from S3
            if self.checkpointer is None:
                follower.engine.auto_compact = False
            else:
                compactor = follower.engine.compactor
                compactor.eligible = self.checkpointer.is_shared
                log_merge = compactor.on_merged

                def merged(*args: Any) -> None:
                    # the query nodes load the merged segment once a checkpoint names it: take one
                    # (it waits on the compactor's gate until this swap is done)
                    if log_merge is not None:
                        log_merge(*args)
                    self._ckpt_wanted.set()

                compactor.on_merged = merged
        self.serving.set()
        if self.checkpointer is not None:  # after `serving`: the loop ends once it is cleared
            threading.Thread(target=self._checkpoint_loop, name=f"shoal-checkpoint-{channel}", daemon=True).start()
        log.info("serving WAL channel %d at epoch %d: %d segments from S3, then %d records replayed from "
                 "offset %d (end offset %d)", channel, epoch, loaded, count, start, end)
        return True

    def _imported(self, entries: list[dict[str, Any]]) -> None:
        """An import committed here: its segments are in S3 already; the next checkpoint names them."""
        if self.checkpointer is not None:
            for entry in entries:
                self.checkpointer.uploaded[entry["path"]] = dict(entry)
            self._ckpt_wanted.set()

    def _on_engine_checkpoint(self, lsn: int) -> None:
        """The engine persisted records up to `lsn` (a segment reached its size, or a flush)."""
        if lsn > self._ckpt_seen:
            self._ckpt_seen = lsn
            self._ckpt_wanted.set()

    def _checkpoint_loop(self) -> None:
        assert self.checkpointer is not None and self.wal is not None
        interval = self.env.cfg.checkpoint_interval_s
        last_acked = self.wal.acked_next
        while not self._stop.is_set() and self.serving.is_set():
            wanted = self._ckpt_wanted.wait(interval)
            if self._stop.is_set() or not self.serving.is_set():
                return
            self._ckpt_wanted.clear()
            acked = self.wal.acked_next
            if not wanted and acked == last_acked:
                continue  # no write since the last checkpoint
            try:
                self.checkpointer.checkpoint(seal_all=not wanted)
                last_acked = acked
            except Exception as e:
                log.warning("checkpoint of WAL channel %d failed (the next one retries): %s", self.channel, e)

    def check(self) -> Follower:
        if not self.serving.is_set() or self.follower is None:
            raise Unavailable(f"{self.env.node_id} does not own WAL channel {self.channel}")
        return self.follower

    def position(self) -> int:
        self.check()
        assert self.wal is not None
        return self.wal.acked_next

    def write(self, method: str, meta_version: int, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        with self.calls:  # a channel being released refuses new writes and lets these finish
            return self._write(method, meta_version, args, kwargs)

    def _write(self, method: str, meta_version: int, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        follower = self.check()
        if method not in WRITE_METHODS:
            raise Unavailable(f"{method} is not a streaming-node call")
        follower.catch_up(meta_version)
        try:
            result = follower.call(method, args, kwargs)
        except WalUnavailable as e:
            if self.wal is not None and self.wal.fenced:
                self._lost(self.channel, e.message)
            raise Unavailable(e.message) from None
        if self.wal is not None and self.wal.fenced:  # fenced during a call that then failed elsewhere
            self._lost(self.channel, "fenced")
        if method == "flush":  # the engine logged a FLUSH record where it sealed (`Follower.lead`)
            if self.checkpointer is not None:
                try:  # Flush answers once its rows are in S3 and named by a committed checkpoint
                    self.checkpointer.checkpoint(seal_all=True)
                except Exception as e:
                    raise Unavailable(f"the checkpoint after the flush failed: {e}") from None
        return result

    def close(self, wait_s: float = 0.0) -> None:
        """Stop serving; writes in flight get up to `wait_s` to finish (a fenced one fails and
        the proxy retries it on the new owner), then the engine closes and its directory goes."""
        self._stop.set()
        self.serving.clear()
        self.calls.close()
        self._ckpt_wanted.set()
        if wait_s and not self.calls.wait_idle(wait_s):
            log.warning("WAL channel %d: writes still running as its engine closes", self.channel)
        if self.follower is not None:
            self.follower.close()
        if self.local is not None:
            shutil.rmtree(self.local, ignore_errors=True)
            shutil.rmtree(self.data_dir / f"import-files-{self.channel}.e{self.epoch}", ignore_errors=True)


class OwnedEngines:
    """A streaming node's channels' engines as the one engine its /metrics reads: every engine
    holds the whole catalog, so catalog counts (and the disk) are one engine's; rows, segments
    and unflushed WAL records add up."""

    ONE_OF = frozenset({"collections", "partitions", "loaded_collections", "loaded_partitions",
                        "data_disk_free_bytes", "data_disk_total_bytes", "index_build_threads"})

    def __init__(self, engines: list[Any]) -> None:
        self.engines = engines

    def _merged(self, parts: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for part in parts:
            for k, v in part.items():
                out[k] = max(out.get(k, 0), v) if k in self.ONE_OF else out.get(k, 0) + v
        return out

    def gauges(self) -> dict[str, int]:
        return self._merged([e.gauges() for e in self.engines])

    def stats(self) -> dict[str, float]:
        return self._merged([e.stats() for e in self.engines])


class StreamingNode:
    def __init__(self, env: ClusterEnv, data_dir: Path) -> None:
        self.env = env
        self.data_dir = data_dir
        self.s3 = open_segment_store(env)
        self.owners: dict[int, ChannelOwner] = {}  # the channels this node serves (or takes over)
        for stale in data_dir.glob("local-*"):  # engines of an earlier process: this one owns nothing yet
            shutil.rmtree(stale, ignore_errors=True)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.calls = InFlight(f"streaming node {env.node_id}")

    def handlers(self) -> dict[str, Any]:
        return {"write_on": self.write, "write_at_on": self.write_at, "position_of": self.position,
                "startup": self.startup, "channels": self.channels,
                # before WAL channels (one channel, 0): what a proxy of that version calls
                "write": lambda *a: self.write(0, *a), "write_at": lambda *a: self.write_at(0, *a),
                "position": lambda: self.position(0)}

    @property
    def engine(self) -> OwnedEngines | None:
        """What /metrics reads (`launch._engine_of`); None until this node serves a channel."""
        engines = [o.follower.engine for _, o in sorted(self.owners.items()) if o.serving.is_set() and o.follower]
        return OwnedEngines(engines) if engines else None

    def startup(self) -> dict[str, int]:
        """What the takeovers read: segments from S3 and records replayed, summed over the channels."""
        out: dict[str, int] = {}
        for owner in list(self.owners.values()):
            for k, v in owner.startup.items():
                out[k] = out.get(k, 0) + v
        return out

    def channels(self) -> dict[int, int]:
        """The channels this node serves, with their epochs (`shoal cluster status`)."""
        return {c: o.epoch for c, o in sorted(self.owners.items()) if o.serving.is_set()}

    def start(self) -> None:
        threading.Thread(target=self._watch_owners, name="shoal-owner-watch", daemon=True).start()

    def _watch_owners(self) -> None:
        while not self._stop.wait(0.3):
            try:
                keys = self.env.store.list_prefix(OWNER_PREFIX)
            except Exception as e:
                log.warning("reading the channel owners: %s", e)
                continue
            named = {int(k.rsplit("/", 1)[1]): json.loads(v) for k, v in keys.items()}
            for channel, owner in sorted(named.items()):
                mine = owner.get("node") == self.env.node_id
                held = self.owners.get(channel)
                if mine and (held is None or int(owner["epoch"]) > held.epoch and not held.serving.is_set()):
                    self._take_over(channel, int(owner["epoch"]))
                elif not mine and held is not None and held.serving.is_set():
                    self._release(channel, f"the channel moved to {owner.get('node')} (epoch {owner.get('epoch')})")

    def _take_over(self, channel: int, epoch: int) -> None:
        held = ChannelOwner(self.env, channel, self.data_dir, self.s3, self._release)
        with self._lock:
            old = self.owners.get(channel)
            self.owners[channel] = held
        if old is not None:
            old.close()
        try:
            held.take_over(epoch)
        except Exception:
            log.exception("taking over WAL channel %d failed; exiting so a restarted process starts clean", channel)
            os._exit(3)

    def _release(self, channel: int, why: str) -> None:
        """The channel is no longer ours (moved, or fenced): refuse its writes, close its engine."""
        with self._lock:
            held = self.owners.pop(channel, None)
        if held is None:
            return
        if not self._stop.is_set():  # draining or closing: channels moving away are expected
            log.warning("no longer the owner of WAL channel %d: %s; its engine closes", channel, why)
        held.serving.clear()
        threading.Thread(target=held.close, args=(RELEASE_WAIT_S,), name=f"shoal-release-{channel}", daemon=True).start()

    def _owner_of(self, channel: int) -> ChannelOwner:
        held = self.owners.get(channel)
        if held is None:
            raise Unavailable(f"{self.env.node_id} does not own WAL channel {channel}")
        return held

    def position(self, channel: int) -> int:
        """The channel's LSN after its newest acknowledged write: a read that waits for it sees every ack."""
        return self._owner_of(channel).position()

    def write(self, channel: int, method: str, meta_version: int, args: tuple[Any, ...],
              kwargs: dict[str, Any]) -> Any:
        with self.calls:
            return self._owner_of(channel).write(method, meta_version, args, kwargs)

    def write_at(self, channel: int, method: str, meta_version: int, args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> tuple[int, Any]:
        """`write`, answered with the channel's acknowledged position after it: the proxy's session position."""
        result = self.write(channel, method, meta_version, args, kwargs)
        return self.position(channel), result

    def drain(self, registration: Registration | None, deadline: float) -> None:
        """SIGTERM: refuse new writes (the proxy retries them on the next owner), let the ones
        running be acknowledged, then withdraw the registration: the coordinator names other
        live streaming nodes owners with epoch + 1 at once, whose `init_transactions` fences this
        node's producers as in a failover (nothing is left open to abort)."""
        self.calls.close()
        if not self.calls.wait_idle(deadline - time.monotonic()):
            log.warning("streaming node drain: writes still running at the deadline")
        self._stop.set()  # channels moving away now are expected
        if registration is not None:
            registration.withdraw()
        for channel, held in sorted(self.owners.items()):
            if held.serving.is_set():
                log.info("handed WAL channel %d (epoch %d) back to the coordinator", channel, held.epoch)
            held.serving.clear()

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            owners, self.owners = list(self.owners.values()), {}
        for held in owners:
            held.close()
