"""A streaming node: the owner of the WAL channel takes every write.

Takeover (the owner key names this node with a newer epoch): open the transactional producer
(which fences the previous owner), load the channel's checkpoint (sealed segments from S3,
`checkpoint.py`) into a local `Follower` engine, replay the channel from the checkpoint's
offset, then serve. A write runs the standalone write path (`Engine.insert/upsert/delete/...`:
validation, auto ids, one timestamp, one WAL record) over `KafkaWAL`, so it is acknowledged only
after Kafka committed it. Once fenced, or once the owner key names another node, this node
refuses writes and exits, so a restarted process comes back as a clean standby.

Checkpoints: on every Flush (all collections of the channel are sealed), whenever the engine
persisted a segment that reached its size, and every `checkpoint_interval_s` when there were
writes, the owner writes its sealed segments to S3 and commits the checkpoint in etcd.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from shoal.cluster import routing
from shoal.cluster.roles.checkpoint import CheckpointWriter, open_segment_store, read_checkpoint, resume
from shoal.cluster.roles.common import ClusterEnv, InFlight, Registration, owner_key
from shoal.cluster.roles.follower import Follower
from shoal.cluster.roles.imports import ClusterImporter
from shoal.cluster.rpc import Unavailable
from shoal.storage.kafka_wal import KafkaTail, KafkaWAL, WalUnavailable

log = logging.getLogger(__name__)

# bulk import: the job runs here, in the background (`imports.ClusterImporter`); delete_expired:
# what a dropped ttl_field had expired is deleted through the WAL before the coordinator drops it
WRITE_METHODS = routing.WRITE_METHODS | routing.COMPACTION_METHODS | {"import_files", "delete_expired"}


class StreamingNode:
    def __init__(self, env: ClusterEnv, data_dir: Path) -> None:
        self.env = env
        self.data_dir = data_dir
        self.follower: Follower | None = None
        self.wal: KafkaWAL | None = None
        self.epoch = 0
        self.serving = threading.Event()
        self._stop = threading.Event()
        self.s3 = open_segment_store(env)
        self.checkpointer: CheckpointWriter | None = None
        self._ckpt_wanted = threading.Event()
        self._ckpt_seen = 0
        self.startup: dict[str, int] = {}
        self.calls = InFlight(f"streaming node {env.node_id}")

    def handlers(self) -> dict[str, Any]:
        return {"write": self.write, "write_at": self.write_at, "position": self.position,
                "startup": lambda: dict(self.startup)}

    def start(self) -> None:
        threading.Thread(target=self._watch_owner, name="shoal-owner-watch", daemon=True).start()

    def _watch_owner(self) -> None:
        while not self._stop.wait(0.3):
            try:
                owner = self.env.get_json(owner_key())
            except Exception as e:
                log.warning("reading the channel owner: %s", e)
                continue
            if owner is None:
                continue
            mine = owner.get("node") == self.env.node_id
            if mine and int(owner["epoch"]) > self.epoch and not self.serving.is_set():
                try:
                    self._take_over(int(owner["epoch"]))
                except Exception:
                    log.exception("taking over the WAL channel failed; exiting")
                    os._exit(3)
            elif not mine and self.serving.is_set():
                self._step_down(f"the channel moved to {owner.get('node')} (epoch {owner.get('epoch')})")

    def _take_over(self, epoch: int) -> None:
        owner_raw = self.env.store.get(owner_key())  # what a checkpoint commit must still find there
        owner = json.loads(owner_raw) if owner_raw else {}
        if owner.get("node") != self.env.node_id or int(owner.get("epoch", 0)) != epoch:
            return  # moved again meanwhile; the watch loop looks again
        log.info("taking over WAL channel 0 at epoch %d", epoch)
        follower_box: list[Follower] = []
        self.wal = KafkaWAL(
            self.env.kafka, self.env.topic, 0, self.env.transactional_id,
            meta_version=lambda: follower_box[0].version if follower_box else 0,
        )
        follower = Follower(self.env, self.data_dir / "local", wal=self.wal, build_indexes=False)
        follower_box.append(follower)
        replayed_imports: list[dict[str, Any]] = []
        if self.s3 is not None:
            follower.import_source = (self.s3, self.data_dir / "segment-cache")
            follower.on_imported = replayed_imports.extend
        ckpt = read_checkpoint(self.env) if self.s3 is not None else None
        start, loaded = resume(
            follower, self.env, ckpt, self.s3, self.data_dir / "segment-cache", with_indexes=False,
        )
        tail = KafkaTail(self.env.kafka, self.env.topic, 0, start)
        end = tail.end_offset()
        count = 0
        while tail.position < end:
            records, _ = tail.poll(1.0)
            for rec in records:
                follower.apply(rec)
                count += 1
        tail.close()
        follower.catch_up(0)
        self.wal.acked_next = end
        self.follower = follower
        self.epoch = epoch
        self.startup = {"checkpoint_lsn": start, "segments_loaded": loaded, "records_replayed": count}
        importer = ClusterImporter(follower.engine, self.env, self.s3, epoch, self.data_dir / "import-files",
                                   self._imported, self._step_down)
        follower.engine.importer.close()
        follower.engine.importer = importer
        importer.adopt(follower.imported_jobs)
        if self.s3 is not None:
            wal = self.wal
            self.checkpointer = CheckpointWriter(
                self.env, self.s3, follower.engine, owner_raw, epoch, lambda: wal.acked_next, ckpt,
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
            threading.Thread(target=self._checkpoint_loop, name="shoal-checkpoint", daemon=True).start()
        log.info("serving WAL channel 0 at epoch %d: %d segments from S3, then %d records replayed from "
                 "offset %d (end offset %d)", epoch, loaded, count, start, end)

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
                log.warning("checkpoint failed (the next one retries): %s", e)

    def _step_down(self, why: str) -> None:
        if self._stop.is_set():  # draining or closing: the channel moving away is expected
            self.serving.clear()
            return
        log.error("no longer the WAL channel's owner: %s; exiting", why)
        self.serving.clear()
        threading.Timer(0.5, lambda: os._exit(4)).start()

    def _check_owner(self) -> Follower:
        if not self.serving.is_set() or self.follower is None:
            raise Unavailable(f"{self.env.node_id} does not own the WAL channel")
        return self.follower

    def position(self) -> int:
        """The LSN after the newest acknowledged write: a read that waits for it sees every ack."""
        self._check_owner()
        assert self.wal is not None
        return self.wal.acked_next

    def write(self, method: str, meta_version: int, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        with self.calls:
            return self._write(method, meta_version, args, kwargs)

    def drain(self, registration: Registration | None, deadline: float) -> None:
        """SIGTERM: refuse new writes (the proxy retries them on the next owner), let the ones
        running be acknowledged, then withdraw the registration: the coordinator names another
        live streaming node owner with epoch + 1 at once, whose `init_transactions` fences this
        node's producer as in a failover (nothing is left open to abort)."""
        self.calls.close()
        if not self.calls.wait_idle(deadline - time.monotonic()):
            log.warning("streaming node drain: writes still running at the deadline")
        self._stop.set()  # no step-down exit when the channel moves away now
        if registration is not None:
            registration.withdraw()
        if self.serving.is_set():
            log.info("handed WAL channel 0 (epoch %d) back to the coordinator", self.epoch)
        self.serving.clear()

    def _write(self, method: str, meta_version: int, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        follower = self._check_owner()
        if method not in WRITE_METHODS:
            raise Unavailable(f"{method} is not a streaming-node call")
        follower.catch_up(meta_version)
        try:
            result = follower.call(method, args, kwargs)
        except WalUnavailable as e:
            if self.wal is not None and self.wal.fenced:
                self._step_down(e.message)
            raise Unavailable(e.message) from None
        if self.wal is not None and self.wal.fenced:  # fenced during a call that then failed elsewhere
            self._step_down("fenced")
        if method == "flush":  # the engine logged a FLUSH record where it sealed (`Follower.lead`)
            if self.checkpointer is not None:
                try:  # Flush answers once its rows are in S3 and named by a committed checkpoint
                    self.checkpointer.checkpoint(seal_all=True)
                except Exception as e:
                    raise Unavailable(f"the checkpoint after the flush failed: {e}") from None
        return result

    def write_at(self, method: str, meta_version: int, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[int, Any]:
        """`write`, answered with the acknowledged position after it: the proxy's session position."""
        result = self.write(method, meta_version, args, kwargs)
        return self.position(), result

    def close(self) -> None:
        self._stop.set()
        self.serving.clear()
        self._ckpt_wanted.set()
        if self.follower is not None:
            self.follower.close()
