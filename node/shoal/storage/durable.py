"""Durable file primitives shared by the storage modules: fsync a directory, and write a
file atomically (temp sibling, fsync, rename, fsync the directory) so a crash leaves the
old file or the new one, never a torn one."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def fsync_dir(directory: Path) -> None:
    """Make a directory's entries (creations, renames, removals) durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, fill: Callable[[BinaryIO], object], tmp: Path | None = None) -> None:
    """Write `path` through `fill(file)` so that readers see the old or the new content only."""
    tmp = tmp or path.with_name(f".tmp-{path.name}.{uuid.uuid4().hex[:12]}")
    try:
        with open(tmp, "wb") as f:
            fill(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)
