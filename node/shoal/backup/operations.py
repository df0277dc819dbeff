"""The backup operations behind `shoal backup`: create, list, describe, delete, prune, restore, verify.

Each returns plain data (the CLI prints it). Progress goes to a `tqdm` bar on stderr, shown
only on a terminal; `log` receives one line per finished stage.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from tqdm import tqdm

from shoal.backup.admin_client import AdminClient
from shoal.backup.destination import FORMAT, VERSION, Destination, check_backup_name
from shoal.errors import invalid

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def ts_to_datetime(ts: int) -> dt.datetime:
    """A hybrid TSO timestamp's physical part (ms since the epoch, above 18 logical bits)."""
    return dt.datetime.fromtimestamp((ts >> 18) / 1000, tz=dt.UTC)


def _now() -> dt.datetime:
    return dt.datetime.now(tz=dt.UTC)


def default_name(prefix: str = "backup-") -> str:
    return f"{prefix}{_now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


class _Counted:
    """A reader that hashes and counts what passes through it and moves a progress bar."""

    def __init__(self, raw: BinaryIO, bar: tqdm) -> None:
        self.raw = raw
        self.bar = bar
        self.sha = hashlib.sha256()
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        chunk = self.raw.read(n)
        if chunk:
            self.sha.update(chunk)
            self.count += len(chunk)
            self.bar.update(len(chunk))
        return chunk


@contextlib.contextmanager
def _bar(total: int, what: str, progress: bool) -> Iterator[tqdm]:
    with tqdm(total=total, desc=what, unit="B", unit_scale=True, unit_divisor=1024,
              disable=None if progress else True, leave=False) as bar:
        yield bar


def create(
    client: AdminClient, dest: Destination, *, collections: list[str], database: str = "", name: str = "",
    progress: bool = True, log: Log = _quiet,
) -> dict[str, Any]:
    """Snapshot on the node, send the files the destination lacks, write the manifest last."""
    name = check_backup_name(name or default_name())
    if dest.has_manifest(name):
        raise invalid(f"a backup named {name} already exists in {dest.where}")
    started = time.monotonic()
    snap = client.snapshot(database, collections)
    snapped = time.monotonic()
    log(f"snapshot at ts {snap['ts']} ({ts_to_datetime(snap['ts']):%Y-%m-%d %H:%M:%S.%f} UTC): "
        f"{len(snap['collections'])} collections, {len(snap['files'])} files in {snapped - started:.1f}s")
    try:
        files: dict[str, int] = snap["files"]
        total = sum(files.values())
        sent_bytes = sent_files = 0
        with _bar(total, "backup", progress) as bar:
            for sha, size in files.items():
                if dest.has_blob(sha):
                    bar.update(size)
                    continue
                conn, resp = client.open_file(snap["id"], sha)
                try:
                    counted = _Counted(resp, bar)
                    dest.put_blob(sha, counted)  # type: ignore[arg-type]
                finally:
                    conn.close()
                if counted.count != size or counted.sha.hexdigest() != sha:
                    dest.delete_blob(sha)
                    raise invalid(f"file {sha} changed while it was read ({counted.count} of {size} bytes)")
                sent_bytes += size
                sent_files += 1
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "name": name,
            "created_at": _now().isoformat(),
            "ts": snap["ts"],
            "ts_time": ts_to_datetime(snap["ts"]).isoformat(),
            "source": client.uri,
            "collections": snap["collections"],
            "files": files,
            "stats": {
                "bytes": total, "files": len(files), "uploaded_bytes": sent_bytes, "uploaded_files": sent_files,
                "rows": sum(c["rows"] for c in snap["collections"]),
                "seconds": round(time.monotonic() - started, 3),
            },
        }
        dest.put_manifest(manifest)
    finally:
        client.release(snap["id"])
    log(f"sent {sent_files} of {len(files)} files ({sent_bytes} of {total} bytes) in {time.monotonic() - snapped:.1f}s")
    return manifest


def summary(manifest: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": manifest["name"],
        "created_at": manifest["created_at"],
        "ts": manifest["ts"],
        "collections": [
            {"database": c["database"], "name": c["name"], "rows": c["rows"], "segments": len(c["segments"]),
             "indexes": [i["index_name"] for i in c["indexes"]]}
            for c in manifest["collections"]
        ],
        **manifest["stats"],
    }


def list_backups(dest: Destination) -> list[dict[str, Any]]:
    return [summary(dest.manifest(n)) for n in dest.names()]


def delete(dest: Destination, names: list[str], log: Log = _quiet) -> dict[str, Any]:
    """Remove backups (manifest first), then every blob no remaining backup names."""
    for name in names:
        dest.manifest(name)  # exists and is readable
    for name in names:
        dest.delete_manifest(name)
    freed = collect_garbage(dest)
    log(f"deleted {len(names)} backups, {freed} files no other backup uses")
    return {"deleted": names, "files_removed": freed}


def collect_garbage(dest: Destination) -> int:
    """Remove blobs no manifest names. A backup being created at the same moment may lose a
    blob it already sent; run deletes and prunes after creates (the operator does)."""
    keep: set[str] = set()
    for name in dest.names():
        keep.update(dest.manifest(name)["files"])
    gone = 0
    for sha in dest.blobs():
        if sha not in keep:
            dest.delete_blob(sha)
            gone += 1
    return gone


def prune(dest: Destination, *, keep_last: int = 0, max_age_s: float = 0, match: str = "", log: Log = _quiet) -> dict[str, Any]:
    """Retention: keep the newest `keep_last` backups (0: no count limit) and none older than
    `max_age_s` (0: no age limit), among the names that start with `match`. The newest backup
    is always kept."""
    found = sorted(
        (dest.manifest(n) for n in dest.names() if n.startswith(match)),
        key=lambda m: (m["created_at"], m["name"]),
        reverse=True,
    )
    doomed = []
    now = _now()
    for i, m in enumerate(found):
        if i == 0:
            continue
        too_many = keep_last > 0 and i >= keep_last
        too_old = max_age_s > 0 and (now - dt.datetime.fromisoformat(m["created_at"])).total_seconds() > max_age_s
        if too_many or too_old:
            doomed.append(m["name"])
    return delete(dest, doomed, log) if doomed else {"deleted": [], "files_removed": 0}


def restore(
    client: AdminClient, dest: Destination, name: str, *, collections: list[str] | None = None,
    renames: dict[str, str] | None = None, database: str = "", drop_existing: bool = False,
    with_indexes: bool = True, progress: bool = True, log: Log = _quiet,
) -> list[dict[str, Any]]:
    manifest = dest.manifest(name)
    chosen = [
        c for c in manifest["collections"]
        if not collections or c["name"] in collections or f"{c['database']}.{c['name']}" in collections
    ]
    if collections and not chosen:
        raise invalid(f"backup {name} holds none of {collections}")
    plan = {
        "ts": manifest["ts"], "collections": chosen, "renames": renames or {}, "database": database,
        "drop_existing": drop_existing, "with_indexes": with_indexes,
    }
    needed: dict[str, int] = {}
    for c in chosen:
        for seg in c["segments"]:
            shas = [*seg["files"].values(), seg["deletes"]]
            if with_indexes:
                shas += [sha for names in seg["indexes"].values() for sha in names.values()]
            for sha in shas:
                needed[sha] = manifest["files"][sha]
    started = time.monotonic()
    rid = client.restore_begin(plan)
    try:
        with _bar(sum(needed.values()), "restore", progress) as bar:
            for sha, size in needed.items():
                with contextlib.closing(dest.open_blob(sha)) as raw:
                    client.restore_put(rid, sha, _Counted(raw, bar), size)  # type: ignore[arg-type]
        sent = time.monotonic()
        log(f"sent {len(needed)} files ({sum(needed.values())} bytes) in {sent - started:.1f}s")
        done = client.restore_commit(rid, plan)
    except BaseException:
        with contextlib.suppress(Exception):
            client.restore_abort(rid)
        raise
    log(f"restored {len(done)} collections in {time.monotonic() - started:.1f}s")
    return done


def verify(dest: Destination, name: str, *, progress: bool = True) -> dict[str, Any]:
    """Re-read every file of a backup and check its size and SHA-256."""
    manifest = dest.manifest(name)
    bad = []
    with _bar(sum(manifest["files"].values()), "verify", progress) as bar:
        for sha, size in manifest["files"].items():
            try:
                with contextlib.closing(dest.open_blob(sha)) as raw:
                    counted = _Counted(raw, bar)
                    while counted.read(1 << 20):
                        pass
            except Exception as e:  # a missing blob is a finding, not a crash
                bad.append({"file": sha, "problem": str(e)})
                continue
            if counted.count != size or counted.sha.hexdigest() != sha:
                bad.append({"file": sha, "problem": f"{counted.count} bytes (want {size}), sha256 {counted.sha.hexdigest()}"})
    return {"name": name, "files": len(manifest["files"]), "bytes": sum(manifest["files"].values()), "bad": bad}
