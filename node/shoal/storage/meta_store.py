"""Metadata key-value stores: an embedded file (standalone) or etcd (cluster).

The engine keeps its catalogue (databases, collections, segments, checkpoints) as small
byte values under string keys and changes several keys at once with `commit`, which is
atomic: after a crash either every change of a commit is there or none is. Values are
opaque bytes here; the engine decides their encoding.

- `FileMetaStore`: the whole map in memory, persisted as one checksummed file that is
  rewritten to a temporary name, fsynced and renamed over the old one on each commit.
- `EtcdMetaStore`: keys under a prefix in etcd, through the asyncio `aetcd` client run
  on a private event loop thread; `commit` is one etcd transaction. It is also a
  `RevisionedStore`: a key's revision, and a put that applies only at that revision (for
  state several processes write, such as the users and roles of a cluster's proxies).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import threading
import zlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

from shoal.errors import Code, ShoalError, invalid
from shoal.storage.durable import write_atomic

T = TypeVar("T")


class MetaStore(Protocol):
    """A string → bytes map with atomic multi-key commits."""

    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, value: bytes) -> None: ...

    def delete(self, key: str) -> None: ...

    def list_prefix(self, prefix: str) -> dict[str, bytes]: ...

    def commit(self, puts: Mapping[str, bytes], deletes: Iterable[str]) -> None:
        """Apply `deletes` then `puts` as one atomic change (a key in both ends up put)."""
        ...

    def close(self) -> None: ...


class RevisionedStore(MetaStore, Protocol):
    """A `MetaStore` with compare-and-swap on one key."""

    def get_revision(self, key: str) -> tuple[bytes | None, int]:
        """The value and the revision it was written at; (None, 0) when absent."""
        ...

    def put_if_revision(self, key: str, value: bytes, revision: int) -> int:
        """Put `value` only if `key` is still at `revision` (0: absent); the new revision,
        or 0 when another writer got there first."""
        ...


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not key:
        raise invalid(f"meta key must be a non-empty str, got {key!r}")


def _check_value(key: str, value: bytes) -> None:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise invalid(f"meta value for {key!r} must be bytes, got {type(value).__name__}")


# ---- embedded file ----------------------------------------------------------------

_MAGIC = b"SHM1"
_COUNT = struct.Struct("<4sI")
_ENTRY = struct.Struct("<II")
_CRC = struct.Struct("<I")


def _serialize(data: Mapping[str, bytes]) -> bytes:
    parts = [_COUNT.pack(_MAGIC, len(data))]
    for key, value in data.items():
        raw = key.encode("utf-8", "surrogatepass")
        parts += [_ENTRY.pack(len(raw), len(value)), raw, bytes(value)]
    body = b"".join(parts)
    return body + _CRC.pack(zlib.crc32(body))


def _deserialize(blob: bytes, path: Path) -> dict[str, bytes]:
    def corrupt(why: str) -> ShoalError:
        return ShoalError(Code.UNEXPECTED, f"meta file {path} is corrupt ({why})")

    if len(blob) < _COUNT.size + _CRC.size:
        raise corrupt("too short")
    body, (crc,) = blob[: -_CRC.size], _CRC.unpack(blob[-_CRC.size :])
    if zlib.crc32(body) != crc:
        raise corrupt("checksum mismatch")
    magic, count = _COUNT.unpack_from(body, 0)
    if magic != _MAGIC:
        raise corrupt("bad magic")
    out: dict[str, bytes] = {}
    pos = _COUNT.size
    for _ in range(count):
        klen, vlen = _ENTRY.unpack_from(body, pos)
        pos += _ENTRY.size
        key = body[pos : pos + klen].decode("utf-8", "surrogatepass")
        pos += klen
        out[key] = body[pos : pos + vlen]
        pos += vlen
    if pos != len(body):
        raise corrupt("trailing bytes")
    return out


class FileMetaStore:
    """The whole map in memory; every commit atomically rewrites one file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(self.path.name + ".tmp")
        with contextlib.suppress(FileNotFoundError):
            self._tmp.unlink()  # an interrupted commit: the old file is still whole
        self._lock = threading.Lock()
        self._closed = False
        try:
            self._data = _deserialize(self.path.read_bytes(), self.path)
        except FileNotFoundError:
            self._data = {}

    def get(self, key: str) -> bytes | None:
        with self._lock:
            return self._data.get(key)

    def put(self, key: str, value: bytes) -> None:
        self.commit({key: value}, [])

    def delete(self, key: str) -> None:
        self.commit({}, [key])

    def list_prefix(self, prefix: str) -> dict[str, bytes]:
        with self._lock:
            return {k: v for k, v in sorted(self._data.items()) if k.startswith(prefix)}

    def commit(self, puts: Mapping[str, bytes], deletes: Iterable[str]) -> None:
        deletes = list(deletes)
        for key in deletes:
            _check_key(key)
        for key, value in puts.items():
            _check_key(key)
            _check_value(key, value)
        with self._lock:
            if self._closed:
                raise ShoalError(Code.UNEXPECTED, f"meta store {self.path} is closed")
            new = dict(self._data)
            for key in deletes:
                new.pop(key, None)
            new.update({k: bytes(v) for k, v in puts.items()})
            blob = _serialize(new)
            write_atomic(self.path, lambda f: f.write(blob), tmp=self._tmp)
            self._data = new

    def close(self) -> None:
        with self._lock:
            self._closed = True


# ---- etcd ---------------------------------------------------------------------------


def _parse_endpoint(endpoint: str) -> tuple[str, int]:
    hostport = endpoint.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        return hostport, 2379
    return host.strip("[]"), int(port)


def _range_end(prefix: bytes) -> bytes:
    """The etcd range end that covers every key starting with `prefix`."""
    raw = bytearray(prefix)
    while raw:
        if raw[-1] < 0xFF:
            raw[-1] += 1
            return bytes(raw)
        raw.pop()
    return b"\0"  # etcd: from the key to the end of the key space


class EtcdMetaStore:
    """The `MetaStore` protocol over etcd v3, keys stored under `prefix`."""

    def __init__(
        self,
        endpoints: list[str],
        prefix: str,
        timeout_s: float = 10.0,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        import aetcd  # cluster-only dependency

        if not endpoints:
            raise invalid("etcd endpoints must not be empty")
        self._aetcd = aetcd
        self.endpoints = [_parse_endpoint(e) for e in endpoints]
        self.prefix = prefix
        self._raw_prefix = prefix.encode()
        self._timeout = timeout_s
        self._auth = (username, password)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="etcd-loop", daemon=True)
        self._thread.start()
        self._current = 0
        self._client: Any = None
        self._lock = threading.Lock()
        self._closed = False
        try:
            self._call(lambda c: c.status())
        except BaseException:
            self.close()
            raise

    def _new_client(self) -> Any:
        host, port = self.endpoints[self._current]
        username, password = self._auth
        return self._aetcd.Client(
            host=host,
            port=port,
            username=username,
            password=password,
            timeout=self._timeout,
            options={
                "grpc.max_receive_message_length": 256 << 20,
                "grpc.max_send_message_length": 256 << 20,
            },
        )

    def _call(self, op: Callable[[Any], Awaitable[T]]) -> T:
        """Run `op(client)` on the loop thread; on a connection error try the next endpoint."""
        errors = self._aetcd.exceptions
        with self._lock:
            if self._closed:
                raise ShoalError(Code.UNEXPECTED, "etcd meta store is closed")
            last_error: Exception | None = None
            for _attempt in range(len(self.endpoints)):
                if self._client is None:
                    self._client = self._new_client()
                client = self._client

                async def run(client: Any = client) -> T:
                    return await op(client)

                future = asyncio.run_coroutine_threadsafe(run(), self._loop)
                try:
                    return future.result(self._timeout + 5)
                except (errors.ConnectionFailedError, errors.ConnectionTimeoutError, TimeoutError) as e:
                    future.cancel()
                    last_error = e
                    self._drop_client()
                    self._current = (self._current + 1) % len(self.endpoints)
                except errors.ClientError as e:
                    raise ShoalError(Code.UNEXPECTED, f"etcd request failed: {e!r}") from e
            where = ", ".join(f"{h}:{p}" for h, p in self.endpoints)
            raise ShoalError(Code.UNEXPECTED, f"cannot reach etcd at {where}: {last_error!r}")

    def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(client.close(), self._loop).result(5)

    def _key(self, key: str) -> bytes:
        _check_key(key)
        return self._raw_prefix + key.encode()

    def get(self, key: str) -> bytes | None:
        raw = self._key(key)
        result = self._call(lambda c: c.get(raw))
        return None if result is None else bytes(result.value)

    def put(self, key: str, value: bytes) -> None:
        _check_value(key, value)
        raw = self._key(key)
        self._call(lambda c: c.put(raw, bytes(value)))

    def get_revision(self, key: str) -> tuple[bytes | None, int]:
        raw = self._key(key)
        result = self._call(lambda c: c.get(raw))
        return (None, 0) if result is None else (bytes(result.value), int(result.mod_revision))

    def put_if_revision(self, key: str, value: bytes, revision: int) -> int:
        _check_value(key, value)
        raw = self._key(key)

        async def txn(c: Any) -> int:
            compare = [c.transactions.mod(raw) == revision]  # etcd reads an absent key's as 0
            ok, replies = await c.transaction(compare=compare, success=[c.transactions.put(raw, bytes(value))],
                                              failure=[])
            return int(replies[0].response_put.header.revision) if ok else 0

        return self._call(txn)

    def delete(self, key: str) -> None:
        raw = self._key(key)
        self._call(lambda c: c.delete(raw))

    def list_prefix(self, prefix: str) -> dict[str, bytes]:
        start = self._raw_prefix + prefix.encode()
        result = self._call(lambda c: c.get_range(start, _range_end(start), sort_order="ascend"))
        skip = len(self._raw_prefix)
        return {kv.key[skip:].decode(): bytes(kv.value) for kv in result.kvs}

    def commit(self, puts: Mapping[str, bytes], deletes: Iterable[str]) -> None:
        for key, value in puts.items():
            _check_value(key, value)
        put_keys = {self._key(k): bytes(v) for k, v in puts.items()}
        # etcd refuses a transaction that names one key twice; a put wins over a delete.
        delete_keys = {self._key(k) for k in deletes} - put_keys.keys()
        if not put_keys and not delete_keys:
            return

        async def txn(c: Any) -> None:
            ops = [c.transactions.delete(k) for k in sorted(delete_keys)]
            ops += [c.transactions.put(k, v) for k, v in put_keys.items()]
            await c.transaction(compare=[], success=ops, failure=[])

        self._call(txn)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._loop.is_running():
                self._drop_client()
                self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()
