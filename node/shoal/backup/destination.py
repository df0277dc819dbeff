"""Where backups live: a local directory or `s3://bucket/prefix`, and the layout inside it.

    <dest>/blobs/<sha[:2]>/<sha>           every file, named by its SHA-256 (shared by backups)
    <dest>/backups/<name>/manifest.json    one backup: written last, in one atomic put

Content addresses make every backup incremental: a file already present is not sent again.
A backup without its manifest (interrupted) is not listed and cannot be restored; its blobs
are removed by the next `delete`/`prune`.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any, BinaryIO

from shoal.errors import invalid
from shoal.storage.object_store import LocalObjectStore, ObjectNotFound, ObjectStore, S3ObjectStore

FORMAT = "shoal-backup"
VERSION = 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MANIFEST = "manifest.json"


def check_backup_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise invalid(
            f"bad backup name {name!r}: 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


@dataclass
class S3Options:
    endpoint: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    region: str | None = None

    def resolved(self) -> S3Options:
        """Flags first, then SHOAL_S3_*, then the usual AWS_* variables."""
        env = os.environ
        return S3Options(
            endpoint=self.endpoint or env.get("SHOAL_S3_ENDPOINT") or env.get("AWS_ENDPOINT_URL_S3")
            or env.get("AWS_ENDPOINT_URL"),
            access_key=self.access_key or env.get("SHOAL_S3_ACCESS_KEY") or env.get("AWS_ACCESS_KEY_ID"),
            secret_key=self.secret_key or env.get("SHOAL_S3_SECRET_KEY") or env.get("AWS_SECRET_ACCESS_KEY"),
            region=self.region or env.get("SHOAL_S3_REGION") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
        )


class Destination:
    def __init__(self, store: ObjectStore, prefix: str, where: str) -> None:
        self.store = store
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.where = where

    def _key(self, rel: str) -> str:
        return self.prefix + rel

    @staticmethod
    def blob_rel(sha: str) -> str:
        return f"blobs/{sha[:2]}/{sha}"

    def has_blob(self, sha: str) -> bool:
        return self.store.exists(self._key(self.blob_rel(sha)))

    def put_blob(self, sha: str, stream: BinaryIO) -> None:
        self.store.put_stream(self._key(self.blob_rel(sha)), stream)

    def open_blob(self, sha: str) -> BinaryIO:
        return self.store.open_read(self._key(self.blob_rel(sha)))

    def delete_blob(self, sha: str) -> None:
        self.store.delete(self._key(self.blob_rel(sha)))

    def blobs(self) -> list[str]:
        return [k.rsplit("/", 1)[1] for k in self.store.list(self._key("blobs/"))]

    def has_manifest(self, name: str) -> bool:
        return self.store.exists(self._key(f"backups/{check_backup_name(name)}/{MANIFEST}"))

    def put_manifest(self, manifest: dict[str, Any]) -> None:
        name = check_backup_name(manifest["name"])
        self.store.put(self._key(f"backups/{name}/{MANIFEST}"), json.dumps(manifest, indent=1).encode())

    def manifest(self, name: str) -> dict[str, Any]:
        try:
            raw = self.store.get(self._key(f"backups/{check_backup_name(name)}/{MANIFEST}"))
        except ObjectNotFound:
            raise invalid(f"no backup named {name} in {self.where}") from None
        manifest = json.loads(raw)
        if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
            raise invalid(
                f"backup {name} has format {manifest.get('format')!r} version {manifest.get('version')!r}; "
                f"this shoal reads {FORMAT} version {VERSION}"
            )
        return manifest

    def delete_manifest(self, name: str) -> None:
        self.store.delete(self._key(f"backups/{check_backup_name(name)}/{MANIFEST}"))

    def names(self) -> list[str]:
        keys = self.store.list(self._key("backups/"))
        rel = [k[len(self.prefix):] for k in keys]
        return sorted(r.split("/")[1] for r in rel if r.count("/") == 2 and r.endswith("/" + MANIFEST))


def open_destination(dest: str, s3: S3Options | None = None) -> Destination:
    """`s3://bucket/prefix` or a local directory (plain path or `file://`)."""
    if not dest:
        raise invalid("no backup destination given (a directory or s3://bucket/prefix)")
    if dest.startswith("s3://"):
        bucket, _, prefix = dest[5:].partition("/")
        if not bucket:
            raise invalid(f"no bucket in {dest!r}")
        opts = (s3 or S3Options()).resolved()
        store = S3ObjectStore(opts.endpoint, bucket, opts.access_key, opts.secret_key,  # type: ignore[arg-type]
                              region=opts.region or "us-east-1")
        return Destination(store, prefix, dest)
    path = dest.removeprefix("file://")
    return Destination(LocalObjectStore(path), "", path)
