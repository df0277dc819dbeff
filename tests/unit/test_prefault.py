"""Backing a growing segment's pages ahead of its writes (`shoal.engine.prefault`)."""

from __future__ import annotations

import ctypes
import threading
import time

import numpy as np
import pytest

from shoal.engine.prefault import MAX_WINDOW_BYTES, MIN_WRITE_BYTES, PAGE, PREFAULTER, page_span, window_bytes
from shoal.engine.segments import Segment
from shoal.schema import CollectionSchema, Column, DataType, FieldSchema

DIM = 128
ROW_BYTES = DIM * 4


def test_page_span_keeps_whole_pages_inside_the_array() -> None:
    base, end = 10 * PAGE + 16, 50 * PAGE + 100
    assert page_span(base, end, base, end) == (11 * PAGE, 39 * PAGE)
    assert page_span(20 * PAGE + 1, 30 * PAGE - 1, base, end) == (21 * PAGE, 8 * PAGE)
    assert page_span(0, 100 * PAGE, base, end) == (11 * PAGE, 39 * PAGE)  # clamped to the array
    assert page_span(20 * PAGE + 1, 21 * PAGE + 5, base, end)[1] == 0  # no whole page inside


def test_window_is_twice_the_write_and_none_for_small_writes() -> None:
    assert window_bytes(MIN_WRITE_BYTES - 1) == 0
    assert window_bytes(3 << 20) == 6 << 20
    assert window_bytes(1 << 30) == MAX_WINDOW_BYTES


def _resident(values: np.ndarray, first_row: int, stop_row: int) -> float:
    """Share of the whole pages of rows [first_row, stop_row) the kernel has backed (mincore)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    base = values.ctypes.data
    addr, length = page_span(base + first_row * ROW_BYTES, base + stop_row * ROW_BYTES, base, base + values.nbytes)
    vec = (ctypes.c_ubyte * (length // PAGE))()
    assert libc.mincore(addr, length, vec) == 0, ctypes.get_errno()
    return sum(b & 1 for b in vec) / len(vec)


def _segment() -> Segment:
    schema = CollectionSchema(fields=[
        FieldSchema("id", DataType.INT64, field_id=100, is_primary=True),
        FieldSchema("vec", DataType.FLOAT_VECTOR, field_id=101, dim=DIM),
    ])
    return Segment.growing(1, 1, schema, reserve_rows=1 << 20)


def _rows(lo: int, n: int) -> dict[str, Column]:
    ids = np.arange(lo, lo + n, dtype=np.int64)
    vec = np.repeat(ids[:, None].astype(np.float32), DIM, axis=1)
    return {"id": Column(ids), "vec": Column(vec)}


@pytest.mark.skipif(not PREFAULTER.enabled, reason="no madvise in this libc")
def test_appends_back_the_pages_past_the_last_write_and_no_further() -> None:
    seg = _segment()
    batch = 5000  # 2.4 MB of vectors: the window is twice that
    for i in range(3):
        seg.append(_rows(i * batch, batch), batch, ts=i + 1)
    if not PREFAULTER.enabled:
        pytest.skip("the kernel predates MADV_POPULATE_WRITE")
    values = seg._buffers["vec"].values
    written = 3 * batch
    ahead = window_bytes(batch * ROW_BYTES) // ROW_BYTES // 2  # topped up once half is used
    deadline = time.monotonic() + 120
    while _resident(values, written, written + ahead) < 1.0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _resident(values, written, written + ahead) == 1.0
    assert _resident(values, written + 4 * ahead, len(values)) == 0.0  # the rest stays address space
    assert np.array_equal(seg.columns["vec"].values[:, 0], np.arange(written, dtype=np.float32))


def test_rows_written_while_pages_are_backed_are_kept() -> None:
    seg = _segment()
    batch = 4096
    stop = threading.Event()

    def back_repeatedly() -> None:  # races the writer over the pages it is writing
        while not stop.is_set():
            values = seg._buffers["vec"].values if seg._buffers else None
            if values is None:
                continue
            base, chunk = values.ctypes.data, 1 << 20
            for start in range(base, base + 40 * batch * ROW_BYTES, chunk):
                addr, length = page_span(start, start + chunk, base, base + values.nbytes)
                if length:
                    PREFAULTER.populate(addr, length)

    racer = threading.Thread(target=back_repeatedly)
    racer.start()
    try:
        for i in range(40):
            seg.append(_rows(i * batch, batch), batch, ts=i + 1)
    finally:
        stop.set()
        racer.join()
    vec = seg.columns["vec"].values
    assert np.array_equal(vec, np.repeat(np.arange(40 * batch, dtype=np.float32)[:, None], DIM, axis=1))
