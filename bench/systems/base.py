"""The interface every benchmarked system implements; the runner knows nothing else.

A system holds one collection at a time: ``setup`` loads a workload with one index and
returns its load timings, ``teardown`` ends it (a server process exits, its data dir goes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:  # keeps server-only users (tests/compat) free of faiss
    from bench.config import IndexSpec
    from bench.workloads import Filter, Workload

# A searcher answers a batch of query vectors with the primary keys of each top-k.
Searcher = Callable[[np.ndarray, "Filter | None"], list[list[int]]]


class System(Protocol):
    name: str
    in_process: bool  # searched inside the bench process (no protocol floor applies)

    def setup(self, workload: Workload, index: IndexSpec, batch: int) -> dict[str, float]:
        """Insert every row, flush, build ``index`` and load; returns timings in seconds."""

    def searcher(self) -> Searcher:
        """A search callable for one client thread (its own connection where there is one)."""

    def tune(self, search_params: dict[str, int]) -> None:
        """Use these search parameters (nprobe, ef) in searchers made from now on."""

    def query_filter(self, expr: Filter, limit: int) -> int:
        """Rows returned by a filter-only query with a limit."""

    def count(self, expr: Filter) -> int:
        """``count(*)`` of the rows matching a filter."""

    def index_scalar(self, field: str) -> float:
        """Build an INVERTED index on scalar ``field`` and reload; returns the seconds it took."""

    def insert(self, rows: list[dict]) -> None:
        """Insert rows (pymilvus row dicts)."""

    def delete(self, ids: list[int]) -> None:
        """Delete rows by primary key."""

    def resources(self) -> dict[str, float]:
        """Memory/disk figures in MB that this system can report (may be empty)."""

    def teardown(self) -> None:
        """Drop everything; safe to call twice or after a failed setup."""
