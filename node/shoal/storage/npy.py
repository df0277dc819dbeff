"""`np.load` behind one lock.

numpy parses every .npy header with `ast.literal_eval`, and CPython 3.11's AST constructor keeps
its recursion depth in state shared by all threads: two threads parsing at once can fail with
"SystemError: AST constructor recursion depth mismatch" (CPython gh-106905; seen in a
compaction running beside a segment load). A header is a few hundred bytes, so taking turns
costs nothing that matters.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

_LOCK = threading.Lock()


def load_npy(path: str | Path, mmap_mode: Any = None, allow_pickle: bool = False) -> Any:
    with _LOCK:
        return np.load(path, mmap_mode=mmap_mode, allow_pickle=allow_pickle)
