"""GEOMETRY values (WKT text) and Milvus's spatial predicates, on shapely (GEOS).

`ST_EQUALS/ST_TOUCHES/ST_OVERLAPS/ST_CROSSES/ST_CONTAINS/ST_INTERSECTS/ST_WITHIN(field, 'WKT')`
and `ST_DWITHIN(field, 'WKT', distance)` test each row's geometry against a constant one.
A leaf module (imports `shoal.errors`, numpy and shapely).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import shapely

from shoal.errors import invalid

PREDICATES: dict[str, Callable[[Any, Any], np.ndarray]] = {
    "st_equals": shapely.equals,
    "st_touches": shapely.touches,
    "st_overlaps": shapely.overlaps,
    "st_crosses": shapely.crosses,
    "st_contains": shapely.contains,
    "st_intersects": shapely.intersects,
    "st_within": shapely.within,
}
DISTANCE_PREDICATES = ("st_dwithin",)


def parse_wkt(text: Any, what: str) -> Any:
    if not isinstance(text, str):
        raise invalid(f"{what}: a geometry must be WKT text, got {text!r}")
    try:
        return shapely.from_wkt(text)
    except shapely.errors.ShapelyError as e:
        raise invalid(f"{what}: invalid WKT {text[:80]!r}: {e}") from None


def geometry_wkt(values: list[Any], field: str) -> list[str | None]:
    """Each value's canonical WKT (None stays None); 1100 for text that is not WKT."""
    return [None if v is None else shapely.to_wkt(parse_wkt(v, f"field {field}"), rounding_precision=-1) for v in values]


def test(name: str, geoms: np.ndarray, other: Any, distance: float | None = None) -> np.ndarray:
    """`name`(geometry, other) for each of `geoms`: the one exact check, scan and RTREE alike."""
    if name in DISTANCE_PREDICATES:
        return np.asarray(shapely.dwithin(geoms, other, float(distance or 0.0)), dtype=bool)
    return np.asarray(PREDICATES[name](geoms, other), dtype=bool)


def evaluate(name: str, rows: list[str | None], wkt: str, distance: float | None = None) -> list[bool | None]:
    """`name`(row, wkt) for every row; None where the row is null."""
    other = parse_wkt(wkt, name)
    present = [i for i, r in enumerate(rows) if r is not None]
    out: list[bool | None] = [None] * len(rows)
    if not present:
        return out
    hits = test(name, shapely.from_wkt(np.array([rows[i] for i in present], dtype=object)), other, distance)
    for i, h in zip(present, hits.tolist(), strict=True):
        out[i] = bool(h)
    return out
