"""The `VectorIndex` contract every index family implements, and what they share.

A built index answers `search` (top-k) and `range_search`, persists itself into a
directory (`meta.json` plus family files) and reports its size. This base class checks
arguments, handles the allowed-rows mask edge cases (none allowed, all allowed) and turns
top-k search into Milvus range search; the families (`dense`, `diskann`, `binary`,
`sparse`) implement `_search`, `_save` and `_load`.

Neighbours: `params` (IndexSpec), `vectors` (result helpers); `factory` picks the family.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from shoal.errors import invalid
from shoal.index.params import IndexSpec, check_topk, flatten_params
from shoal.index.threads import threads_for_queries
from shoal.index.vectors import check_allowed, descending, empty_results, range_filter_hits

META_FILE = "meta.json"
# Search params that must be at least k: widened when range search asks for deeper lists.
DEPTH_PARAMS = ("ef", "search_list", "itopk_size", "reorder_k")


class VectorIndex(ABC):
    """A vector index over the rows 0..num_rows-1 of one sealed segment's vector column."""

    family = ""

    def __init__(self, spec: IndexSpec, num_rows: int) -> None:
        self.spec = spec
        self.num_rows = int(num_rows)

    # ----------------------------------------------------------------- public API

    @property
    @abstractmethod
    def memory_bytes(self) -> int:
        """Approximate resident bytes of the index (memory-mapped raw vectors excluded)."""

    def search(
        self,
        queries: Any,
        k: int,
        params: dict[str, Any] | None = None,
        allowed: np.ndarray | None = None,
        kept: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k: scores float32 (nq, k) and row offsets int64 (nq, k), padded with row -1.

        `kept`: the number of True rows of `allowed`, from a caller that has counted them
        already (a count over a million-row mask costs some 30 us).
        """
        k = check_topk(k)
        q = self._prepare_queries(queries)
        p = flatten_params(params) if params else {}
        self._check_search_params(p, k)
        mask = check_allowed(allowed, self.num_rows)
        count = self.num_rows
        if mask is not None:
            count = int(np.count_nonzero(mask)) if kept is None else kept
            if count == 0:
                return empty_results(len(q), k, self.spec.metric_type)
            if count == self.num_rows:
                mask = None
        if self.num_rows == 0 or len(q) == 0:
            return empty_results(len(q), k, self.spec.metric_type)
        threads_for_queries(len(q))
        return self._search(q, k, p, mask, count)

    def range_search(
        self,
        queries: Any,
        radius: float,
        range_filter: float | None,
        params: dict[str, Any] | None = None,
        allowed: np.ndarray | None = None,
        limit: int = 10,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Milvus range search, best `limit` hits per query.

        L2/HAMMING/JACCARD keep range_filter <= d < radius; IP/COSINE keep
        radius < s <= range_filter. Returns flat scores, rows and `lims` (nq + 1 offsets).
        """
        limit = check_topk(limit)
        desc = descending(self.spec.metric_type)
        radius = float(radius)
        if range_filter is not None:
            range_filter = float(range_filter)
            if desc and range_filter <= radius:
                raise invalid(
                    f"range_filter ({range_filter}) must be greater than radius ({radius}) for IP/COSINE"
                )
            if not desc and range_filter >= radius:
                raise invalid(
                    f"range_filter ({range_filter}) must be less than radius ({radius}) for {self.spec.metric_type}"
                )
        q = self._prepare_queries(queries)
        p = flatten_params(params) if params else {}
        self._check_search_params(p, limit)
        mask = check_allowed(allowed, self.num_rows)
        reachable = self.num_rows if mask is None else int(np.count_nonzero(mask))
        if reachable == self.num_rows:
            mask = None
        nq = len(q)
        threads_for_queries(nq)
        out_s: list[np.ndarray] = [np.zeros(0, np.float32)] * nq
        out_r: list[np.ndarray] = [np.zeros(0, np.int64)] * nq
        pending = np.arange(nq)
        depth = min(max(limit, 16), max(reachable, 1))
        while len(pending) and reachable:
            wide = dict(p)
            for key in DEPTH_PARAMS:
                try:
                    wide[key] = max(int(float(wide[key])), depth)
                except (KeyError, TypeError, ValueError):
                    pass  # absent, or a key this index ignores
            sub = q[pending] if isinstance(q, np.ndarray) else [q[i] for i in pending]
            scores, rows = self._search(sub, depth, wide, mask, reachable)
            inside = (rows >= 0) & range_filter_hits(scores, radius, None, self.spec.metric_type)
            window = inside & range_filter_hits(scores, radius, range_filter, self.spec.metric_type)
            again = []
            for j, qi in enumerate(pending):
                keep = window[j]
                out_s[qi], out_r[qi] = scores[j][keep][:limit], rows[j][keep][:limit]
                # The deepest hit still inside the radius: there may be more beyond it.
                full = inside[j].all() and depth < reachable
                if full and len(out_r[qi]) < limit:
                    again.append(qi)
            pending = np.asarray(again, dtype=np.int64)
            depth = min(depth * 4, reachable)
        lims = np.zeros(nq + 1, np.int64)
        lims[1:] = np.cumsum([len(r) for r in out_r])
        return (
            np.concatenate(out_s).astype(np.float32) if nq else np.zeros(0, np.float32),
            np.concatenate(out_r).astype(np.int64) if nq else np.zeros(0, np.int64),
            lims,
        )

    def save(self, directory: Path | str) -> None:
        """Write the index into `directory` (created if needed); `load_index` reads it back."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        extra = self._save(path)
        meta = {"family": self.family, "num_rows": self.num_rows, "spec": self.spec.to_dict(), "extra": extra}
        tmp = path / (META_FILE + ".tmp")
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, path / META_FILE)

    # ----------------------------------------------------------------- for families

    @abstractmethod
    def _prepare_queries(self, queries: Any) -> Any:
        """Queries checked and converted to the family's search layout."""

    def _check_search_params(self, params: dict[str, Any], k: int) -> None:
        """Raise 1100 for out-of-range search params (before any work is done)."""
        return None

    @abstractmethod
    def _search(
        self, queries: Any, k: int, params: dict[str, Any], allowed: np.ndarray | None, kept: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k over a non-empty index; `allowed` is None or has `kept` >= 1 True rows."""

    @abstractmethod
    def _save(self, directory: Path) -> dict[str, Any]:
        """Write family files; returns extra meta stored in meta.json."""

    @classmethod
    @abstractmethod
    def _load(
        cls, directory: Path, spec: IndexSpec, num_rows: int, extra: dict[str, Any], mmap: bool
    ) -> VectorIndex:
        """Rebuild the object from files written by `_save`."""


def save_npy(path: Path, array: np.ndarray) -> None:
    """Write an .npy file atomically: readers may have the old one memory-mapped."""
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, np.asarray(array))
    os.replace(tmp, path)


def read_meta(directory: Path) -> dict[str, Any]:
    meta_path = directory / META_FILE
    if not meta_path.exists():
        raise invalid(f"no index found in {directory}")
    return json.loads(meta_path.read_text())
