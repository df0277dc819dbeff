"""Write-ahead log: durable, ordered, checksummed records with group commit.

The engine appends one record per insert/delete (payloads encoded by `storage.codec`)
and acknowledges the client only when `append` returns. On start-up it replays the
records past its last checkpoint. This module knows bytes and LSNs only.

On disk: files `wal-<first lsn, 20 digits>.log` in one directory, each a sequence of
records ``[payload length u32][crc32 u32][lsn u64][payload]`` (little-endian; the CRC
covers the LSN and the payload). LSNs start at 1 and grow by one per record. A file is
closed and a new one started once it reaches `file_bytes`. Opening the log validates
every file: a torn or corrupt tail (short record, bad CRC, out-of-order LSN) is
truncated off with a warning, so new records always follow a valid prefix.

Durability (`fsync`):
- "always": `append` returns after the record is fsynced. Concurrent appenders share
  fsyncs (group commit): whoever finds no write in flight becomes the leader, writes
  everything queued so far in one write and fsyncs once for all of it.
- "batch": `append` returns after the write(2); a background thread fsyncs every
  `sync_interval_ms`. Survives a process crash; a power cut may lose the last interval.
- "never": written to the OS only; `sync()` forces an fsync.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import struct
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

from shoal.errors import Code, ShoalError, invalid
from shoal.storage.durable import fsync_dir

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<IIQ")
_LSN = struct.Struct("<Q")
_NAME = re.compile(r"^wal-(\d{20})\.log$")
_CHECKPOINT = "CHECKPOINT"
MAX_PAYLOAD = (1 << 32) - 1
POLICIES = ("always", "batch", "never")
# The one default of the `wal_fsync` setting (config, engine and this log all use it): an
# acknowledged write survives a power cut. See docs/configuration.md for what it costs.
DEFAULT_POLICY = "always"


def _file_name(first_lsn: int) -> str:
    return f"wal-{first_lsn:020d}.log"


def _crc(lsn: int, payload: bytes | memoryview) -> int:
    # Payload first, LSN last: appenders checksum the payload outside the log's lock.
    return zlib.crc32(_LSN.pack(lsn), zlib.crc32(payload))


def _header(lsn: int, payload_crc: int, length: int) -> bytes:
    return _HEADER.pack(length, zlib.crc32(_LSN.pack(lsn), payload_crc), lsn)


def frame_record(lsn: int, payload: bytes) -> bytes:
    """One on-disk record (exposed for tests and tools)."""
    return _header(lsn, zlib.crc32(payload), len(payload)) + payload


def _scan(data: bytes, after: int) -> Iterator[tuple[int, int, int, int]]:
    """Yield (lsn, payload start, payload end, record end) of the valid prefix of `data`.

    Stops at the first record that is short, fails its CRC, or whose LSN does not
    follow `after` (the previous LSN; 0 = any first LSN).
    """
    pos = 0
    prev = after
    size = len(data)
    view = memoryview(data)
    while pos + _HEADER.size <= size:
        length, crc, lsn = _HEADER.unpack_from(data, pos)
        start = pos + _HEADER.size
        end = start + length
        if end > size or (prev and lsn != prev + 1) or lsn == 0:
            return
        if _crc(lsn, view[start:end]) != crc:
            return
        yield lsn, start, end, end
        prev = lsn
        pos = end


class WriteAheadLog:
    """An append-only, thread-safe log of byte payloads numbered by LSN."""

    def __init__(
        self,
        directory: Path,
        fsync: str = DEFAULT_POLICY,
        file_bytes: int = 64 << 20,
        sync_interval_ms: float = 10.0,
    ) -> None:
        if fsync not in POLICIES:
            raise invalid(f"WAL fsync policy must be one of {', '.join(POLICIES)}, got {fsync!r}")
        if file_bytes < _HEADER.size:
            raise invalid(f"WAL file_bytes too small: {file_bytes}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.policy = fsync
        self.file_bytes = file_bytes
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        # Held while the current file descriptor is swapped or fsynced outside a leader;
        # taken before _lock, never after it.
        self._fd_lock = threading.Lock()
        # Guarded by _lock:
        self._pending: list[bytes] = []  # record headers and payloads, alternating
        self._pending_first = 0  # LSN of _pending[0]
        self._leader = False
        self._written = 0  # every LSN <= this is in the OS
        self._synced = 0  # every LSN <= this is fsynced
        self._error: BaseException | None = None
        self._closed = False
        # Touched only by the leader (or under _lock when no leader can run):
        self._files: list[tuple[int, Path]] = []  # (first lsn, path), oldest first
        self._fd = -1
        self._fd_size = 0
        self._checkpoint = self._read_checkpoint()
        last = self._recover()
        self._next = last + 1
        self._written = self._synced = last
        self._flusher: threading.Thread | None = None
        self._stop = threading.Event()
        if fsync == "batch":
            self._interval = sync_interval_ms / 1000.0
            self._flusher = threading.Thread(target=self._flush_loop, name="wal-fsync", daemon=True)
            self._flusher.start()

    # ---- start-up ------------------------------------------------------------------

    def _list_files(self) -> list[tuple[int, Path]]:
        found = []
        for entry in self.directory.iterdir():
            m = _NAME.match(entry.name)
            if m:
                found.append((int(m.group(1)), entry))
        return sorted(found)

    def _recover(self) -> int:
        """Validate every file, truncate a bad tail, drop files after it; return the last LSN."""
        files = self._list_files()
        last = 0
        kept: list[tuple[int, Path]] = []
        for i, (first, path) in enumerate(files):
            data = path.read_bytes()
            end = 0
            prev = last if kept else 0
            for lsn, _s, _e, rec_end in _scan(data, prev):
                last, end = lsn, rec_end
            if end < len(data):
                log.warning(
                    "WAL %s: torn or corrupt record at byte %d of %d; truncating the tail",
                    path,
                    end,
                    len(data),
                )
                with open(path, "r+b") as f:
                    f.truncate(end)
                    f.flush()
                    os.fsync(f.fileno())
                later = files[i + 1 :]
                kept.append((first, path))
                for _first, stale in later:
                    log.warning("WAL %s follows a corrupt record; removing it", stale)
                    stale.unlink()
                if later:
                    fsync_dir(self.directory)
                break
            kept.append((first, path))
        self._files = kept
        if kept:
            # An empty newest file still tells the next LSN by its name.
            last = max(last, kept[-1][0] - 1)
            first, path = kept[-1]
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            self._fd_size = os.fstat(self._fd).st_size
        return max(last, self._checkpoint)

    def _read_checkpoint(self) -> int:
        path = self.directory / _CHECKPOINT
        try:
            return int(path.read_text().strip() or 0)
        except FileNotFoundError:
            return 0
        except ValueError:
            log.warning("WAL checkpoint file %s is unreadable; ignoring it", path)
            return 0

    # ---- appending -----------------------------------------------------------------

    def append(self, payload: bytes) -> int:
        """Append one record; return its LSN once it is durable per the fsync policy."""
        if len(payload) > MAX_PAYLOAD:
            raise invalid(f"WAL record too large: {len(payload)} bytes")
        payload_crc = zlib.crc32(payload)
        with self._cv:
            self._check_open()
            lsn = self._next
            self._next += 1
            if not self._pending:
                self._pending_first = lsn
            self._pending += (_header(lsn, payload_crc, len(payload)), payload)
        self._wait(lsn, self.policy == "always")
        return lsn

    def sync(self) -> int:
        """Write and fsync everything appended so far; return the last durable LSN."""
        with self._cv:
            self._check_open()
            target = self._next - 1
        self._wait(target, True)
        return target

    @property
    def last_lsn(self) -> int:
        """The LSN of the newest appended record (0 for an empty log)."""
        with self._lock:
            return self._next - 1

    def _check_open(self) -> None:
        if self._error is not None:
            raise ShoalError(Code.UNEXPECTED, f"WAL {self.directory} failed earlier: {self._error}")
        if self._closed:
            raise ShoalError(Code.UNEXPECTED, f"WAL {self.directory} is closed")

    def _wait(self, lsn: int, durable: bool) -> None:
        """Block until `lsn` is written (and fsynced when `durable`), leading a group if needed."""
        with self._cv:
            while True:
                if (self._synced if durable else self._written) >= lsn:
                    return
                self._check_open()
                if not self._leader:
                    self._leader = True
                    break
                self._cv.wait()
        try:
            self._lead(durable)
        finally:
            with self._cv:
                self._leader = False
                self._cv.notify_all()

    def _lead(self, durable: bool) -> None:
        """Write every queued record (and fsync); runs in at most one thread at a time."""
        with self._cv:
            batch, first = self._pending, self._pending_first
            self._pending = []
        try:
            if batch:
                self._write(first, batch)
            last = first + len(batch) // 2 - 1 if batch else self._written
            with self._cv:
                self._written = max(self._written, last)
            if durable and self._fd >= 0:
                os.fsync(self._fd)
                with self._cv:
                    self._synced = max(self._synced, last)
        except BaseException as e:
            # The queued records are lost and the file state is unknown (a failed fsync
            # may have dropped pages): refuse every later append rather than guess.
            log.error("WAL %s write failed: %s", self.directory, e)
            with self._cv:
                self._error = e
            raise ShoalError(Code.UNEXPECTED, f"WAL write failed: {e}") from e

    def _write(self, first: int, parts: list[bytes]) -> None:
        chunk: list[bytes] = []
        chunk_bytes = 0
        for i in range(0, len(parts), 2):
            if self._fd < 0 or self._fd_size + chunk_bytes >= self.file_bytes:
                self._write_all(b"".join(chunk))
                chunk, chunk_bytes = [], 0
                self._rotate(first + i // 2)
            chunk += parts[i : i + 2]
            chunk_bytes += len(parts[i]) + len(parts[i + 1])
        self._write_all(b"".join(chunk))

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
            self._fd_size += n

    def _rotate(self, first_lsn: int) -> None:
        """Close the current file (fsynced) and start a new one whose first record is `first_lsn`."""
        with self._fd_lock:
            if self._fd >= 0:
                if self.policy != "never":
                    os.fsync(self._fd)
                os.close(self._fd)
            path = self.directory / _file_name(first_lsn)
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            self._fd_size = os.fstat(self._fd).st_size
            if self.policy != "never":
                fsync_dir(self.directory)
            with self._cv:
                self._files.append((first_lsn, path))

    def _flush_loop(self) -> None:
        """ "batch" policy: fsync what is written, beside (not as) the write leader, so
        appenders never wait for this fsync."""
        while not self._stop.wait(self._interval):
            try:
                with self._fd_lock:
                    with self._cv:
                        if self._closed or self._error is not None:
                            return
                        target = self._written
                        behind = self._synced < target and self._fd >= 0
                    # Every LSN <= target is in this file or in an older one that was
                    # fsynced when it was rotated out (rotation needs _fd_lock).
                    if behind:
                        os.fsync(self._fd)
                        with self._cv:
                            self._synced = max(self._synced, target)
                            self._cv.notify_all()
            except OSError as e:
                log.error("WAL %s background fsync failed: %s", self.directory, e)
                with self._cv:
                    self._error = e
                    self._cv.notify_all()
                return

    # ---- reading and truncation ----------------------------------------------------

    def replay(self, after_lsn: int = 0) -> Iterator[tuple[int, bytes]]:
        """Yield (lsn, payload) of every record with lsn > `after_lsn`, in LSN order.

        Sees the records written before the call. Files removed by a concurrent
        checkpoint are skipped.
        """
        with self._cv:
            files = list(self._files)
            limit = self._written
        for i, (first, path) in enumerate(files):
            next_first = files[i + 1][0] if i + 1 < len(files) else None
            if next_first is not None and next_first - 1 <= after_lsn:
                continue
            if first > limit:
                break
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            seen = first - 1
            for lsn, start, end, _rec in _scan(data, 0):
                if lsn > limit:
                    return
                seen = lsn
                if lsn > after_lsn:
                    yield lsn, data[start:end]
            expected = limit if next_first is None else min(limit, next_first - 1)
            if seen < expected:
                log.warning("WAL %s became unreadable after LSN %d; replay stops there", path, seen)
                return

    @property
    def checkpoint_lsn(self) -> int:
        """The highest LSN passed to `mark_checkpoint` (persisted in the log directory)."""
        return self._checkpoint

    def mark_checkpoint(self, lsn: int) -> int:
        """Record that everything up to `lsn` is safe elsewhere; delete files wholly <= lsn.

        Returns the number of files removed.
        """
        with self._cv:
            self._check_open()
            if lsn > self._next - 1:
                raise invalid(f"checkpoint LSN {lsn} is past the end of the WAL ({self._next - 1})")
            if lsn > self._checkpoint:
                tmp = self.directory / (_CHECKPOINT + ".tmp")
                with open(tmp, "w") as f:
                    f.write(str(lsn))
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.directory / _CHECKPOINT)
                fsync_dir(self.directory)
                self._checkpoint = lsn
        return self.truncate_before(lsn + 1)

    def truncate_before(self, lsn: int) -> int:
        """Delete whole files whose records all have LSN < `lsn`; never the newest file."""
        with self._cv:
            files = list(self._files)
            doomed = [path for i, (_first, path) in enumerate(files[:-1]) if files[i + 1][0] - 1 < lsn]
            self._files = [f for f in files if f[1] not in doomed]
        for path in doomed:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        if doomed:
            fsync_dir(self.directory)
        return len(doomed)

    def files(self) -> list[Path]:
        """The log's files, oldest first."""
        with self._cv:
            return [p for _f, p in self._files]

    def close(self) -> None:
        """Flush (fsync unless policy is "never") and release the files; idempotent."""
        with self._cv:
            if self._closed:
                return
        if self._error is None:
            with contextlib.suppress(ShoalError):
                self._wait(self.last_lsn, self.policy != "never")
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join()
        with self._cv:
            self._closed = True  # from here on no thread can become a write leader
            while self._leader:
                self._cv.wait()
        with self._fd_lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> WriteAheadLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
