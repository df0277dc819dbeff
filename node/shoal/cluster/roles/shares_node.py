"""A query node's side of share mode (`cluster/shares.py`): hold the assigned sealed segments, serve its share.

The node keeps following the whole WAL (growing data, deletes, seals are applied as in copy
mode). At start it loads from the checkpoint only what no share names and its own share
(`startup_keep`). Every `SHARE_PERIOD_S` it reads the coordinator's share documents and, for the
replica group it is in:
- loads each segment assigned to it (target or serving) that it does not hold, from the newest
  checkpoint in S3, then applies the deletes logged since that checkpoint
  (`CollectionData.delete_log`, kept by the follower from start-up on);
- releases a sealed segment once the document serves it from another node and does not target
  it here, and that has held for `RELEASE_AFTER_S` (proxies that read an older document are
  then past it; one that is not gets "unavailable" and asks again).
A gathered read names what this node answers for (`select`): a segment it should serve but has
released makes the read fail as unavailable, so the proxy re-reads the document and asks again
instead of getting an answer with a hole in it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shoal.cluster import shares
from shoal.cluster.roles.checkpoint import Keep, checkpointed_collections, fetch_segment, read_index_records
from shoal.cluster.roles.common import ClusterEnv
from shoal.cluster.rpc import Unavailable
from shoal.engine.collection_data import CollectionData
from shoal.engine.segments import Segment

log = logging.getLogger(__name__)

SHARE_PERIOD_S = 0.5
RELEASE_AFTER_S = 4.0  # longer than a proxy reuses its share documents (proxy_engine.QUERY_LIST_S)


class ShareHolder:
    def __init__(self, env: ClusterEnv, follower: Any, s3: Any, cache_dir: Path, ready: threading.Event) -> None:
        self.env = env
        self.follower = follower
        self.s3 = s3
        self.cache_dir = cache_dir
        self.ready = ready  # the node has caught up with the WAL: shares may move from then on
        self.released: dict[int, set[int]] = {}  # collection id -> segment ids released here
        # (collection id, segment id) -> since when it is neither targeted nor served here; ids
        # are unique within a collection only (each WAL channel numbers its collections' segments)
        self._not_mine_since: dict[tuple[int, int], float] = {}
        self._lock = threading.Lock()  # a read's check and its segment list vs. a load or release
        self._loads = 0
        self.loaded_segments = 0
        self.released_segments = 0
        self.skipped_segments = 0  # checkpoint segments a start-up left to other nodes (`startup_keep`)
        # compactions (the owner's; nodes do not repeat them): per collection id, source -> target
        # (from the COMPACT records), and the targets held here (loaded from S3, answered only as `mine`)
        self.superseded: dict[int, dict[int, int]] = {}
        self.merged: dict[int, set[int]] = {}
        follower.keep_delete_log = True
        follower.on_compact = self._compacted

    # ---- reads
    def select(self, share: dict[str, Any]) -> Callable[[CollectionData], list[Segment]]:
        """The segment list of one gathered read (`collection_data.READ_SHARE`)."""
        mine = {int(s) for s in share.get("mine", ())}
        others = {int(s) for s in share.get("others", ())}
        rest = bool(share.get("rest"))

        def pick(data: CollectionData) -> list[Segment]:
            cid = data.collection_id
            with self._lock:
                segments = data.segments
                held = {s.segment_id for s in segments}
                # sources whose compaction target the read's document names: answered by the target
                replaced = {s for s, t in self.superseded.get(cid, {}).items() if t in mine or t in others}
                gone = self.released.get(cid, set()) - held
                lacking = (mine & gone) | ((gone - others - replaced) if rest else set())
                if lacking:
                    raise Unavailable(f"query node {self.env.node_id} no longer holds segment(s) "
                                      f"{sorted(lacking)[:4]} (share mode: they moved); ask again")
                # the rest leaves out compaction targets too: until a document serves one, its sources answer
                skip = self.merged.get(cid, set()) | replaced
            return [s for s in segments if s.segment_id in mine
                    or (rest and s.segment_id not in others and s.segment_id not in skip)]

        return pick

    def held(self) -> dict[str, list[int]]:
        """Segment ids held per collection id (the coordinator moves `serving` by this)."""
        with self._lock:
            return {str(cid): [s.segment_id for s in data.segments]
                    for cid, data in list(self.follower.engine.datas.items())}

    # ---- start-up
    def startup_keep(self, ckpt: dict[str, Any] | None) -> Keep:
        """Which checkpoint segments a starting node loads (`checkpoint.load_checkpoint`): those the
        share documents do not name (every node holds what no share names: the group's first node
        may be this one and answer for it) and those targeted or served here; the others are left
        to their nodes, noted as released here (a read that names one here then answers unavailable
        and asks again), and load later once a document targets them here (`step`)."""
        docs = {int(d["collection_id"]): d
                for d in (json.loads(v) for v in self.env.store.list_prefix(shares.PREFIX).values())}
        me = self.env.node_id
        for cid_text, col in (ckpt or {}).get("collections", {}).items():
            # the sources of merged segments the checkpoint names are nowhere in it: never held here
            # (a read that names one here, or counts on this node for one no document names, asks again)
            cid = int(cid_text)
            doc = docs.get(cid) or {"groups": []}
            listed = {int(e["id"]) for e in col["segments"]}
            named = {int(s) for g in doc["groups"] for s in (*g["target"], *g["serving"])}
            merges = {int(s): int(e["id"]) for e in col["segments"] for s in e.get("from", ())}
            with self._lock:
                self.released.setdefault(cid, set()).update((named - listed) | set(merges))
                self.superseded.setdefault(cid, {}).update(merges)

        def keep(collection_id: int, entry: dict[str, Any]) -> bool:
            sid = str(entry["id"])
            groups = (docs.get(collection_id) or {}).get("groups", [])
            named = [g for g in groups if sid in g.get("target", {}) or sid in g.get("serving", {})]
            if any(me in (g["target"].get(sid), g["serving"].get(sid)) for g in named):
                return self._note_merged(collection_id, entry)
            if not named and not entry.get("from"):
                return True
            if not named:  # a compaction target no document names yet: its sources answer, elsewhere
                return False
            with self._lock:
                self.released.setdefault(collection_id, set()).add(int(sid))
            self.skipped_segments += 1
            return False

        return keep

    def _note_merged(self, collection_id: int, entry: dict[str, Any]) -> bool:
        if entry.get("from"):
            with self._lock:
                self.merged.setdefault(collection_id, set()).add(int(entry["id"]))
        return True

    def _compacted(self, collection_id: int, sources: list[int], target: int) -> None:
        """A COMPACT record: the node keeps the sources (reads still name them) until a document
        serves the target, which it loads from S3 once a checkpoint names it and it is targeted here."""
        with self._lock:
            mapped = self.superseded.setdefault(collection_id, {})
            for s in sources:
                mapped[s] = target
        log.info("share mode: the owner merged segments %s into %d; they answer until it is served", sources, target)

    # ---- the loop
    def run(self, stop: threading.Event) -> None:
        while not stop.wait(SHARE_PERIOD_S):
            if not self.ready.is_set():
                continue
            try:
                self.step()
            except Exception as e:  # etcd or S3 briefly away: next round
                log.warning("share mode: %s", e)

    def step(self) -> None:
        docs = [json.loads(v) for v in self.env.store.list_prefix(shares.PREFIX).values()]
        if not docs:
            return
        ckpt = {"collections": checkpointed_collections(self.env)}  # every channel's
        me = self.env.node_id
        engine = self.follower.engine
        records: dict[str, dict[str, Any]] | None = None
        for doc in docs:
            cid = int(doc["collection_id"])
            meta, data = engine.catalog.collections.get(cid), engine.datas.get(cid)
            col = ckpt.get("collections", {}).get(str(cid))
            if meta is None or data is None:
                continue
            with data.write_lock:  # no record of it applied since start-up: the log starts here
                if data.delete_log is None:
                    data.delete_log, data.delete_log_after = [], data.last_lsn
            if col is not None:
                self._trim(data, int(col["checkpoint_lsn"]))
            named = {int(s) for g in doc["groups"] for s in (*g["target"], *g["serving"])}
            known = named | {int(e["id"]) for e in (col or {}).get("segments", [])}
            with self._lock:
                # a segment gone from the checkpoint and the document (a dropped partition, a merged
                # source whose target the document names) is asked of no one
                sup = self.superseded.get(data.collection_id, {})
                known |= {s for s, t in sup.items() if t not in named}
                if data.collection_id in self.released:
                    self.released[data.collection_id] &= known
                held_ids = {s.segment_id for s in data.segments}
                for sid in [s for s in sup if s not in known and s not in held_ids]:
                    del sup[sid]
            group = next((g for g in doc["groups"] if me in g.get("members", ())), None)
            if group is None:
                continue  # not in this collection's groups (yet): keep what is held
            target = {int(s): n for s, n in group["target"].items()}
            serving = {int(s): n for s, n in group["serving"].items()}
            held = {s.segment_id: s for s in data.segments}
            want = sorted(s for s in target if (target[s] == me or serving.get(s) == me) and s not in held)
            entries = {int(e["id"]): e for e in (col or {}).get("segments", [])}
            for sid in want:
                if sid in entries and col is not None:
                    if records is None:
                        records = read_index_records(self.env)
                    self._load(meta, data, entries[sid], int(col["checkpoint_lsn"]), records)
            now = time.monotonic()
            with self._lock:
                merged_away = {s for s, t in self.superseded.get(cid, {}).items() if t in serving}
            for sid, seg in held.items():
                kept = target.get(sid, me) == me or serving.get(sid, me) == me
                if not seg.sealed or (kept and not (sid in merged_away and sid not in serving)):
                    self._not_mine_since.pop((cid, sid), None)
                    continue
                since = self._not_mine_since.setdefault((cid, sid), now)
                if now - since >= RELEASE_AFTER_S:
                    self._release(data, sid)

    def _trim(self, data: CollectionData, checkpoint_lsn: int) -> None:
        """Deletes at or before a committed checkpoint are in its delete logs: drop them here."""
        with data.write_lock:
            if data.delete_log and data.delete_log[0][0] <= checkpoint_lsn:
                data.delete_log = [e for e in data.delete_log if e[0] > checkpoint_lsn]
                data.delete_log_after = max(data.delete_log_after, checkpoint_lsn)

    def _load(self, meta: Any, data: CollectionData, entry: dict[str, Any], checkpoint_lsn: int,
              records: dict[str, dict[str, Any]]) -> None:
        engine = self.follower.engine
        if data.delete_log is None or checkpoint_lsn < data.delete_log_after:
            return  # deletes between that checkpoint and this node's log are unknown: wait for a newer one
        started = time.monotonic()
        self._loads += 1
        rel = f"{entry['path']}.s{self._loads}"
        sm = fetch_segment(engine, meta, {**entry, "path": rel}, self.s3, self.cache_dir, records)
        seg = engine.persistence.load_segment(meta, sm)
        with data.write_lock:
            if data.dropped or any(s.segment_id == seg.segment_id for s in data.segments):
                return
            if seg.partition_id not in {p.partition_id for p in meta.partitions}:
                return
            for lsn, pks, lo, hi, ts, parts in data.delete_log or []:
                if lsn > checkpoint_lsn and (parts is None or seg.partition_id in parts):
                    seg.hide_older(pks, lo, hi, ts)
            for f in data.schema.fields:
                if f.default_value is not None:
                    seg.fill_added_field(f)
            with self._lock:
                data.segments = sorted([*data.segments, seg], key=lambda s: s.segment_id)
                self.released.get(data.collection_id, set()).discard(seg.segment_id)
                if entry.get("from"):
                    self.merged.setdefault(data.collection_id, set()).add(seg.segment_id)
        self.loaded_segments += 1
        engine.indexer.kick()
        log.info("share mode: loaded segment %d (%d rows) from S3 in %.1f s", seg.segment_id, seg.num_rows,
                 time.monotonic() - started)

    def _release(self, data: CollectionData, sid: int) -> None:
        with data.write_lock, self._lock:
            self.released.setdefault(data.collection_id, set()).add(sid)
            data.segments = [s for s in data.segments if s.segment_id != sid]
        self._not_mine_since.pop((data.collection_id, sid), None)
        self.released_segments += 1
        log.info("share mode: released segment %d (served by another node, or merged into one served)", sid)
