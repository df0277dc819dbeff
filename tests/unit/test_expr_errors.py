"""Bad filters: the error a user gets back (Milvus code 1100, position, what is wrong)."""

from __future__ import annotations

import pytest
from test_expr_table import SCHEMA

from shoal.errors import Code, ShoalError
from shoal.expr import compile_filter
from shoal.schema import CollectionSchema, DataType, FieldSchema

STATIC = CollectionSchema(
    [
        FieldSchema("id", DataType.INT64, is_primary=True),
        FieldSchema("age", DataType.INT64),
        FieldSchema("vec", DataType.FLOAT_VECTOR, dim=2),
    ],
    enable_dynamic_field=False,
)

# (expression, character position of the error, words the message must contain)
SYNTAX_ERRORS: list[tuple[str, int, str]] = [
    ("age >", 5, "end of expression"),
    ("age > > 3", 6, "expected an operand"),
    ("(age > 3", 8, "expected ')'"),
    ("age > 3)", 7, "unexpected ')'"),
    ("age inn [1, 2]", 4, "invalid expression: age inn [1, 2], unexpected"),
    ("age # 3", 4, "unexpected character '#'"),
    ("name == 'abc", 8, "unterminated string"),
    ("age in [1, 2", 12, "expected ']'"),
    ("age == 0x", 7, "malformed number"),
    ("age == 08", 7, "malformed number"),
    ("age == 0x1p99999", 7, "malformed number"),
    ("age == 99999999999999999999", 7, "int64 range"),
    ("age == 9223372036854775808", 7, "int64 range"),
    ("1 < age > 3", 8, "both sides"),
    ("1 < age < 3 < 5", 12, "at most two"),
    ("age is nul", 7, "expected 'null'"),
    ("age and", 7, "end of expression"),
    ("meta[age] == 1", 5, "string key or array index"),
    ("{ } > 1", 2, "template name"),
    ("name == 'bad \\u12'", 13, "escape"),
    ("in > 3", 0, "keyword 'in'"),
    ("age ==== 1", 6, "expected an operand"),
]


@pytest.mark.parametrize(("expr", "pos", "words"), SYNTAX_ERRORS, ids=[e[0] for e in SYNTAX_ERRORS])
def test_malformed_filter_reports_position(expr: str, pos: int, words: str) -> None:
    with pytest.raises(ShoalError) as info:
        compile_filter(expr, SCHEMA)
    assert info.value.code == Code.PARAMETER_INVALID
    assert f"at position {pos}" in info.value.message
    assert words in info.value.message
    assert expr in info.value.message


# (expression, schema, words the message must contain — usually the field's name)
TYPE_ERRORS: list[tuple[str, CollectionSchema, str]] = [
    ("age and flag", SCHEMA, "field 'age'"),
    ("name > 3", SCHEMA, "field 'name' of type VARCHAR"),
    ("age == 'x'", SCHEMA, "field 'age' of type INT32"),
    ("name + 1 > 2", SCHEMA, "field 'name'"),
    ("-name < 0", SCHEMA, "field 'name'"),
    ("flag * 2 > 1", SCHEMA, "field 'flag'"),
    ("nosuch > 1", STATIC, "field nosuch not exist"),
    ("$meta['k'] > 1", STATIC, "dynamic field"),
    ("vec > 1", SCHEMA, "vector field 'vec'"),
    ("age like 'a%'", SCHEMA, "field 'age'"),
    ("name like age", SCHEMA, "pattern"),
    ("age in [1, 'a']", SCHEMA, "value 'string_val:\"a\"' in list cannot be casted to Int32"),
    ("flag in [0]", SCHEMA, "value 'int64_val:0' in list cannot be casted to Bool"),
    ("age in not [1, 2]", SCHEMA, "not can only apply on boolean"),
    ("age > 1 and 2", SCHEMA, "and can only apply on boolean"),
    ("age in age", SCHEMA, "value 'age' in list cannot be a non-const expression"),
    ("age in (age)", SCHEMA, "value '(age)' in list cannot be a non-const expression"),
    ("age in 1", SCHEMA, "the right-hand side of 'in' must be a list, but got: 1"),
    ("age in [10.0, 20.5]", SCHEMA, "value 'float_val:10' in list cannot be casted to Int32"),
    ("age in [age]", SCHEMA, "constants"),
    ("{missing} > 1", SCHEMA, "{missing}"),
    ("foo(age) > 1", SCHEMA, "unknown function foo()"),
    ("age / 0 > 1", SCHEMA, "division by zero"),
    ("age % (2 - 2) > 1", SCHEMA, "division by zero"),
    ("age[0] == 1", SCHEMA, "field 'age'"),
    ("nums[0][1] == 1", SCHEMA, "nums"),
    ("array_contains(nums, 'x')", SCHEMA, "nums"),
    ("array_contains(age, 1)", SCHEMA, "field 'age'"),
    ("array_contains_all(nums, 1)", SCHEMA, "must be a list"),
    ("json_contains(meta['a'], age)", SCHEMA, "constant"),
    ("array_length(age) > 1", SCHEMA, "field 'age'"),
    ("exists age", SCHEMA, "field 'age'"),
    ("flag < true", SCHEMA, "field 'flag'"),
    ("(age & 1) == name", SCHEMA, "field 'name'"),
    ("name << 1 == 2", SCHEMA, "field 'name'"),
    ("~price == 1", SCHEMA, "field 'price'"),
    ("nums < [1]", SCHEMA, "field 'nums'"),
    ("(age + 1) is null", SCHEMA, "is null"),
    ("1.2", SCHEMA, "the filter is a constant float 1.2"),
    ("nums[3] is null", SCHEMA, "IsNull/IsNotNull operations are not supported on array element access, got: nums[3]"),
    ("vec is not null", SCHEMA, "IsNull/IsNotNull operations are not supported on vector fields"),
]


@pytest.mark.parametrize(("expr", "words"), [
    ("age", "predicate is not a boolean expression: age, data type: Int32"),
    ("age + 1", "predicate is not a boolean expression: age + 1, data type: Int64"),
    ("meta['a']", "predicate is not a boolean expression: meta['a'], data type: JSON"),
])
def test_a_filter_that_is_not_boolean_is_refused_as_milvus_does(expr: str, words: str) -> None:
    with pytest.raises(ShoalError) as info:
        compile_filter(expr, SCHEMA)
    assert info.value.code == Code.PARAMETER_INVALID
    assert info.value.message == f"failed to create query plan: {words}"


@pytest.mark.parametrize(("expr", "schema", "words"), TYPE_ERRORS, ids=[e[0] for e in TYPE_ERRORS])
def test_ill_typed_filter_names_the_field(expr: str, schema: CollectionSchema, words: str) -> None:
    with pytest.raises(ShoalError) as info:
        compile_filter(expr, schema)
    assert info.value.code == Code.PARAMETER_INVALID
    assert words in info.value.message
    assert "at position" in info.value.message


def test_unimplemented_functions_are_reported_unsupported() -> None:
    with pytest.raises(ShoalError) as info:
        compile_filter("st_isvalid(x)", SCHEMA)
    assert info.value.code == Code.NOT_SUPPORTED
    assert "not supported" in info.value.message


def test_element_filters_need_an_array_of_structs() -> None:
    with pytest.raises(ShoalError) as info:
        compile_filter("element_filter(x, 1)", SCHEMA)
    assert info.value.code == Code.PARAMETER_INVALID
    assert "array of structs" in info.value.message


@pytest.mark.parametrize(
    ("expr", "words"),
    [
        ("text_match(name, 'shoal')", "does not enable match"),
        ("PHRASE_MATCH(name, 'a b', 2)", "does not enable match"),
        ("st_within(name, 'POINT (0 0)')", "GEOMETRY field"),
    ],
)
def test_text_and_geo_functions_need_fitting_fields(expr: str, words: str) -> None:
    with pytest.raises(ShoalError) as info:
        compile_filter(expr, SCHEMA)
    assert info.value.code == Code.PARAMETER_INVALID
    assert words in info.value.message


def test_template_value_of_unknown_type_is_rejected() -> None:
    with pytest.raises(ShoalError) as info:
        compile_filter("age > {x}", SCHEMA, {"x": object()})
    assert info.value.code == Code.PARAMETER_INVALID
    assert "{x}" in info.value.message


def test_error_for_a_huge_filter_quotes_only_its_start() -> None:
    text = "id in [" + ", ".join(str(i) for i in range(50000)) + ", 'x']"
    with pytest.raises(ShoalError) as info:
        compile_filter(text, SCHEMA)
    assert info.value.code == Code.PARAMETER_INVALID
    assert len(info.value.message) < 1000
    assert "cannot be casted to Int64" in info.value.message
