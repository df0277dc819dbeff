"""Object storage for segment files, indexes, WAL batches and backups.

Keys are '/'-separated strings (like S3 keys); values are immutable blobs. Two
implementations of one `ObjectStore` protocol:

- `LocalObjectStore(root)`: one file per key under a directory; every write goes to a
  temporary name, is fsynced, then renamed, so readers see a whole object or none.
- `S3ObjectStore(...)`: any S3 API (AWS, MinIO, SeaweedFS) through boto3, path-style
  addressing; the bucket is created when absent.

A missing key raises `ObjectNotFound` (a `ShoalError` with code 65535 and a `KeyError`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from shoal.errors import Code, ShoalError, invalid
from shoal.storage.durable import write_atomic

_TMP_MARK = ".shoal-tmp-"


class ObjectNotFound(ShoalError, KeyError):
    """The key names no object."""

    def __init__(self, key: str, where: str) -> None:
        super().__init__(Code.UNEXPECTED, f"object {key!r} not found in {where}")
        self.key = key

    def __str__(self) -> str:
        return self.message


class ObjectStore(Protocol):
    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove an object; removing a missing one is not an error."""
        ...

    def list(self, prefix: str) -> list[str]:
        """Every key that starts with `prefix` (a plain string prefix), sorted."""
        ...

    def put_file(self, key: str, path: Path) -> None: ...

    def get_file(self, key: str, path: Path) -> None:
        """Download to `path` (written to a temporary name, then renamed)."""
        ...

    def put_stream(self, key: str, stream: BinaryIO) -> None:
        """Store what `stream` reads until its end, without holding it all in memory."""
        ...

    def open_read(self, key: str) -> BinaryIO:
        """A readable stream of the object (the caller closes it)."""
        ...


def _check_key(key: str) -> list[str]:
    if not isinstance(key, str) or not key or key.startswith("/") or key.endswith("/"):
        raise invalid(f"bad object key {key!r}")
    parts = key.split("/")
    for part in parts:
        if part in ("", ".", "..") or part.startswith(_TMP_MARK) or "\0" in part:
            raise invalid(f"bad object key {key!r}")
    return parts


def _download_target(path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f"{_TMP_MARK}{path.name}.{uuid.uuid4().hex[:12]}")


class LocalObjectStore:
    """Objects as files under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*_check_key(key))

    def _commit(self, key: str, fill: Any) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, fill, tmp=path.with_name(f"{_TMP_MARK}{path.name}.{uuid.uuid4().hex[:12]}"))

    def put(self, key: str, data: bytes) -> None:
        self._commit(key, lambda f: f.write(data))

    def put_file(self, key: str, path: Path) -> None:
        with open(path, "rb") as src:
            self._commit(key, lambda f: shutil.copyfileobj(src, f, 1 << 20))

    def put_stream(self, key: str, stream: BinaryIO) -> None:
        self._commit(key, lambda f: shutil.copyfileobj(stream, f, 1 << 20))

    def open_read(self, key: str) -> BinaryIO:
        try:
            return open(self._path(key), "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as e:
            raise ObjectNotFound(key, str(self.root)) from e

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as e:
            raise ObjectNotFound(key, str(self.root)) from e

    def get_file(self, key: str, path: Path) -> None:
        tmp = _download_target(path)
        try:
            shutil.copyfile(self._path(key), tmp)
            os.replace(tmp, path)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as e:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            if not self.exists(key):
                raise ObjectNotFound(key, str(self.root)) from e
            raise

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            self._path(key).unlink()

    def list(self, prefix: str) -> list[str]:
        # Walk only below the deepest directory the prefix names.
        head = prefix.rpartition("/")[0]
        base = self.root.joinpath(*_check_key(head)) if head else self.root
        if not base.is_dir():
            return []
        keys = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if not d.startswith(_TMP_MARK)]
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                if name.startswith(_TMP_MARK):
                    continue
                key = name if rel == "." else f"{rel}/{name}"
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)


class S3ObjectStore:
    """Objects in one S3 bucket (created when absent)."""

    def __init__(
        self,
        endpoint_url: str,
        bucket: str,
        access_key: str,
        secret_key: str,
        region: str = "us-east-1",
    ) -> None:
        import boto3  # cluster-only dependency
        from botocore.config import Config

        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self._client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name=region,
            config=Config(
                s3={"addressing_style": "path"},
                signature_version="s3v4",
                retries={"max_attempts": 5, "mode": "standard"},
                connect_timeout=10,
                read_timeout=60,
            ),
        )
        self._ensure_bucket()

    def _where(self) -> str:
        return f"s3 bucket {self.bucket} at {self.endpoint_url}"

    def _ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self._client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as e:
            if _status(e) not in (404, 400) and _code(e) not in ("404", "NoSuchBucket", "NotFound"):
                raise _s3_error(e, f"cannot open {self._where()}") from e
        try:
            self._client.create_bucket(Bucket=self.bucket)
        except ClientError as e:
            if _code(e) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise _s3_error(e, f"cannot create {self._where()}") from e

    def put(self, key: str, data: bytes) -> None:
        _check_key(key)
        self._guard(lambda: self._client.put_object(Bucket=self.bucket, Key=key, Body=bytes(data)), key)

    def get(self, key: str) -> bytes:
        _check_key(key)
        response = self._guard(lambda: self._client.get_object(Bucket=self.bucket, Key=key), key)
        return response["Body"].read()

    def exists(self, key: str) -> bool:
        _check_key(key)
        try:
            self._guard(lambda: self._client.head_object(Bucket=self.bucket, Key=key), key)
        except ObjectNotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        _check_key(key)
        with contextlib.suppress(ObjectNotFound):
            self._guard(lambda: self._client.delete_object(Bucket=self.bucket, Key=key), key)

    def list(self, prefix: str) -> list[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        keys: list[str] = []
        for page in self._guard(lambda: list(paginator.paginate(Bucket=self.bucket, Prefix=prefix)), prefix):
            keys += [obj["Key"] for obj in page.get("Contents", [])]
        return sorted(keys)

    def put_file(self, key: str, path: Path) -> None:
        _check_key(key)
        self._guard(lambda: self._client.upload_file(str(path), self.bucket, key), key)

    def put_stream(self, key: str, stream: BinaryIO) -> None:
        _check_key(key)
        self._guard(lambda: self._client.upload_fileobj(stream, self.bucket, key), key)

    def open_read(self, key: str) -> BinaryIO:
        _check_key(key)
        return self._guard(lambda: self._client.get_object(Bucket=self.bucket, Key=key), key)["Body"]

    def get_file(self, key: str, path: Path) -> None:
        _check_key(key)
        tmp = _download_target(path)
        try:
            self._guard(lambda: self._client.download_file(self.bucket, key, str(tmp)), key)
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def _guard(self, call: Any, key: str) -> Any:
        """Run a boto3 call, turning its errors into ObjectNotFound / ShoalError."""
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return call()
        except ClientError as e:
            if _status(e) == 404 or _code(e) in ("NoSuchKey", "404", "NotFound"):
                raise ObjectNotFound(key, self._where()) from e
            raise _s3_error(e, f"S3 request for {key!r} in {self._where()} failed") from e
        except (BotoCoreError, Boto3Error) as e:
            raise ShoalError(Code.UNEXPECTED, f"S3 request for {key!r} in {self._where()} failed: {e}") from e


def _status(e: Any) -> int | None:
    return e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def _code(e: Any) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


def _s3_error(e: Any, what: str) -> ShoalError:
    return ShoalError(
        Code.UNEXPECTED, f"{what}: {_code(e)} {e.response.get('Error', {}).get('Message', '')}".strip()
    )
