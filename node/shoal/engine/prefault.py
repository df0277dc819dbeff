"""Fault in memory ahead of a growing column's write position, off the insert path.

A growing segment reserves its full size up front (`segments._Buffer`), and the OS backs each
page on its first write. Those first writes are most of an insert's server time: on the VMs we
measured, writing 52 MB of fresh vectors took 120 ms, the same write to backed pages 3 ms.
`Prefaulter.ahead` asks a background thread to back the next pages with Linux's
`madvise(MADV_POPULATE_WRITE)` (5.14+), which maps pages writable without touching their
contents, so it is safe beside the writer. Where the call is missing, nothing happens and the
writes fault as before. Only writes of at least a megabyte get a window, twice their size and
at most 64 MB, so resident memory runs ahead of the data by at most that much per column, and
many small collections cost nothing extra.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import mmap
import queue
import sys
import threading

import numpy as np

log = logging.getLogger("shoal.engine.prefault")

MADV_POPULATE_WRITE = 23  # linux/mman.h; Python's mmap module does not name it before 3.13
PAGE = mmap.PAGESIZE
MIN_WRITE_BYTES = 1 << 20  # smaller writes fault few pages; backing ahead of them is not worth the memory
MAX_WINDOW_BYTES = 64 << 20


def page_span(start: int, stop: int, base: int, end: int) -> tuple[int, int]:
    """The whole pages inside [start, stop) ∩ [base, end) as (address, length); length 0 when none."""
    lo = -(-max(start, base) // PAGE) * PAGE
    hi = min(stop, end) // PAGE * PAGE
    return lo, max(0, hi - lo)


def window_bytes(last_write_bytes: int) -> int:
    """How far ahead of the write position to back: twice the last write, none for small writes."""
    if last_write_bytes < MIN_WRITE_BYTES:
        return 0
    return min(MAX_WINDOW_BYTES, 2 * last_write_bytes)


def _madvise() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    if not sys.platform.startswith("linux"):  # the advice number is Linux's
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


class Prefaulter:
    """One daemon thread that backs requested pages; requests are dropped once the call fails."""

    def __init__(self) -> None:
        self._madvise = _madvise()
        self._jobs: queue.SimpleQueue[tuple[np.ndarray, int, int]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self._madvise is not None

    def ahead(self, values: np.ndarray, start_row: int, stop_row: int) -> None:
        """Back rows [start_row, stop_row) of the C-contiguous array `values`, in the background."""
        if self._madvise is None or stop_row <= start_row:
            return
        base = values.ctypes.data
        row = values.strides[0]
        addr, length = page_span(base + start_row * row, base + stop_row * row, base, base + values.nbytes)
        if length:
            self._start()
            self._jobs.put((values, addr, length))  # the array ref keeps the memory mapped until done

    def populate(self, addr: int, length: int) -> bool:
        fn = self._madvise
        if fn is None:
            return False
        if fn(addr, length, MADV_POPULATE_WRITE) == 0:
            return True
        err = ctypes.get_errno()
        if err in (errno.EINVAL, errno.ENOSYS):  # the kernel predates MADV_POPULATE_WRITE
            log.info("madvise(MADV_POPULATE_WRITE) unsupported (errno %d): inserts fault pages as they write", err)
            self._madvise = None
        return False

    def _start(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="shoal-prefault", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            values, addr, length = self._jobs.get()
            self.populate(addr, length)
            del values


PREFAULTER = Prefaulter()
