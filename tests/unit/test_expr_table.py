"""Filter expressions against a small hand-made collection: which primary keys match.

Six rows cover every column kind the filter language reads (ints, floats, nullable
columns, VARCHAR, BOOL, JSON, ARRAY, the dynamic field); each case is one expression a
user could send with `client.query(filter=...)` and the ids it must return.
"""

from __future__ import annotations

import numpy as np
import pytest

from shoal.expr import compile_filter
from shoal.schema import Batch, CollectionSchema, Column, DataType, FieldSchema, object_array

SCHEMA = CollectionSchema(
    [
        FieldSchema("id", DataType.INT64, is_primary=True),
        FieldSchema("age", DataType.INT32),
        FieldSchema("i8", DataType.INT8),
        FieldSchema("price", DataType.DOUBLE),
        FieldSchema("score", DataType.FLOAT, nullable=True),
        FieldSchema("name", DataType.VARCHAR, max_length=64),
        FieldSchema("tag", DataType.VARCHAR, max_length=8, nullable=True),
        FieldSchema("flag", DataType.BOOL),
        FieldSchema("meta", DataType.JSON, nullable=True),
        FieldSchema("tags", DataType.ARRAY, element_type=DataType.VARCHAR, nullable=True),
        FieldSchema("nums", DataType.ARRAY, element_type=DataType.INT64),
        FieldSchema("vec", DataType.FLOAT_VECTOR, dim=2),
    ],
    enable_dynamic_field=True,
)


def make_batch() -> Batch:
    return {
        "id": Column(np.array([1, 2, 3, 4, 5, 6], dtype=np.int64)),
        "age": Column(np.array([10, 20, 30, 40, 50, 60], dtype=np.int32)),
        "i8": Column(np.array([-3, -2, -1, 0, 1, 127], dtype=np.int8)),
        "price": Column(np.array([1.5, 2.0, 9.99, 100.0, -0.5, 0.0])),
        "score": Column(
            np.array([0.5, 1.5, 0.0, 2.5, 3.5, 0.0], dtype=np.float32),
            np.array([True, True, False, True, True, False]),
        ),
        "name": Column(object_array(["apple", "banana", "apricot", "cherry", "a_b%c", ""])),
        "tag": Column(
            object_array(["x", None, "y", None, "x", "z"]),
            np.array([True, False, True, False, True, True]),
        ),
        "flag": Column(np.array([True, False, True, False, False, True])),
        "meta": Column(
            object_array(
                [
                    {"a": 1, "b": {"c": [1, 2, 3]}},
                    {"a": "1"},
                    {"a": 2.5, "l": [1, "x"]},
                    None,
                    {"a": True},
                    {"b": {"c": []}},
                ]
            ),
            np.array([True, True, True, False, True, True]),
        ),
        "tags": Column(
            object_array([["red", "blue"], [], ["red"], ["green", "blue", "red"], ["blue"], None]),
            np.array([True, True, True, True, True, False]),
        ),
        "nums": Column(object_array([[1, 2, 3], [4], [], [1, 1], [5, 6, 7, 8], [2]])),
        "vec": Column(np.zeros((6, 2), dtype=np.float32)),
        "$meta": Column(
            object_array(
                [
                    {"color": "red", "size": 1},
                    {"color": "blue"},
                    {},
                    {"color": "red", "size": 3},
                    {"size": None},
                    {"color": 5},
                ]
            )
        ),
    }


ALL = [1, 2, 3, 4, 5, 6]

CASES: list[tuple[str, list[int]]] = [
    # comparisons and literals
    ("age == 30", [3]),
    ("age != 30", [1, 2, 4, 5, 6]),
    ("age < 30", [1, 2]),
    ("age <= 30", [1, 2, 3]),
    ("age > 40", [5, 6]),
    ("age >= 40", [4, 5, 6]),
    ("30 < age", [4, 5, 6]),
    ("age == 0x1E", [3]),
    ("age == 036", [3]),
    ("age == 0b11110", [3]),
    ("price > 2.5e1", [4]),
    ("age * 1.0 == 30.0", [3]),
    ("age / 1.0 > 29.5", [3, 4, 5, 6]),
    ("i8 < 1000", ALL),
    ("i8 == 127", [6]),
    ("i8 > -2", [3, 4, 5, 6]),
    ("price > 9.99", [4]),
    ("price >= .5", [1, 2, 3, 4]),
    ("price == -0.5", [5]),
    ("score > 1", [2, 4, 5]),
    ("score == 0.5", [1]),
    ("name == 'apple'", [1]),
    ('name == "apple"', [1]),
    ("name > 'b'", [2, 4]),
    ("name == ''", [6]),
    ('name == "a_b%c"', [5]),
    ("name == 'a\\x5fb%c'", [5]),
    ('name == "ap\\u0070le"', [1]),
    ("name == 'it\\'s'", []),
    ("name == r'a_b%c'", [5]),
    ("flag == true", [1, 3, 6]),
    ("flag == True", [1, 3, 6]),
    ("flag == TRUE", [1, 3, 6]),
    ("flag != false", [1, 3, 6]),
    ("flag == FALSE", [2, 4, 5]),
    ("not flag == true", [2, 4, 5]),
    ("!(flag == true)", [2, 4, 5]),
    # chained ranges
    ("20 < age <= 40", [3, 4]),
    ("20 <= age < 40", [2, 3]),
    ("50 > age >= 20", [2, 3, 4]),
    ("0 < score < 3", [1, 2, 4]),
    ("-1 <= i8 <= 1", [3, 4, 5]),
    # in / not in
    ("age in [10, 30, 99]", [1, 3]),
    ("age not in [10, 30]", [2, 4, 5, 6]),
    ("age IN [10]", [1]),
    ("age NOT IN [10]", [2, 3, 4, 5, 6]),
    ("name in ['apple', 'cherry']", [1, 4]),
    ("name not in ['apple']", [2, 3, 4, 5, 6]),
    ("tag in ['x']", [1, 5]),
    ("tag not in ['x']", [3, 6]),
    ("age in []", []),
    ("age not in []", ALL),
    ("flag in [true]", [1, 3, 6]),
    ("id in [2, 4,]", [2, 4]),
    # like
    ("name like 'ap%'", [1, 3]),
    ("name like '%an%'", [2]),
    ("name like '%e'", [1]),
    ("name like 'a____'", [1, 5]),
    ("name like 'a\\_b\\%c'", [5]),
    ("name LIKE 'banana'", [2]),
    ("name like '%'", ALL),
    ("tag like 'x%'", [1, 5]),
    ("name like 'a%c%'", [3, 5]),
    ("name LiKe 'ap%'", [1, 3]),
    # logic and precedence
    ("age > 20 and age < 50", [3, 4]),
    ("age > 20 && age < 50", [3, 4]),
    ("age > 10 AnD age < 30", [2]),
    ("age < 20 or age > 50", [1, 6]),
    ("age < 20 || age > 50", [1, 6]),
    ("age < 20 OR age > 50", [1, 6]),
    ("age < 20 Or age > 50", [1, 6]),
    ("age > 20 AND flag == true", [3, 6]),
    ("not (age > 20)", [1, 2]),
    ("NOT age > 20", [1, 2]),
    ("not age in [10, 20]", [3, 4, 5, 6]),
    ("!(age > 20) or flag == true", [1, 2, 3, 6]),
    ("(age < 20 or age > 50) and flag == true", [1, 6]),
    ("age < 20 or age > 50 and flag == true", [1, 6]),
    ("age > 50 or age < 20 and not flag == true", [6]),
    ("not not flag == true", [1, 3, 6]),
    # null semantics: unknown never matches, not even negated
    ("score is null", [3, 6]),
    ("score IS NOT NULL", [1, 2, 4, 5]),
    ("tag is null", [2, 4]),
    ("not (score > 1)", [1]),
    ("score > 1 or flag == true", ALL),
    ("score > 1 and flag == true", []),
    ("not (score > 1 and flag == true)", [1, 2, 4, 5]),
    ("not (score > 1 or flag == true)", []),
    ("tag != 'x'", [3, 6]),
    ("meta is null", [4]),
    ("meta['a'] is null", [4, 6]),
    ("meta['a'] is not null", [1, 2, 3, 5]),
    # arithmetic
    ("age + 5 > 40", [4, 5, 6]),
    ("age - 5 == 25", [3]),
    ("age * 2 <= 40", [1, 2]),
    ("age / 20 == 1", [2, 3]),
    ("age / 20.0 == 1.5", [3]),
    ("age % 3 == 0", [3, 6]),
    ("age % 20 == 10", [1, 3, 5]),
    ("i8 % 2 == -1", [1, 3]),
    ("i8 / 2 == -1", [1, 2]),
    ("price * 2 > 10", [3, 4]),
    ("age == 5 * 6", [3]),
    ("age == (1 + 2) * 10", [3]),
    ("age == 1 + 2 * 10 - 1", [2]),
    ("age == 2 ** 5 - 2", [3]),
    ("age < -(-15)", [1]),
    ("score * 2 > 2", [2, 4, 5]),
    ("i8 + 200 > 300", [6]),
    # JSON fields
    ("meta['a'] == 1", [1]),
    ('meta["a"] == 1', [1]),
    ("meta['a'] == '1'", [2]),
    ("meta['a'] > 0", [1, 3]),
    ("meta['a'] == true", [5]),
    ("meta['b']['c'][0] == 1", [1]),
    ("meta['b']['c'][2] == 3", [1]),
    ("meta['l'][1] == 'x'", [3]),
    ("not (meta['a'] == 1)", [3]),
    ("meta['a'] != 1", [3]),
    ("meta['a'] in [1, 2.5]", [1, 3]),
    ("meta['a'] in ['1', 2.5]", [2, 3]),
    ("meta['a'] not in [1]", [2, 3, 5]),
    ("meta['a'] + 1 > 2", [3]),
    ("meta['a'] * 2 == 5", [3]),
    ("exists meta['b']", [1, 6]),
    ("EXISTS meta['b']['c']", [1, 6]),
    ("exists meta['l']", [3]),
    ("json_contains(meta['b']['c'], 2)", [1]),
    ("JSON_CONTAINS(meta['l'], 'x')", [3]),
    ("json_contains_all(meta['b']['c'], [1, 3])", [1]),
    ("json_contains_any(meta['l'], [7, 1])", [3]),
    ("json_contains_any(meta['b']['c'], [7])", []),
    ("meta['a'] like '1%'", [2]),
    ("array_length(meta['b']['c']) == 0", [6]),
    ("meta['b']['c'] == [1, 2, 3]", [1]),
    ("1 < meta['a'] < 3", [3]),
    # the dynamic field: bare names that are not schema fields, and $meta
    ("color == 'red'", [1, 4]),
    ("$meta['color'] == 'red'", [1, 4]),
    ("color in ['red', 'blue']", [1, 2, 4]),
    ("size > 1", [4]),
    ("size is null", [2, 3, 5, 6]),
    ("exists size", [1, 4, 5]),
    ("exists $meta['size']", [1, 4, 5]),
    ("color == 5", [6]),
    ("not (color == 'red')", [2]),
    ("color like 'r%'", [1, 4]),
    # ARRAY fields
    ("array_contains(tags, 'red')", [1, 3, 4]),
    ("ARRAY_CONTAINS(nums, 1)", [1, 4]),
    ("array_contains_all(tags, ['red', 'blue'])", [1, 4]),
    ("array_contains_any(tags, ['green', 'x'])", [4]),
    ("not array_contains(tags, 'red')", [2, 5]),
    ("array_length(nums) == 0", [3]),
    ("array_length(tags) > 1", [1, 4]),
    ("nums[0] == 1", [1, 4]),
    ("nums[1] > 1", [1, 5]),
    ("tags[0] == 'red'", [1, 3]),
    ("tags[0] like 'g%'", [4]),
    ("tags is null", [6]),
    ("nums == [4]", [2]),
    ("nums != [4]", [1, 3, 4, 5, 6]),
    # constants
    ("1 == 1", ALL),
    ("1 > 2", []),
    ("not false", ALL),
    ("true and 2 > 1", ALL),
    ("'a' < 'b' or false", ALL),
]


@pytest.mark.parametrize(("expr", "expected"), CASES, ids=[c[0] for c in CASES])
def test_filter_matches_expected_rows(expr: str, expected: list[int]) -> None:
    batch = make_batch()
    mask = compile_filter(expr, SCHEMA).evaluate(batch, 6)
    assert mask.dtype == np.bool_ and mask.shape == (6,)
    assert batch["id"].values[mask].tolist() == expected


TEMPLATE_CASES: list[tuple[str, dict, list[int]]] = [
    ("age > {x}", {"x": 40}, [5, 6]),
    ("age in {ages}", {"ages": [10, 60]}, [1, 6]),
    ("name == {n}", {"n": "apple"}, [1]),
    ("flag == {b}", {"b": False}, [2, 4, 5]),
    ("{lo} < age < {hi}", {"lo": 15, "hi": 45}, [2, 3, 4]),
    ("price > {p}", {"p": 9.5}, [3, 4]),
    ("json_contains_any(meta['b']['c'], {vals})", {"vals": [3]}, [1]),
    ("age in {ages} and name like {pat}", {"ages": (10, 30, 40), "pat": "a%"}, [1, 3]),
    ("age == {x}", {"x": np.int64(20)}, [2]),
    ("age in [{a}, {b}]", {"a": 10, "b": 20}, [1, 2]),
    ("color == {c} or meta['a'] == {c}", {"c": "1"}, [2]),
    ("nums == {l}", {"l": [4]}, [2]),
]


@pytest.mark.parametrize(("expr", "params", "expected"), TEMPLATE_CASES, ids=[c[0] for c in TEMPLATE_CASES])
def test_template_values_come_from_filter_params(expr: str, params: dict, expected: list[int]) -> None:
    batch = make_batch()
    mask = compile_filter(expr, SCHEMA, params).evaluate(batch, 6)
    assert batch["id"].values[mask].tolist() == expected


def test_every_case_handles_an_empty_batch() -> None:
    empty = {name: col.take(np.arange(0)) for name, col in make_batch().items()}
    for expr, _ in CASES:
        assert compile_filter(expr, SCHEMA).evaluate(empty, 0).shape == (0,), expr
