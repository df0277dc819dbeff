"""JSON-path and ARRAY indexes answer every filter exactly as the scan does, on mixed-type data:
values of the cast type, of other types, JSON null, missing paths and null rows."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.errors import ShoalError
from shoal.expr import compile_filter
from shoal.expr.binder import bind_json_path
from shoal.expr.evaluator import Evaluator
from shoal.index.array import array_index
from shoal.index.json_path import json_path_index
from shoal.index.scalar import scalar_index_params
from shoal.schema import CollectionSchema, Column, DataType, FieldSchema, object_array

SCHEMA = CollectionSchema(
    fields=[
        FieldSchema("id", DataType.INT64, is_primary=True),
        FieldSchema("meta", DataType.JSON, nullable=True),
        FieldSchema("arr", DataType.ARRAY, element_type=DataType.INT64, max_capacity=8, nullable=True),
        FieldSchema("vec", DataType.FLOAT_VECTOR, dim=2),
    ]
)
INDEXES = {  # path -> params
    "meta['n']": {"index_type": "INVERTED", "json_cast_type": "DOUBLE"},
    "meta['s']": {"index_type": "INVERTED", "json_cast_type": "VARCHAR"},
    "meta['b']": {"index_type": "BITMAP", "json_cast_type": "BOOL"},
    "meta['l']": {"index_type": "INVERTED", "json_cast_type": "ARRAY_DOUBLE"},
    "meta['t']": {"index_type": "NGRAM", "json_cast_type": "VARCHAR", "min_gram": "2", "max_gram": "3"},
    "meta['d']['x']": {"index_type": "INVERTED", "json_cast_type": "DOUBLE"},
    "meta['c']": {"index_type": "INVERTED", "json_cast_type": "DOUBLE", "json_cast_function": "STRING_TO_DOUBLE"},
}
EXPRESSIONS = [
    *(f"meta['n'] {op} 2" for op in ("==", "!=", "<", "<=", ">", ">=")),
    "meta['n'] == 2.5", "meta['n'] > -1.5", "3 > meta['n']", "meta['n'] in [1, 2.5, 7]", "meta['n'] not in [1, 2]",
    "meta['n'] == 'x'", "meta['n'] in ['a', 1]", "not (meta['n'] < 3)", "meta['n'] + 1 == 3",
    *(f"meta['s'] {op} 'ab'" for op in ("==", "!=", "<", "<=", ">", ">=")),
    "meta['s'] in ['a', 'bc']", "meta['s'] not in ['a']", "meta['s'] like 'a%'", "meta['s'] like 'ab'",
    "meta['s'] like '%b'", "meta['s'] == 1", "not (meta['s'] == 'a')",
    "meta['b'] == true", "meta['b'] != false", "meta['b'] in [true]", "meta['b'] not in [false]", "meta['b'] == 1",
    "json_contains(meta['l'], 1)", "json_contains(meta['l'], 'a')", "json_contains_any(meta['l'], [1, 2])",
    "json_contains_all(meta['l'], [1, 2])", "json_contains_all(meta['l'], [])", "not json_contains(meta['l'], 2)",
    "meta['t'] like '%bc%'", "meta['t'] like '%b%'", "meta['t'] like 'ab%c'", "meta['t'] == 'abc'",
    "meta['d']['x'] >= 1", "meta['d']['x'] == 3",
    *(f"meta['c'] {op} 2" for op in ("==", "!=", "<", "<=", ">", ">=")), "meta['c'] in [2, 2.5]", "meta['c'] == '2'",
    "exists meta['c']",
    *(f"exists meta['{k}']" for k in "nsblt"), "meta['n'] is null", "meta['s'] is not null",
    "not exists meta['n']", "meta['n'] > 1 and meta['s'] like 'a%'", "meta['n'] > 1 or meta['b'] == true",
    "array_contains(arr, 1)", "array_contains_any(arr, [1, 3])", "array_contains_all(arr, [1, 2])",
    "not array_contains(arr, 2)", "array_contains_all(arr, [])",
    "arr[0] == 1", "arr[1] != 2", "arr[0] < 2", "arr[2] >= 1", "arr[0] in [1, 3]", "arr[1] not in [0]",
    "not (arr[0] > 1)", "arr[0] > 0", "arr[0] <= 3",
]
SCALARS = st.one_of(
    st.none(), st.integers(-3, 7), st.sampled_from([2.5, -1.5, 2.0, 1e300]), st.booleans(),
    st.sampled_from(["", "a", "ab", "abc", "xbcx", "bc", "b", "2", "2.5", " 1", "3x"]),
)
VALUES = st.one_of(SCALARS, st.lists(st.one_of(st.integers(0, 3), st.just("a"), st.just(1.0)), max_size=3))
DOCS = st.one_of(
    st.none(),  # a null row
    st.dictionaries(st.sampled_from(["n", "s", "b", "l", "t", "d", "z", "c"]), VALUES, max_size=6),
    st.builds(lambda x: {"d": {"x": x}}, SCALARS),
    st.just([1, 2]),  # a JSON row that is not an object
)
ARRAYS = st.one_of(st.none(), st.lists(st.integers(0, 3), max_size=4))


def _indexes(batch: dict[str, Column]) -> dict:
    out: dict = {}
    for path, params in INDEXES.items():
        key = bind_json_path(path, SCHEMA)
        assert key is not None
        out[key] = json_path_index(batch["meta"], key.keys, params)
    out["arr"] = array_index(batch["arr"])
    return out


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(DOCS, ARRAYS), min_size=1, max_size=40))
def test_indexed_json_and_array_filters_match_the_scan(rows: list) -> None:
    n = len(rows)
    docs, arrays = zip(*rows, strict=True)
    batch = {
        "id": Column(np.arange(n, dtype=np.int64)),
        "meta": Column(object_array(list(docs)), np.array([d is not None for d in docs])),
        "arr": Column(object_array([a or [] for a in arrays]), np.array([a is not None for a in arrays])),
    }
    indexes = _indexes(batch)
    for expr in EXPRESSIONS:
        flt = compile_filter(expr, SCHEMA)
        assert np.array_equal(flt.evaluate(batch, n), flt.evaluate(batch, n, indexes)), expr


def test_an_index_answers_without_a_scan_and_says_none_when_it_cannot() -> None:
    docs = [{"n": i % 10, "s": f"v{i % 7}"} if i % 3 else {"n": "x"} for i in range(1000)]
    column = Column(object_array(docs))
    num = json_path_index(column, ("n",), {"json_cast_type": "DOUBLE"})
    value, valid = num.compare("==", 4)
    assert int(value.sum()) == sum(1 for d in docs if d["n"] == 4) and int(valid.sum()) == 666
    assert num.compare("==", "x") is None  # a string constant on a DOUBLE index: the scan answers
    assert num.compare("==", 2**60) is None  # beyond float64's exact integers
    big = json_path_index(Column(object_array([{"n": 2**53 + 1}, {"n": 1}])), ("n",), {"json_cast_type": "DOUBLE"})
    assert big.compare("==", 1) is None
    assert np.array_equal(num.present, np.ones(1000, dtype=bool))


def test_indexed_predicates_never_walk_the_json_rows(monkeypatch) -> None:  # noqa: ANN001
    docs = [{"n": i % 5, "s": "ab" if i % 2 else "x", "b": i % 3 == 0, "l": [i % 4], "t": "xbcx", "d": {"x": 3},
             "c": i % 4 if i % 3 else str(i % 4)}
            for i in range(50)]
    batch = {
        "id": Column(np.arange(50, dtype=np.int64)),
        "meta": Column(object_array(docs)),
        "arr": Column(object_array([[i % 4] for i in range(50)])),
    }
    indexes = _indexes(batch)
    answered = [e for e in EXPRESSIONS if "+" not in e and "'x'" not in e and "['a'" not in e and "== 1" not in e]
    answered = [e for e in answered if "'a')" not in e and e not in ("meta['t'] == 'abc'", "meta['c'] == '2'")]  # NGRAM: like only; '2': scanned
    expected = {e: compile_filter(e, SCHEMA).evaluate(batch, 50) for e in answered}

    def refuse(*_args: object) -> None:
        raise AssertionError("scanned")

    monkeypatch.setattr(Evaluator, "json_values", refuse)
    monkeypatch.setattr(Evaluator, "_rows", refuse)
    monkeypatch.setattr(Evaluator, "array_element", refuse)
    for expr in answered:
        assert np.array_equal(compile_filter(expr, SCHEMA).evaluate(batch, 50, indexes), expected[expr]), expr


def test_a_cast_function_keeps_the_scan_answers() -> None:
    """STRING_TO_DOUBLE: numbers are indexed; a numeric string is not a number to a filter (the scan's answer)."""
    column = Column(object_array([{"n": "1.5"}, {"n": 2}, {"n": True}, {"n": "x"}]))
    index = json_path_index(column, ("n",), {"json_cast_type": "DOUBLE", "json_cast_function": "STRING_TO_DOUBLE"})
    value, valid = index.compare(">", 1)
    assert value.tolist() == [False, True, False, False] and valid.tolist() == [False, True, False, False]
    assert index.isin((1.5, 2))[0].tolist() == [False, True, False, False]
    assert index.present.all()


def test_cast_function_params_are_checked_as_milvus_does() -> None:
    field = FieldSchema("meta", DataType.JSON)
    ok = scalar_index_params(field, {"index_type": "INVERTED", "json_cast_type": "double", "json_cast_function": "string_to_double"})
    assert ok["json_cast_function"] == "STRING_TO_DOUBLE"
    with pytest.raises(ShoalError, match="json_cast_function TO_INT is not supported"):
        scalar_index_params(field, {"index_type": "INVERTED", "json_cast_type": "DOUBLE", "json_cast_function": "TO_INT"})
    with pytest.raises(ShoalError, match="not supported for json_cast_type VARCHAR"):
        scalar_index_params(field, {"index_type": "INVERTED", "json_cast_type": "VARCHAR", "json_cast_function": "STRING_TO_DOUBLE"})
