"""Filters and input checks from Milvus's own MilvusClient suite that Milvus refuses, through pymilvus.

The filter refusals are Milvus's planner's (`planparserv2`: `canBeExecuted`, `VisitLogicalAnd/Or`,
`VisitUnary`, `HandleCompare`, `castValue`, `VisitLike`); the suite checks its words as a substring.
Forms Milvus plans (a BOOL field compared with `true`, two numeric columns compared) keep working.
"""

from __future__ import annotations

import pytest
from milvus_errors import fails
from pymilvus import DataType, MilvusClient

_Q = [[0.1, 0.2, 0.3, 0.4]]
_PLAN = "failed to create query plan: "


@pytest.fixture()
def typed(client: MilvusClient, name: str):
    """No dynamic field: the suite's all-type schema, five rows, `bool` true on even keys."""
    schema = client.create_schema(enable_dynamic_field=False)
    schema.add_field("int64", DataType.INT64, is_primary=True)
    schema.add_field("int64_2", DataType.INT64)
    schema.add_field("float", DataType.FLOAT)
    schema.add_field("varchar", DataType.VARCHAR, max_length=16)
    schema.add_field("bool", DataType.BOOL)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=4)
    index = client.prepare_index_params()
    index.add_index("vec", metric_type="COSINE")
    client.create_collection(name, schema=schema, index_params=index)
    client.insert(name, [{"int64": i, "int64_2": 4 - i, "float": i * 0.5, "varchar": str(i), "bool": i % 2 == 0,
                          "vec": [0.1 * (i + 1), 0.2, 0.3, 0.4]} for i in range(5)])
    yield name
    client.drop_collection(name)


def _search(client: MilvusClient, collection: str, expr: str, **kwargs) -> object:
    return client.search(collection, _Q, filter=expr, limit=10, **kwargs)


def test_a_bare_bool_field_is_no_predicate_but_a_literal_is(client: MilvusClient, typed: str) -> None:
    fails(lambda: _search(client, typed, "bool"), 1100, f"{_PLAN}predicate is not a boolean expression: bool, data type: Bool")
    # the suite's search `expression_invalid_bool` (Milvus master): `true` keeps every row, `false` none
    assert len(_search(client, typed, "true")[0]) == 5
    assert len(_search(client, typed, "false")[0]) == 0
    fails(lambda: _search(client, typed, "!bool"), 1100,
           "cannot parse expression: !bool, error: not op can only be applied on boolean expression")
    fails(lambda: _search(client, typed, "int64 > 0 and bool"), 1100,
           "cannot parse expression: int64 > 0 and bool, error: 'and' can only be used between boolean expressions")
    fails(lambda: _search(client, typed, "int64 > 0 or false"), 1100,
           "cannot parse expression: int64 > 0 or false, error: 'or' can only be used between boolean expressions")
    fails(lambda: client.query(typed, filter="bool", limit=3), 1100,
           f"{_PLAN}predicate is not a boolean expression: bool, data type: Bool")
    # compared with a literal, the field is a predicate; a constant Milvus folds is one too
    assert sorted(hit["int64"] for hit in _search(client, typed, "bool == true")[0]) == [0, 2, 4]
    assert sorted(r["int64"] for r in client.query(typed, filter="not (bool == true)")) == [1, 3]
    assert len(client.query(typed, filter="1 == 1", limit=10)) == 5


@pytest.mark.parametrize("expr", [
    "int64 + int64_2 <= 10 or int64 - int64_2 == 2",
    "int64 * int64_2 >= 8 and int64 / int64_2 < 2",
    "int64 ** int64_2 != 4 and int64 + int64_2 > 5",
])
def test_arithmetic_between_two_fields_cannot_be_parsed(client: MilvusClient, typed: str, expr: str) -> None:
    fails(lambda: _search(client, typed, expr), 1100, f"{_PLAN}cannot parse expression: {expr}")
    # two columns compared as they are: planned
    assert sorted(r["int64"] for r in client.query(typed, filter="int64 > int64_2")) == [3, 4]


@pytest.mark.parametrize(("expr", "words"), [
    ("(int64 & 1) == 1", "BitAnd is not supported: int64&1"),
    ("int64 | 2 == 3", "BitOr is not supported: int64|2==3"),
    ("(int64 ^ 1) == 0", "BitXor is not supported: int64^1"),
    ("int64 << 1 == 4", "shift is not supported: int64<<1"),
    ("int64 ** 2 == 4", "power can only apply on constants: int64**2"),
    ("-int64 < -2", "unexpected op: -"),
    ("~int64 == -3", "unexpected op: ~"),
    ("(int64 + 1) * 2 > 3", "complicated arithmetic operations are not supported"),
    ("10 - int64 == 7", "module field is not yet supported"),
])
def test_operators_milvus_cannot_plan_on_a_field(client: MilvusClient, typed: str, expr: str, words: str) -> None:
    fails(lambda: _search(client, typed, expr), 1100, f"{_PLAN}cannot parse expression: {expr}, error: {words}")
    fails(lambda: client.query(typed, filter=expr, limit=3), 1100, f"error: {words}")


def test_one_column_arithmetic_and_constants_still_filter(client: MilvusClient, typed: str) -> None:
    def keys(expr: str) -> list[int]:
        return sorted(r["int64"] for r in client.query(typed, filter=expr))

    assert keys("int64 * 2 > 3") == [2, 3, 4]
    assert keys("int64 % 2 == 0") == [0, 2, 4]
    assert keys("2 + int64 == 5") == [3]
    assert keys("int64 == 2 ** 2 - -1 - 2") == [3]
    fails(lambda: _search(client, typed, "1.2"), 1100, f"{_PLAN}predicate is not a boolean expression: 1.2, data type: Double")


def test_two_dynamic_keys_are_not_compared(client: MilvusClient, name: str) -> None:
    client.create_collection(name, dimension=4)
    try:
        client.insert(name, [{"id": 1, "vector": [0.1, 0.2, 0.3, 0.4], "float": 2.0, "int64": 1}])
        for expr in ("float >= int64", '$meta["float"] >= $meta["int64"]'):
            fails(lambda e=expr: _search(client, name, e), 1100,
                   "error: two column comparison with JSON type is not supported")
        assert [hit["id"] for hit in _search(client, name, "float >= 1")[0]] == [1]
    finally:
        client.drop_collection(name)


def test_types_milvus_cannot_compare_or_cast_are_refused(client: MilvusClient, typed: str) -> None:
    fails(lambda: client.query(typed, filter="float like 'a%'", limit=3), 1100,
           "error: like operation on non-string or no-json field is unsupported")
    fails(lambda: _search(client, typed, "varchar == 0"), 1100,
           "cannot parse expression: varchar == 0, error: comparisons between VarChar and Int64 are not supported")
    fails(lambda: client.query(typed, filter="varchar >= 0", limit=3), 1100,
           "error: comparisons between VarChar and Int64 are not supported")
    # the suite's `filter=f"int64=={1.2}"`: Milvus casts 1.2 to the INT64 column and refuses it
    fails(lambda: _search(client, typed, "int64==1.2"), 1100,
           f"{_PLAN}cannot parse expression: int64==1.2, error: cannot cast value to Int64, value: float_val:1.2")
    assert sorted(r["int64"] for r in client.query(typed, filter="float > 1")) == [3, 4]


def test_an_aggregation_output_names_an_existing_field(client: MilvusClient, typed: str) -> None:
    fails(lambda: client.query(typed, filter="int64 >= 0", output_fields=["count(int)"]), 1100,
           "target field int for aggregation:count does not exist")
    fails(lambda: client.query(typed, filter="int64 >= 0", output_fields=["SUM(*)"]), 1100,
           "sum(*) is not supported, only count(*) is allowed")
    assert client.query(typed, filter="int64 >= 2", output_fields=["count(*)"])[0]["count(*)"] == 3


def test_range_bounds_must_be_numbers_and_hints_known(client: MilvusClient, typed: str) -> None:
    for bad, kind in (("0.5", "string"), ([0.5], "array")):
        for key in ("radius", "range_filter"):
            params = {"radius": 0.1, "range_filter": 1.0, key: bad}
            fails(lambda p=params: _search(client, typed, "", search_params={"params": p}), 65535,
                   f"type must be number, but is {kind}")
    hits = _search(client, typed, "", search_params={"params": {"radius": 0.1, "range_filter": 1.0}})[0]
    assert len(hits) == 5
    fails(lambda: _search(client, typed, "int64 >= 1", search_params={"hints": "not_supported_hints"}), 1100,
           "Create Plan by expr failed:  => hints: not_supported_hints not supported")
    hits = _search(client, typed, "int64 >= 1", search_params={"hints": "iterative_filter"})[0]
    assert sorted(hit["int64"] for hit in hits) == [1, 2, 3, 4]


def test_an_auto_id_key_given_is_more_field_data(client: MilvusClient, name: str) -> None:
    schema = client.create_schema(auto_id=True)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    schema.add_field("s", DataType.VARCHAR, max_length=3)
    client.create_collection(name, schema=schema)
    try:
        message = fails(lambda: client.insert(name, [{"id": 7, "v": [0.1, 0.2], "s": "a"}]), 1100,
                         "more fieldData has pass in: invalid parameter")
        assert message == "more fieldData has pass in: invalid parameter[expected=3][actual=4]"
        assert client.insert(name, [{"v": [0.1, 0.2], "s": "a"}])["insert_count"] == 1
    finally:
        client.drop_collection(name)
