"""The RTREE index of a GEOMETRY column, over one sealed segment: a shapely STRtree (GEOS)
of the rows' geometries, parsed from their WKT once.

An `ST_*` filter asks the tree for the rows whose bounding box meets the constant's (grown
by the distance for `ST_DWITHIN`), then checks only those with `geometry.test`, the very
predicate the scan applies, so answers equal the scan's. Every predicate but `ST_DWITHIN`
holds only where the two shapes share a point, hence their boxes meet; `ST_DWITHIN(d)`
holds only within `d` on each axis. Rows with no finite box (empty shapes) are always
checked, and an empty constant checks every row. Null rows are never matched (the
evaluator adds the column's validity). Neighbours: `shoal.geometry` (parsing, predicates).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely

from shoal.geometry import parse_wkt, test
from shoal.schema import Column

_PAD = 1e-9  # relative slack on the grown box: candidates may be a superset, never a subset


class GeometryIndex:
    def __init__(self, column: Column) -> None:
        values = column.values.tolist() if isinstance(column.values, np.ndarray) else list(column.values)
        self.n = len(values)
        valid = [True] * self.n if column.valid is None else column.valid.tolist()
        self.rows = np.asarray([i for i, (v, ok) in enumerate(zip(values, valid, strict=True)) if ok and v is not None], dtype=np.int64)
        self.geoms = shapely.from_wkt(np.array([values[i] for i in self.rows.tolist()], dtype=object))
        bounds = shapely.bounds(self.geoms) if len(self.geoms) else np.empty((0, 4))
        self.unboxed = np.flatnonzero(~np.isfinite(bounds).all(axis=1))
        self.tree = shapely.STRtree(self.geoms)

    @property
    def memory_bytes(self) -> int:
        # GEOS keeps the shapes outside Python: their WKB size is a fair measure of them
        shapes = int(sum(len(b) for b in shapely.to_wkb(self.geoms).tolist())) if len(self.geoms) else 0
        return int(self.rows.nbytes + self.unboxed.nbytes + shapes + 40 * len(self.geoms))

    def _candidates(self, other: Any, distance: float | None) -> np.ndarray:
        """Positions in `self.geoms` that may satisfy a predicate against `other`."""
        box = np.asarray(shapely.bounds(other), dtype=np.float64)
        if not np.isfinite(box).all() or (distance is not None and not np.isfinite(distance)):
            return np.arange(len(self.geoms))
        if distance is not None:
            grow = distance + _PAD * max(1.0, distance, float(np.abs(box).max()))
            box = box + np.array([-grow, -grow, grow, grow])
        found = self.tree.query(shapely.box(*box.tolist()))
        return np.union1d(found, self.unboxed)

    def spatial(self, name: str, wkt: str, distance: float | None = None) -> np.ndarray:
        """The rows where `name`(row, wkt[, distance]) holds."""
        other = parse_wkt(wkt, name)
        mask = np.zeros(self.n, dtype=bool)
        candidates = self._candidates(other, distance)
        if len(candidates):
            hits = test(name, self.geoms[candidates], other, distance)
            mask[self.rows[candidates[hits]]] = True
        return mask

    def compare(self, op: str, value: Any) -> None:
        return None  # only ST_* predicates use this index

    def isin(self, values: tuple[Any, ...]) -> None:
        return None

    def like(self, pattern: Any) -> None:
        return None


def geometry_index(column: Column) -> GeometryIndex:
    return GeometryIndex(column)
