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
    ("age and flag", SCHEMA, "'and' can only be used between boolean expressions"),
    ("name > 3", SCHEMA, "comparisons between VarChar and Int64 are not supported"),
    ("age == 'x'", SCHEMA, "comparisons between Int32 and VarChar are not supported"),
    ("name + 1 > 2", SCHEMA, "field 'name'"),
    ("-(name + 1) < 0", SCHEMA, "field 'name'"),
    ("flag * 2 > 1", SCHEMA, "field 'flag'"),
    ("nosuch > 1", STATIC, "field nosuch not exist"),
    ("$meta['k'] > 1", STATIC, "dynamic field"),
    ("vec > 1", SCHEMA, "vector field 'vec'"),
    ("age like 'a%'", SCHEMA, "like operation on non-string or no-json field is unsupported"),
    ("name like age", SCHEMA, "pattern"),
    ("age in [1, 'a']", SCHEMA, "value 'string_val:\"a\"' in list cannot be casted to Int32"),
    ("flag in [0]", SCHEMA, "value 'int64_val:0' in list cannot be casted to Bool"),
    ("age in not [1, 2]", SCHEMA, "not can only apply on boolean"),
    ("age > 1 and 2", SCHEMA, "'and' can only be used between boolean expressions"),
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
    ("nums < [1]", SCHEMA, "field 'nums'"),
    ("(age + 1) is null", SCHEMA, "is null"),
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


# What Milvus's planner (planparserv2) refuses, in its words: a bare BOOL column or a literal
# as a predicate, a constant beside a predicate, arithmetic or a comparison across two columns
# it cannot plan, and constants that do not cast to the column's type.
MILVUS_REFUSALS: list[tuple[str, str]] = [
    ("flag", "failed to create query plan: predicate is not a boolean expression: flag, data type: Bool"),
    ("!flag", "cannot parse expression: !flag, error: not op can only be applied on boolean expression"),
    ("not meta['a']", "error: not op can only be applied on boolean expression"),
    ("age > 0 and flag", "cannot parse expression: age > 0 and flag, error: 'and' can only be used between boolean expressions"),
    ("age > 0 or false", "cannot parse expression: age > 0 or false, error: 'or' can only be used between boolean expressions"),
    ("true and age > 0", "error: 'and' can only be used between boolean expressions"),
    ("age + price > 3", "error: not supported to do arithmetic operations between multiple fields"),
    ("size + age > 40", "error: not supported to do arithmetic operations between multiple fields"),
    ("meta['a'] > age", "error: two column comparison with JSON type is not supported"),
    ("$meta['a'] > $meta['b']", "error: two column comparison with JSON type is not supported"),
    ("color == size", "error: two column comparison with JSON type is not supported"),
    ("age + 1 > price", "error: only comparison between two fields is supported"),
    ("name > 1", "error: comparisons between VarChar and Int64 are not supported"),
    ("flag == 1", "error: comparisons between Bool and Int64 are not supported"),
    ("tags[0] == 1", "error: comparisons between Array[VarChar] and Int64 are not supported"),
    ("age == 1.2", "error: cannot cast value to Int32, value: float_val:1.2"),
    ("id >= 10.0", "error: cannot cast value to Int64, value: float_val:10"),
    ("age + 1 < 2.5", "error: cannot cast value to Int64, value: float_val:2.5"),
    ("price like 'a%'", "error: like operation on non-string or no-json field is unsupported"),
    ("(age + 1) like 'a%'", "error: like operation on complicated expr is unsupported"),
    ("1.2", "failed to create query plan: predicate is not a boolean expression: 1.2, data type: Double"),
    ("1 + 2", "predicate is not a boolean expression: 1 + 2, data type: Int64"),
    ("'a'", "predicate is not a boolean expression: 'a', data type: VarChar"),
    ("(age & 8) == 8", "cannot parse expression: (age & 8) == 8, error: BitAnd is not supported: age&8"),
    ("age | 1 == 11", "error: BitOr is not supported: age|1==11"),
    ("(age ^ 10) == 0", "error: BitXor is not supported: age^10"),
    ("(1 & 1) == 1", "error: BitAnd is not supported: 1&1"),
    ("age >> 1 == 15", "error: shift is not supported: age>>1"),
    ("(age + 1) << 2 == 4", "error: shift is not supported: (age+1)<<2"),
    ("age ** 2 > 1000", "error: power can only apply on constants: age**2"),
    ("2 ** meta['a'] > 1", "error: power can only apply on constants: 2**meta['a']"),
    ("-age < -45", "cannot parse expression: -age < -45, error: unexpected op: -"),
    ("-meta['a'] == 1", "error: unexpected op: -"),
    ("~age == -11", "error: unexpected op: ~"),
    ("~1 == -2", "error: unexpected op: ~"),
    ("(age + 1) * 2 > 3", "error: complicated arithmetic operations are not supported"),
    ("3 < age * 2 - 1", "error: complicated arithmetic operations are not supported"),
    ("array_length(nums) + 1 == 3", "error: complicated arithmetic operations are not supported"),
    ("10 - age == 3", "error: module field is not yet supported"),
    ("100 / meta['a'] > 3", "error: module field is not yet supported"),
]


@pytest.mark.parametrize(("expr", "words"), MILVUS_REFUSALS, ids=[e[0] for e in MILVUS_REFUSALS])
def test_filters_milvus_refuses_answer_with_its_words(expr: str, words: str) -> None:
    with pytest.raises(ShoalError) as info:
        compile_filter(expr, SCHEMA)
    assert info.value.code == Code.PARAMETER_INVALID
    assert info.value.message.startswith("failed to create query plan: ")
    assert words in info.value.message


@pytest.mark.parametrize("expr", [
    "flag == true", "not (flag == false)", "1 == 1", "not false", "true and 1 < 2", "age > price",
    "flag != flag", "price > 1", "score == 0", "age * 1.5 > 3", "age * 2 > 3", "age % 2 == 0", "2 + age == 3",
    "3 * age < 10", "age == 2 ** 3 - -1", "age > -(1 + 2) * 2", "+age > 1", "meta['a'] / 2 == 1", "meta['a'] == 1.5", "age > 0 and (name == 'a' or price < 2)",
])
def test_forms_milvus_plans_still_compile(expr: str) -> None:
    assert compile_filter(expr, SCHEMA).root is not None
