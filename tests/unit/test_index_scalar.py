"""Scalar indexes answer filters exactly as a scan would, and refuse fields Milvus refuses."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.errors import Code, ShoalError
from shoal.expr import compile_filter
from shoal.index.scalar import ScalarIndex, build_scalar_index, validate_scalar_index
from shoal.schema import CollectionSchema, Column, DataType, FieldSchema, object_array

SCHEMA = CollectionSchema(
    fields=[
        FieldSchema("id", DataType.INT64, is_primary=True),
        FieldSchema("num", DataType.INT32, nullable=True),
        FieldSchema("price", DataType.DOUBLE),
        FieldSchema("tag", DataType.VARCHAR, max_length=16, nullable=True),
        FieldSchema("vec", DataType.FLOAT_VECTOR, dim=2),
    ]
)

EXPRESSIONS = [
    "num == 3", "num != 3", "num < 3", "num <= 3", "num > 3", "num >= 3", "3 < num", "num in [1, 4, 9]",
    "num not in [1, 4]", "price > 0.5", "price <= 0.25", "price == 1.5", "price != 0.5", "price >= -2.0",
    "price in [0.5, 1.5]", "tag == 'ab'", "tag != 'ab'",
    "tag < 'b'", "tag >= 'b'", "tag > 'ab'", "tag <= 'ab'", "tag in ['a', 'bc', 'zz']", "tag not in ['a']",
    "tag like 'a%'", "tag like 'ab'", "tag like '%b'", "not (tag == 'a')", "num > 2 and tag like 'b%'",
    "num == -1", "num in []",
]


def _batch(nums: list[int | None], tags: list[str | None], prices: list[float]) -> dict[str, Column]:
    n = len(nums)
    return {
        "id": Column(np.arange(n, dtype=np.int64)),
        "num": Column(np.array([v or 0 for v in nums], dtype=np.int32), np.array([v is not None for v in nums])),
        "price": Column(np.array(prices, dtype=np.float64)),
        "tag": Column(object_array([t or "" for t in tags]), np.array([t is not None for t in tags])),
    }


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(0, 10)),
            st.one_of(st.none(), st.sampled_from(["", "a", "ab", "abc", "b", "bc", "zz"])),
            st.sampled_from([0.0, 0.25, 0.5, 1.5, -2.0, float("nan")]),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_indexed_filters_match_the_scan(rows: list[tuple[int | None, str | None, float]]) -> None:
    nums, tags, prices = (list(x) for x in zip(*rows, strict=True))
    batch = _batch(nums, tags, prices)
    n = len(rows)
    # scan_above=1.0: the index answers every predicate it can, whatever it matches
    for scan_above in (1.0, 0.1):
        indexes = {name: ScalarIndex(batch[name], scan_above) for name in ("num", "price", "tag")}
        for expr in EXPRESSIONS:
            flt = compile_filter(expr, SCHEMA)
            scanned = flt.evaluate(batch, n)
            indexed = flt.evaluate(batch, n, indexes)
            assert np.array_equal(scanned, indexed), (expr, scan_above)


def test_a_numeric_index_answers_only_where_it_beats_a_scan() -> None:
    values = np.arange(100_000, dtype=np.int64) % 100  # each value on 1 % of the rows
    valid = np.arange(100_000) % 200 != 0  # 0.5 % nulls
    index = ScalarIndex(Column(values, valid))
    live = valid
    one = index.compare("==", 7)
    assert one is not None and np.array_equal(one, live & (values == 7))
    assert np.array_equal(index.isin((3, 9, 3)), live & np.isin(values, [3, 9]))
    most = index.compare("!=", 7)  # 99 % match: the rows that do not are cleared instead
    assert most is not None and np.array_equal(most, live & (values != 7))
    assert np.array_equal(index.compare(">=", 2), live & (values >= 2))
    assert index.compare("<", 50) is None  # half the rows: the caller scans
    assert index.isin(tuple(range(40))) is None


def test_a_varchar_equality_never_scans_strings() -> None:
    tags = object_array([f"t{i % 1000}" for i in range(20_000)])
    index = build_scalar_index(Column(tags))
    mask = index.compare("==", "t7")
    assert mask is not None and int(mask.sum()) == 20 and all(tags[mask] == "t7")
    assert int(index.prefix("t99").sum()) == 20 * 11  # t99 and t990..t999


@pytest.mark.parametrize(
    ("dtype", "kind"),
    [(DataType.BOOL, "STL_SORT"), (DataType.INT64, "TRIE"), (DataType.DOUBLE, "BITMAP"), (DataType.INT64, "HNSW")],
)
def test_index_types_refuse_the_wrong_field_type(dtype: DataType, kind: str) -> None:
    with pytest.raises(ShoalError) as err:
        validate_scalar_index(FieldSchema("f", dtype, max_length=8), kind)
    assert err.value.code == Code.PARAMETER_INVALID


def test_autoindex_on_a_scalar_field_is_inverted() -> None:
    assert validate_scalar_index(FieldSchema("f", DataType.VARCHAR, max_length=8), "") == "INVERTED"
    assert validate_scalar_index(FieldSchema("f", DataType.INT64), "stl_sort") == "STL_SORT"
