"""Milvus 2.6's TIMESTAMPTZ and GEOMETRY types through real pymilvus.

TIMESTAMPTZ: ISO 8601 in, ISO out (in the request's or the collection's timezone), and
`ISO '...'` comparisons in filters, checked against Python's datetime. GEOMETRY: WKT in and
out, and every ST_* predicate checked row by row against shapely.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import shapely
from pymilvus import DataType, MilvusClient, MilvusException

STAMPS = [
    "2025-01-01T00:00:00Z",
    "2025-01-01T08:00:00+08:00",  # the same instant as the first
    "2025-03-15T12:30:00.250000+00:00",
    "2024-12-31T23:59:59-05:00",
    "2025-06-01T00:00:00",  # no offset: the collection's timezone (UTC here)
]
SHAPES = [
    "POINT (1 1)",
    "POINT (5 5)",
    "LINESTRING (0 0, 10 10)",
    "POLYGON ((0 0, 4 0, 4 4, 0 4, 0 0))",
    "POLYGON ((3 3, 6 3, 6 6, 3 6, 3 3))",
    "LINESTRING (-1 2, 2 2)",
    "POINT (20 20)",
]


def instant(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def make(client: MilvusClient, name: str) -> None:
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("ts", DataType.TIMESTAMPTZ, nullable=True)
    schema.add_field("geo", DataType.GEOMETRY, nullable=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    index = client.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index)


def test_timestamptz_round_trip_and_filters(client: MilvusClient, name: str) -> None:
    make(client, name)
    rows = [{"id": i, "ts": t, "geo": None, "v": [0.0, float(i)]} for i, t in enumerate(STAMPS)]
    rows.append({"id": 99, "ts": None, "geo": None, "v": [1.0, 1.0]})
    client.insert(name, rows)
    got = {r["id"]: r["ts"] for r in client.query(name, filter="id >= 0", output_fields=["ts"])}
    assert got[99] is None or got[99] == ""
    for i, text in enumerate(STAMPS):
        assert instant(got[i]) == instant(text)
    shanghai = client.query(name, filter="id == 0", output_fields=["ts"], timezone="Asia/Shanghai")[0]["ts"]
    assert shanghai.startswith("2025-01-01T08:00:00") and shanghai.endswith("+08:00")
    for op, bound in [(">", "2025-01-01T00:00:00Z"), ("<=", "2025-01-01T09:00:00+08:00"), ("==", "2025-01-01T00:00:00Z")]:
        expr = f"ts {op} ISO '{bound}'"
        want = sorted(
            i for i, t in enumerate(STAMPS)
            if {">": instant(t) > instant(bound), "<=": instant(t) <= instant(bound), "==": instant(t) == instant(bound)}[op]
        )
        assert sorted(r["id"] for r in client.query(name, filter=expr, output_fields=["id"])) == want, expr
    hits = client.search(name, data=[[0.0, 0.0]], limit=2, filter="ts < ISO '2025-02-01T00:00:00Z'", output_fields=["ts"])[0]
    assert [h["id"] for h in hits] == [0, 1]
    with pytest.raises(MilvusException):
        client.insert(name, [{"id": 7, "ts": "yesterday", "geo": None, "v": [0.0, 0.0]}])
    client.drop_collection(name)


def test_collection_timezone_reads_naive_values(client: MilvusClient, name: str) -> None:
    make(client, name)
    client.alter_collection_properties(name, {"timezone": "Asia/Tokyo"})
    client.insert(name, [{"id": 1, "ts": "2025-01-01T09:00:00", "geo": None, "v": [0.0, 0.0]}])
    out = client.query(name, filter="id == 1", output_fields=["ts"])[0]["ts"]
    assert instant(out) == datetime(2025, 1, 1, 9, tzinfo=ZoneInfo("Asia/Tokyo"))
    client.drop_collection(name)


@pytest.mark.parametrize(
    ("func", "wkt", "distance"),
    [
        ("ST_WITHIN", "POLYGON ((0 0, 5 0, 5 5, 0 5, 0 0))", None),
        ("ST_CONTAINS", "POINT (2 2)", None),
        ("ST_INTERSECTS", "LINESTRING (0 5, 5 0)", None),
        ("ST_EQUALS", "POINT (1 1)", None),
        ("ST_TOUCHES", "POLYGON ((4 0, 8 0, 8 4, 4 4, 4 0))", None),
        ("ST_OVERLAPS", "POLYGON ((2 2, 5 2, 5 5, 2 5, 2 2))", None),
        ("ST_CROSSES", "LINESTRING (0 3, 10 3)", None),
        ("ST_DWITHIN", "POINT (0 0)", 2.0),
    ],
)
def test_geometry_predicates_match_shapely(client: MilvusClient, func: str, wkt: str, distance: float | None) -> None:
    name = f"geo_{func.lower()}"
    client.drop_collection(name)
    make(client, name)
    rows = [{"id": i, "ts": None, "geo": g, "v": [0.0, 0.0]} for i, g in enumerate(SHAPES)]
    rows.append({"id": 50, "ts": None, "geo": None, "v": [0.0, 0.0]})
    client.insert(name, rows)
    expr = f"{func}(geo, '{wkt}')" if distance is None else f"{func}(geo, '{wkt}', {distance})"
    got = sorted(r["id"] for r in client.query(name, filter=expr, output_fields=["id"]))
    other = shapely.from_wkt(wkt)
    geoms = shapely.from_wkt(np.array(SHAPES, dtype=object))
    fn = {
        "ST_WITHIN": shapely.within, "ST_CONTAINS": shapely.contains, "ST_INTERSECTS": shapely.intersects,
        "ST_EQUALS": shapely.equals, "ST_TOUCHES": shapely.touches, "ST_OVERLAPS": shapely.overlaps,
        "ST_CROSSES": shapely.crosses,
    }
    truth = shapely.dwithin(geoms, other, distance) if distance is not None else fn[func](geoms, other)
    assert got == np.flatnonzero(truth).tolist()
    assert got, "each case should select at least one row"
    back = {r["id"]: r["geo"] for r in client.query(name, filter="id < 50", output_fields=["geo"])}
    assert all(shapely.equals(shapely.from_wkt(back[i]), shapely.from_wkt(g)) for i, g in enumerate(SHAPES))
    client.drop_collection(name)


def test_bad_geometry_is_refused(client: MilvusClient, name: str) -> None:
    make(client, name)
    with pytest.raises(MilvusException):
        client.insert(name, [{"id": 1, "ts": None, "geo": "POINT (1", "v": [0.0, 0.0]}])
    client.insert(name, [{"id": 1, "ts": None, "geo": "POINT (1 2)", "v": [0.0, 0.0]}])
    with pytest.raises(MilvusException):
        client.query(name, filter="ST_WITHIN(id, 'POINT (1 2)')")
    with pytest.raises(MilvusException):
        client.query(name, filter="ST_WITHIN(geo, 'not wkt')")
    client.drop_collection(name)


def test_nullable_vector_field(client: MilvusClient, name: str) -> None:
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2, nullable=True)
    index = client.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index)
    client.insert(name, [{"id": 1, "v": [0.0, 0.0]}, {"id": 2, "v": None}, {"id": 3, "v": [1.0, 1.0]}])
    got = {r["id"]: r["v"] for r in client.query(name, filter="id > 0", output_fields=["v"])}
    assert got[2] is None and got[3] == [1.0, 1.0]
    hits = client.search(name, data=[[0.0, 0.1]], limit=3)[0]
    assert [h["id"] for h in hits] == [1, 3]  # a null vector is never a hit
    client.drop_collection(name)


def test_text_type(client: MilvusClient, name: str) -> None:
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("body", DataType.TEXT, enable_analyzer=True, enable_match=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    index = client.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index)
    long = "word " * 20_000  # past VARCHAR's 65,535 limit: TEXT has none
    client.insert(name, [{"id": 1, "body": long + "needle", "v": [0.0, 0.0]}, {"id": 2, "body": "short text", "v": [1.0, 0.0]}])
    back = client.query(name, filter="id == 1", output_fields=["body"])[0]["body"]
    assert back == long + "needle"
    assert [r["id"] for r in client.query(name, filter='text_match(body, "needle")', output_fields=["id"])] == [1]
    assert [r["id"] for r in client.query(name, filter='body like "short%"', output_fields=["id"])] == [2]
    client.drop_collection(name)


def test_entity_ttl_field(client: MilvusClient, name: str, server_target: str) -> None:
    """Milvus 3.0's entity-level TTL: `ttl_field` names a TIMESTAMPTZ field; an entity is gone
    from every read once its time has passed, a null time never expires, and dropping the
    property does not bring expired entities back."""
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("expire_at", DataType.TIMESTAMPTZ, nullable=True)
    schema.add_field("other", DataType.TIMESTAMPTZ, nullable=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    index = client.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index, properties={"ttl_field": "expire_at"},
                             consistency_level="Strong")
    started = time.monotonic()
    soon = datetime.fromtimestamp(datetime.now(UTC).timestamp() + 20, UTC)  # id 2 expires in 20 s

    def at(i: int) -> str | None:
        if i % 4 == 0:
            return None  # never expires
        if i % 4 == 1:
            return "2020-01-01T00:00:00Z"  # long expired
        if i == 2:
            return soon.isoformat()
        return "2999-01-01T00:00:00Z"

    rows = [{"id": i, "expire_at": at(i), "other": None, "v": [float(i), 0.0]} for i in range(40)]
    client.insert(name, rows[:20])
    client.flush(name)
    client.insert(name, rows[20:])  # sealed and growing rows alike
    live = {i for i in range(40) if i % 4 != 1}

    def seen() -> set[int]:
        return {r["id"] for r in client.query(name, filter="id >= 0", output_fields=["id"])}

    first = seen()
    if time.monotonic() - started < 15:  # id 2 not yet expired (else a loaded machine got here late)
        assert first == live
    live.discard(2)
    assert first - {2} == live
    assert client.query(name, filter="id != 2", output_fields=["count(*)"])[0]["count(*)"] == len(live)
    hits = client.search(name, data=[[1.0, 0.0]], limit=40, filter="id != 2", search_params={"metric_type": "L2"})[0]
    assert {h["id"] for h in hits} == live
    assert {r["id"] for r in client.get(name, ids=[1, 4])} == {4}
    deadline = time.monotonic() + 180  # then it expires, as time passes
    while 2 in seen():
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert seen() == live
    client.upsert(name, [{"id": 5, "expire_at": None, "other": None, "v": [5.0, 0.0]}])  # revived with no expiry
    live.add(5)
    assert seen() == live
    for bad in ({"ttl_field": "other_missing"}, {"ttl_field": "id"}, {"collection.ttl.seconds": "60"}):
        with pytest.raises(MilvusException) as err:
            client.alter_collection_properties(name, properties=bad)
        assert err.value.code == 1100, bad
    client.drop_collection_properties(name, property_keys=["ttl_field"])
    assert seen() == live  # expired entities stay gone
    assert client.describe_collection(name).get("properties", {}).get("ttl_field") is None


RTREE_QUERIES = [
    ("ST_WITHIN", "POLYGON ((2 2, 6 2, 6 6, 2 6, 2 2))", None),
    ("ST_CONTAINS", "POINT (3 3)", None),
    ("ST_INTERSECTS", "LINESTRING (0 4, 10 4)", None),
    ("ST_EQUALS", "POINT (4 4)", None),
    ("ST_TOUCHES", "POLYGON ((2 2, 4 2, 4 4, 2 4, 2 2))", None),
    ("ST_OVERLAPS", "POLYGON ((2 2, 6 2, 6 6, 2 6, 2 2))", None),
    ("ST_CROSSES", "LINESTRING (0 4, 10 4)", None),
    ("ST_DWITHIN", "POINT (5 5)", 1.5),
]


def _grid_shape(rng: np.random.Generator, i: int) -> str | None:
    x, y = rng.integers(0, 10, 2).tolist()
    w, h = rng.integers(1, 4, 2).tolist()
    return [
        f"POINT ({x} {y})", f"LINESTRING ({x} {y}, {x + w} {y + h})", None,
        f"POLYGON (({x} {y}, {x + w} {y}, {x + w} {y + h}, {x} {y + h}, {x} {y}))",
    ][i % 4]


def test_rtree_index_answers_as_the_scan_and_shapely(client: MilvusClient, name: str) -> None:
    make(client, name)
    rng = np.random.default_rng(23)
    shapes = [_grid_shape(rng, i) for i in range(600)]
    rows = [{"id": i, "ts": None, "geo": g, "v": [0.0, 0.0]} for i, g in enumerate(shapes)]
    client.insert(name, rows[:250])
    client.flush(name)
    client.insert(name, rows[250:500])
    client.flush(name)
    client.insert(name, rows[500:])  # growing: always scanned

    def answers() -> dict[str, list[int]]:
        out = {}
        for func, wkt, distance in RTREE_QUERIES:
            expr = f"{func}(geo, '{wkt}')" if distance is None else f"{func}(geo, '{wkt}', {distance})"
            out[func] = sorted(r["id"] for r in client.query(name, filter=expr, output_fields=["id"], limit=600))
        return out

    scanned = answers()
    client.release_collection(name)
    idx = client.prepare_index_params()
    idx.add_index("geo", index_name="geo_rtree", index_type="RTREE")
    client.create_index(name, idx)
    deadline = time.monotonic() + 120  # scalar indexes are built in the background
    while (desc := client.describe_index(name, "geo_rtree"))["indexed_rows"] < 500:
        assert time.monotonic() < deadline, desc
        time.sleep(0.2)
    assert desc["index_type"] == "RTREE"
    client.load_collection(name)
    indexed = answers()
    present = [i for i, g in enumerate(shapes) if g is not None]
    geoms = shapely.from_wkt(np.array([shapes[i] for i in present], dtype=object))
    for func, wkt, distance in RTREE_QUERIES:
        other = shapely.from_wkt(wkt)
        truth = shapely.dwithin(geoms, other, distance) if distance is not None else getattr(shapely, func[3:].lower())(geoms, other)
        want = [present[j] for j in np.flatnonzero(truth).tolist()]
        assert want, func
        assert indexed[func] == scanned[func] == want, func
    client.drop_collection(name)
