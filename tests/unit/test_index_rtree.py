"""The RTREE index answers every ST_* predicate exactly as the scan does, on generated shapes
(points, lines, polygons, shapes touching the query's box edge, empty shapes, null rows),
and checks only the rows whose box the query's meets."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from shoal.expr import compile_filter
from shoal.expr.evaluator import Evaluator
from shoal.index.rtree import GeometryIndex
from shoal.index.scalar import build_scalar_index
from shoal.schema import CollectionSchema, Column, DataType, FieldSchema, object_array

SCHEMA = CollectionSchema(
    fields=[
        FieldSchema("id", DataType.INT64, is_primary=True),
        FieldSchema("geo", DataType.GEOMETRY, nullable=True),
        FieldSchema("vec", DataType.FLOAT_VECTOR, dim=2),
    ]
)
QUERIES = [
    "POLYGON ((2 2, 6 2, 6 6, 2 6, 2 2))",
    "POLYGON ((0 0, 10 0, 10 10, 0 10, 0 0))",
    "LINESTRING (0 4, 10 4)",
    "POINT (3 3)",
    "POINT (4 4)",
    "MULTIPOINT ((1 1), (7 7))",
    "LINESTRING (2 2, 4 4)",
    "POLYGON ((2 2, 4 2, 4 4, 2 4, 2 2))",
    "POINT EMPTY",
]
PREDICATES = ["ST_EQUALS", "ST_TOUCHES", "ST_OVERLAPS", "ST_CROSSES", "ST_CONTAINS", "ST_INTERSECTS", "ST_WITHIN"]


def _shapes(n: int, seed: int) -> list[str | None]:
    rng = np.random.default_rng(seed)
    out: list[str | None] = []
    for i in range(n):
        x, y = rng.integers(0, 10, 2).tolist()  # on a grid: many shared edges and equal shapes
        w, h = rng.integers(1, 4, 2).tolist()
        kind = i % 7
        if kind == 0:
            out.append(f"POINT ({x} {y})")
        elif kind == 1:
            out.append(f"LINESTRING ({x} {y}, {x + w} {y + h})")
        elif kind == 2:
            out.append(f"POLYGON (({x} {y}, {x + w} {y}, {x + w} {y + h}, {x} {y + h}, {x} {y}))")
        elif kind == 3:
            out.append(f"POINT ({x + rng.random():.3f} {y + rng.random():.3f})")
        elif kind == 4:
            out.append(None)
        elif kind == 5:
            out.append("POINT EMPTY" if i % 2 else "POLYGON EMPTY")
        else:
            out.append(f"MULTIPOINT (({x} {y}), ({x + w} {y + h}))")
    return out


def _batch(shapes: list[str | None]) -> dict[str, Column]:
    n = len(shapes)
    geo = Column(object_array([s or "" for s in shapes]), np.array([s is not None for s in shapes]))
    return {"id": Column(np.arange(n, dtype=np.int64)), "geo": geo}


def _expressions() -> list[str]:
    out = [f"{p}(geo, '{q}')" for p in PREDICATES for q in QUERIES]
    for q in QUERIES:
        out += [f"ST_DWITHIN(geo, '{q}', {d})" for d in (0, 0.5, 1.5, 3)]
    return [*out, "not ST_WITHIN(geo, 'POLYGON ((0 0, 5 0, 5 5, 0 5, 0 0))')", "id > 3 and ST_INTERSECTS(geo, 'POINT (3 3)')"]


@pytest.mark.parametrize("seed", [1, 2])
def test_indexed_spatial_filters_match_the_scan(seed: int) -> None:
    shapes = _shapes(400, seed)
    batch = _batch(shapes)
    indexes = {"geo": build_scalar_index(batch["geo"], {"index_type": "RTREE"})}
    selected = 0
    for expr in _expressions():
        flt = compile_filter(expr, SCHEMA)
        scanned = flt.evaluate(batch, len(shapes))
        assert np.array_equal(scanned, flt.evaluate(batch, len(shapes), indexes)), expr
        selected += int(scanned.sum())
    assert selected > 1000  # the cases select rows, not only empty answers


def test_the_index_agrees_with_shapely_row_by_row() -> None:
    shapes = _shapes(300, 3)
    index = GeometryIndex(_batch(shapes)["geo"])
    other = "POLYGON ((2 2, 6 2, 6 6, 2 6, 2 2))"
    got = index.spatial("st_within", other)
    truth = [s is not None and bool(shapely.within(shapely.from_wkt(s), shapely.from_wkt(other))) for s in shapes]
    assert got.tolist() == truth
    near = index.spatial("st_dwithin", "POINT (0 0)", 2.0)
    assert near.tolist() == [s is not None and bool(shapely.dwithin(shapely.from_wkt(s), shapely.Point(0, 0), 2.0)) for s in shapes]


def test_the_index_answers_without_a_scan_and_checks_few_rows(monkeypatch) -> None:  # noqa: ANN001
    points = [f"POINT ({i % 100} {i // 100})" for i in range(10_000)]
    batch = _batch(points)
    index = GeometryIndex(batch["geo"])
    checked: list[int] = []
    real = shapely.within

    def counting(a, b):  # noqa: ANN001, ANN202
        checked.append(len(np.atleast_1d(a)))
        return real(a, b)

    monkeypatch.setattr("shoal.geometry.PREDICATES", {"st_within": counting})

    def refuse(*_args: object) -> None:
        raise AssertionError("scanned")

    monkeypatch.setattr(Evaluator, "_rows", refuse)
    flt = compile_filter("ST_WITHIN(geo, 'POLYGON ((10 10, 12 10, 12 12, 10 12, 10 10))')", SCHEMA)
    mask = flt.evaluate(batch, len(points), {"geo": index})
    assert np.flatnonzero(mask).tolist() == [1111]  # only the interior point: the border ones touch
    assert sum(checked) == 9  # the 3 x 3 points in the box, not 10,000
