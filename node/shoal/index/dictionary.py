"""Dictionary encoding of a string column, shared by the scalar indexes over VARCHAR: the
sorted distinct values, and each row's position among them (-1 for a null row)."""

from __future__ import annotations

import numpy as np


def encode(values: np.ndarray, valid: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    n = len(values)
    live = np.arange(n) if valid is None else np.flatnonzero(valid)
    uniques, codes = np.unique(values[live], return_inverse=True)
    out = np.full(n, -1, dtype=np.int32)
    out[live] = codes.astype(np.int32)
    return uniques, out


def memory_bytes(uniques: np.ndarray, codes: np.ndarray) -> int:
    """The codes, plus the distinct strings' characters and a pointer each."""
    return int(codes.nbytes + sum(len(s) for s in uniques.tolist()) + 8 * len(uniques))
