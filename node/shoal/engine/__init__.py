"""The engine: databases, collections, segments, MVCC reads, persistence, indexing.

`open_engine(data_dir, options)` returns the standalone `Engine`, the implementation of
`facade.EngineAPI` that the api layer drives.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def open_engine(data_dir: Path, options: dict[str, Any] | None = None):  # noqa: ANN201 (EngineAPI)
    from shoal.engine.engine import Engine

    return Engine(Path(data_dir), options or {})
