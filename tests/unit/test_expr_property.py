"""Property tests: random well-formed filters over random schemas and rows.

(a) compiling and evaluating never crashes (only ShoalError is allowed), and
(b) the vectorised result equals a plain row-by-row reference written here, with
Milvus null semantics spelled out one row at a time (None = unknown).
"""

from __future__ import annotations

import math
import random
import re
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shoal.errors import Code, ShoalError
from shoal.expr import compile_filter
from shoal.schema import CollectionSchema, Column, DataType, FieldSchema, object_array

Expr = tuple[Any, ...]
INT64 = (-(2**63), 2**63 - 1)

# -- random schemas and rows -------------------------------------------------------------

json_scalars = st.one_of(
    st.integers(-20, 20),
    st.integers(-40, 40).map(lambda v: v / 2),
    st.sampled_from(["a", "ab", "b", ""]),
    st.booleans(),
    st.none(),
    st.lists(st.integers(0, 3), max_size=3),
)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[CollectionSchema, list[dict[str, Any]]]:
    nullable = {name: draw(st.booleans()) for name in ("i", "x", "s", "b", "m")}
    int_type = draw(st.sampled_from([DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64]))
    schema = CollectionSchema(
        [
            FieldSchema("id", DataType.INT64, is_primary=True),
            FieldSchema("i", DataType.INT64, nullable=nullable["i"]),
            FieldSchema("j", int_type),
            FieldSchema("x", DataType.DOUBLE, nullable=nullable["x"]),
            FieldSchema("s", DataType.VARCHAR, max_length=8, nullable=nullable["s"]),
            FieldSchema("b", DataType.BOOL, nullable=nullable["b"]),
            FieldSchema("m", DataType.JSON, nullable=nullable["m"]),
            FieldSchema("arr", DataType.ARRAY, element_type=DataType.INT64, max_capacity=4),
        ],
        enable_dynamic_field=draw(st.booleans()),
    )

    def maybe_null(name: str, values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(st.none(), values) if nullable[name] else values

    row = st.fixed_dictionaries(
        {
            "i": maybe_null("i", st.integers(-20, 20)),
            "j": st.integers(-20, 20),
            "x": maybe_null("x", st.integers(-40, 40).map(lambda v: v / 2)),
            "s": maybe_null("s", st.text(alphabet="ab%_", max_size=3)),
            "b": maybe_null("b", st.booleans()),
            "m": maybe_null("m", st.one_of(st.just({}), st.builds(lambda v: {"v": v}, json_scalars))),
            "arr": st.lists(st.integers(0, 5), max_size=4),
            "$meta": st.one_of(st.just({}), st.builds(lambda v: {"k": v}, json_scalars)),
        }
    )
    rows = draw(st.lists(row, min_size=3, max_size=10))
    return schema, rows


def to_batch(schema: CollectionSchema, rows: list[dict[str, Any]], none_placeholders: bool) -> dict[str, Column]:
    n = len(rows)
    batch: dict[str, Column] = {"id": Column(np.arange(n, dtype=np.int64))}
    for f in schema.fields[1:]:
        values = [r[f.name] for r in rows]
        valid = np.array([v is not None for v in values]) if f.nullable else None
        if f.dtype in (DataType.VARCHAR, DataType.JSON, DataType.ARRAY):
            filler = None if none_placeholders or f.dtype is not DataType.VARCHAR else ""
            batch[f.name] = Column(object_array([filler if v is None else v for v in values]), valid)
        else:
            dtype = f.numpy_dtype()
            batch[f.name] = Column(np.array([0 if v is None else v for v in values], dtype=dtype), valid)
    if schema.enable_dynamic_field:
        batch["$meta"] = Column(object_array([r["$meta"] for r in rows]))
    return batch


# -- random well-typed expressions (as small trees) ----------------------------------------
# Drawn with a hypothesis-seeded `random.Random`: explicit odds keep every construct
# (integer division, null propagation through not/or, JSON kinds) frequent per example.

NUM_FIELDS = [("field", "i"), ("field", "j"), ("field", "x"), ("field", "k"), ("json", "m"), ("alen",), ("elem", 0), ("elem", 2)]
INT_FIELDS = [("field", "i"), ("field", "j"), ("elem", 0)]
BITWISE = ("&", "|", "^", "<<", ">>")
CMP_OPS = ["==", "!=", "<", "<=", ">", ">="]


def int_lit(rnd: random.Random, nonzero: bool = False) -> Expr:
    v = rnd.randint(-7, 20)
    return ("lit", v or 1) if nonzero else ("lit", v)


def any_lit(rnd: random.Random) -> Expr:
    return int_lit(rnd) if rnd.random() < 0.6 else ("lit", rnd.randint(-10, 40) / 2)


def num_expr(rnd: random.Random, depth: int, ints_only: bool = False) -> Expr:
    if depth == 0 or rnd.random() < 0.3:
        if rnd.random() < 0.3:
            return int_lit(rnd) if ints_only else any_lit(rnd)
        return rnd.choice(INT_FIELDS if ints_only else NUM_FIELDS)
    if rnd.random() < 0.1:
        return ("neg", num_expr(rnd, depth - 1, ints_only))
    ops = ["+", "-", "*", "/", "%", "/", "%", "**"] + (["&", "|", "^", "<<", ">>"] * 2 if ints_only else [])
    op = rnd.choice(ops)
    left = num_expr(rnd, depth - 1, ints_only)
    if op in BITWISE and rnd.random() < 0.3:
        left = ("field", "k")  # JSON operands of bitwise operators must hold integers
    if op == "**":
        right = ("lit", rnd.choice([0, 1, 2, 3] if ints_only else [2, 3, 2.0, 1.0]))
    elif op in ("<<", ">>"):
        right = ("lit", rnd.randint(0, 8)) if rnd.random() < 0.7 else num_expr(rnd, depth - 1, ints_only)
    elif op in "/%" and rnd.random() < 0.5:
        right = int_lit(rnd, nonzero=True) if ints_only or rnd.random() < 0.7 else ("lit", rnd.choice([0.5, -1.5, 2.0]))
    else:
        right = num_expr(rnd, depth - 1, ints_only)
    return ("arith", op, left, right)


def hit_value(rnd: random.Random, e: Expr, rows: list[dict[str, Any]]) -> Expr | None:
    """A literal equal to `e` in one of the rows, so comparing against it is a sharp test."""
    try:
        v = number(e, rnd.choice(rows))
    except Overflow:
        return None
    return ("lit", v) if v is not None and math.isfinite(v) else None


def predicate(rnd: random.Random, depth: int, rows: list[dict[str, Any]]) -> Expr:
    if depth > 0 and rnd.random() < 0.55:
        roll = rnd.random()
        if roll < 0.25:
            return ("not", predicate(rnd, depth - 1, rows))
        return ("and" if roll < 0.6 else "or", predicate(rnd, depth - 1, rows), predicate(rnd, depth - 1, rows))
    kind = rnd.randrange(-1, 12)
    strs = ["a", "ab", "", "b"]
    if kind in (-1, 0, 1):
        e = num_expr(rnd, 2, ints_only=kind <= 0)
        return ("cmp", rnd.choice(CMP_OPS), e, hit_value(rnd, e, rows) or any_lit(rnd))
    if kind == 2:
        return ("cmp", rnd.choice(CMP_OPS), num_expr(rnd, 2), num_expr(rnd, 1))
    if kind == 3:
        return ("cmp", rnd.choice(CMP_OPS), rnd.choice([("field", "s"), ("field", "k")]), ("lit", rnd.choice(strs)))
    if kind == 4:
        return ("cmp", rnd.choice(["==", "!="]), ("field", "b"), ("lit", rnd.random() < 0.5))
    if kind == 5:
        lo, hi = sorted([rnd.randint(-8, 12), rnd.randint(-8, 12)])
        middle = rnd.choice([("field", "i"), ("field", "x"), ("field", "k"), ("field", "j")])
        return ("range", ("lit", lo), rnd.choice(["<", "<="]), middle, rnd.choice(["<", "<="]), ("lit", hi))
    if kind == 6:
        if rnd.random() < 0.6:
            target = rnd.choice([("field", "i"), ("field", "j"), ("field", "k")])
            values: list[Any] = [rnd.randint(-5, 5) for _ in range(rnd.randrange(5))]
        else:
            target = rnd.choice([("field", "s"), ("field", "k")])
            values = rnd.sample(strs, rnd.randrange(4))
        return ("in", target, values, rnd.random() < 0.4)
    if kind == 7:
        pattern = "".join(rnd.choice("ab%_") for _ in range(rnd.randrange(5)))
        return ("like", rnd.choice([("field", "s"), ("field", "k")]), pattern)
    if kind == 8:
        return ("isnull", rnd.choice(["i", "x", "s", "b", "k"]), rnd.random() < 0.5)
    if kind == 9:
        return ("contains", rnd.choice(["one", "all", "any"]), [rnd.randrange(7) for _ in range(rnd.randrange(4))])
    if kind == 10:
        roll = rnd.random()
        if roll < 0.3:
            return ("exists",)
        if roll < 0.6:
            return ("in", ("field", "k"), [rnd.choice([0, 1, 2, "a", "", True, 0.5]) for _ in range(rnd.randrange(4))], rnd.random() < 0.4)
        return ("jcontains", rnd.choice(["one", "all", "any"]), [rnd.randrange(4) for _ in range(rnd.randrange(3))])
    return ("field", "b")


# -- rendering to filter text ---------------------------------------------------------------


def render(e: Expr, style: int) -> str:
    kind = e[0]
    if kind == "lit":
        v = e[1]
        if isinstance(v, bool):
            return ["true", "True", "TRUE"][style % 3] if v else ["false", "False", "FALSE"][style % 3]
        if isinstance(v, str):
            return f'"{v}"' if style % 2 else f"'{v}'"
        return f"({v!r})" if v < 0 else repr(v)
    if kind == "field":
        if e[1] == "k":
            return '$meta["k"]' if style % 2 else "k"
        return e[1]
    if kind == "json":
        return f'{e[1]}["v"]'
    if kind == "alen":
        return "array_length(arr)"
    if kind == "elem":
        return f"arr[{e[1]}]"
    if kind == "arith":
        return f"({render(e[2], style)} {e[1]} {render(e[3], style)})"
    if kind == "neg":
        return f"(-{render(e[1], style)})"
    if kind == "cmp":
        return f"({render(e[2], style)} {e[1]} {render(e[3], style)})"
    if kind == "range":
        return f"({render(e[1], style)} {e[2]} {render(e[3], style)} {e[4]} {render(e[5], style)})"
    if kind == "in":
        keyword = ["not in", "NOT IN", "not  in"][style % 3] if e[3] else ["in", "IN", "In"][style % 3]
        items = ", ".join(render(("lit", v), style) for v in e[2])
        return f"({render(e[1], style)} {keyword} [{items}])"
    if kind == "like":
        return f"({render(e[1], style)} {['like', 'LIKE'][style % 2]} '{e[2]}')"
    if kind == "isnull":
        target = render(("field", e[1]), style)
        return f"({target} {['is', 'IS'][style % 2]} {'not ' if e[2] else ''}{['null', 'NULL'][style % 2]})".replace(
            "IS not", "IS NOT"
        )
    if kind == "contains":
        fn = {"one": "array_contains", "all": "array_contains_all", "any": "array_contains_any"}[e[1]]
        arg = str(e[2][0] if e[2] else 0) if e[1] == "one" else str(e[2])
        return f"{fn}(arr, {arg})"
    if kind == "exists":
        return f"({['exists', 'EXISTS'][style % 2]} {render(('field', 'k'), style)})"
    if kind == "jcontains":
        fn = {"one": "json_contains", "all": "JSON_CONTAINS_ALL", "any": "json_contains_any"}[e[1]]
        arg = str(e[2][0] if e[2] else 0) if e[1] == "one" else str(e[2])
        return f"{fn}({render(('field', 'k'), style)}, {arg})"
    if kind in ("and", "or"):
        word = {"and": ["and", "AND", "&&"], "or": ["or", "OR", "||"]}[kind][style % 3]
        return f"({render(e[1], style)} {word} {render(e[2], style)})"
    if kind == "not":
        return f"({['not', 'NOT', '!'][style % 3]} {render(e[1], style)})"
    raise AssertionError(kind)


# -- the row-by-row reference ----------------------------------------------------------------


class Overflow(Exception):
    pass


def static_type(e: Expr) -> str:
    kind = e[0]
    if kind == "lit":
        v = e[1]
        return "bool" if isinstance(v, bool) else "str" if isinstance(v, str) else "int" if isinstance(v, int) else "float"
    if kind == "field":
        return {"i": "int", "j": "int", "x": "float", "s": "str", "b": "bool", "k": "json"}[e[1]]
    if kind == "json":
        return "json"
    if kind in ("alen", "elem"):
        return "int"
    if kind == "arith":
        if e[1] in BITWISE:
            return "int"
        if e[1] == "**":
            return "int" if static_type(e[2]) == "int" and isinstance(e[3][1], int) else "float"
        return "int" if static_type(e[2]) == static_type(e[3]) == "int" else "float"
    if kind == "neg":
        return "int" if static_type(e[1]) == "int" else "float"
    return "bool"


def is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def raw(e: Expr, row: dict[str, Any]) -> Any:
    """The value of a value expression in one row; None for null / missing / unknown."""
    kind = e[0]
    if kind == "lit":
        return e[1]
    if kind == "field":
        return row["$meta"].get("k") if e[1] == "k" else row[e[1]]
    if kind == "json":
        return None if row["m"] is None else row["m"].get("v")
    if kind == "alen":
        return len(row["arr"])
    if kind == "elem":
        return row["arr"][e[1]] if e[1] < len(row["arr"]) else None
    if kind == "neg":
        v = number(e[1], row)
        return None if v is None else check(-v)
    if kind == "arith" and e[1] in BITWISE:
        a, b = integer(e[2], row), integer(e[3], row)
        if a is None or b is None:
            return None
        if e[1] in ("<<", ">>"):
            if not 0 <= b <= 63:
                return None
            return wrap(a << b) if e[1] == "<<" else a >> b
        return a & b if e[1] == "&" else a | b if e[1] == "|" else a ^ b
    if kind == "arith":
        a, b = number(e[2], row), number(e[3], row)
        if a is None or b is None:
            return None
        if e[1] == "**":
            return check(a**b) if static_type(e) == "int" else float(a) ** float(b)
        as_int = static_type(e) == "int"
        if not as_int:
            a, b = float(a), float(b)
        op = e[1]
        if op in ("/", "%"):
            if b == 0:
                return None
            if not as_int:
                return a / b if op == "/" else math.fmod(a, b)
            q = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)
            return check(q) if op == "/" else check(a - b * q)
        return check(a + b if op == "+" else a - b if op == "-" else a * b)
    raise AssertionError(kind)


def number(e: Expr, row: dict[str, Any]) -> int | float | None:
    v = raw(e, row)
    if static_type(e) == "json":
        return float(v) if is_num(v) else None
    return v


def integer(e: Expr, row: dict[str, Any]) -> int | None:
    v = raw(e, row)
    if static_type(e) == "json":
        return v if type(v) is int else None
    return v


def wrap(v: int) -> int:
    return (v + 2**63) % 2**64 - 2**63


def check(v: int | float) -> int | float:
    if isinstance(v, int) and not INT64[0] <= v <= INT64[1]:
        raise Overflow
    return v


def compare(op: str, a: Any, b: Any) -> bool | None:
    if a is None or b is None:
        return None
    if not (is_num(a) and is_num(b) or isinstance(a, str) and isinstance(b, str)):
        if isinstance(a, bool) and isinstance(b, bool) and op in ("==", "!="):
            return (a == b) == (op == "==")
        return None
    return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def same(a: Any, b: Any) -> bool:
    kinds_match = is_num(a) and is_num(b) or type(a) is type(b)
    return kinds_match and a == b


def like_regex(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern), re.DOTALL)


def truth(e: Expr, row: dict[str, Any]) -> bool | None:
    kind = e[0]
    if kind == "field":  # the bool field as a predicate
        return row["b"]
    if kind == "cmp":
        return compare(e[1], raw(e[2], row), raw(e[3], row))
    if kind == "range":
        return both(compare(e[2], raw(e[1], row), raw(e[3], row)), compare(e[4], raw(e[3], row), raw(e[5], row)))
    if kind == "in":
        v = raw(e[1], row)
        if v is None:
            return None
        found = any(same(v, x) for x in e[2])
        return found != e[3]
    if kind == "like":
        v = raw(e[1], row)
        if not isinstance(v, str):
            return None
        return like_regex(e[2]).fullmatch(v) is not None
    if kind == "isnull":
        return (raw(("field", e[1]), row) is None) != e[2]
    if kind == "contains":
        arr = row["arr"]
        if e[1] == "one":
            return (e[2][0] if e[2] else 0) in arr
        return all(v in arr for v in e[2]) if e[1] == "all" else any(v in arr for v in e[2])
    if kind == "exists":
        return "k" in row["$meta"]
    if kind == "jcontains":
        v = row["$meta"].get("k")
        if not isinstance(v, list):
            return None
        wanted = [e[2][0] if e[2] else 0] if e[1] == "one" else e[2]
        hits = [any(same(x, w) for x in v) for w in wanted]
        return all(hits) if e[1] == "all" else any(hits)
    if kind == "and":
        return both(truth(e[1], row), truth(e[2], row))
    if kind == "or":
        a, b = truth(e[1], row), truth(e[2], row)
        if a is True or b is True:
            return True
        return None if a is None or b is None else False
    if kind == "not":
        v = truth(e[1], row)
        return None if v is None else not v
    raise AssertionError(kind)


def both(a: bool | None, b: bool | None) -> bool | None:
    if a is False or b is False:
        return False
    return None if a is None or b is None else True


def uses_dynamic(e: Expr) -> bool:
    if e[:2] == ("field", "k") or e[:2] == ("isnull", "k") or e[0] in ("exists", "jcontains"):
        return True
    return any(isinstance(part, tuple) and uses_dynamic(part) for part in e)


def is_const(e: Expr) -> bool:
    if e[0] == "lit":
        return True
    if e[0] == "arith":
        return is_const(e[2]) and is_const(e[3])
    if e[0] == "neg":
        return is_const(e[1])
    return False


def constant_error(e: Expr) -> bool:
    """Does Shoal have to reject `e` while compiling (a constant zero divisor or shift count out of range)?"""
    if e[0] == "arith" and e[1] in ("/", "%", "<<", ">>") and is_const(e[3]):
        try:
            right = number(e[3], {})
        except Overflow:
            return False
        if e[1] in ("/", "%") and right == 0:
            return True
        if e[1] in ("<<", ">>") and is_const(e[2]) and not 0 <= right <= 63:
            return True
    return any(isinstance(part, tuple) and constant_error(part) for part in e)


COLUMNS = ("field", "json", "elem")


def const_predicate(e: Expr) -> bool:
    """A predicate the binder folds to a constant (a comparison of constants and what combines them)."""
    if e[0] == "cmp":
        return is_const(e[2]) and is_const(e[3])
    if e[0] == "not":
        return const_predicate(e[1])
    if e[0] in ("and", "or"):
        return const_predicate(e[1]) and const_predicate(e[2])
    return False


def one_column_arithmetic(e: Expr) -> bool:
    """`column op constant`, `constant + column` or `constant * column`: the only arithmetic Milvus
    compares with a constant."""
    left, right = e[2], e[3]
    if left[0] in COLUMNS and is_const(right):
        return True
    return is_const(left) and right[0] in COLUMNS and e[1] in ("+", "*")


def milvus_refuses(e: Expr, as_predicate: bool = True) -> bool:
    """Does Milvus's planner refuse `e` somewhere: a bare BOOL field as a predicate, a constant beside
    a predicate under and/or, arithmetic on two columns, bitwise operators and shifts, a power or a
    negation of a column, nested arithmetic compared with a constant, a comparison of two values that
    are not both plain non-JSON columns, or a fraction compared with an integer column?"""
    kind = e[0]
    if as_predicate and e == ("field", "b"):
        return True
    if kind in ("and", "or") and not const_predicate(e) and (const_predicate(e[1]) or const_predicate(e[2])):
        return True
    if kind == "arith" and (e[1] in BITWISE or not is_const(e[2]) and not is_const(e[3])):
        return True
    if kind == "arith" and e[1] == "**" and not is_const(e):
        return True
    if kind == "neg" and not is_const(e[1]):
        return True
    if kind == "cmp":
        left, right = e[2], e[3]
        if not is_const(left) and not is_const(right):
            if left[0] not in COLUMNS or right[0] not in COLUMNS or "json" in (static_type(left), static_type(right)):
                return True
        for side, value in ((left, right), (right, left)):
            if side[0] == "arith" and not is_const(side) and is_const(value) and not one_column_arithmetic(side):
                return True
        for column, value in ((left, right), (right, left)):
            integer_column = static_type(column) == "int" and column[0] != "alen" and not is_const(column)
            if integer_column and is_const(value) and static_type(value) == "float":
                return True
    logical = kind in ("and", "or", "not")
    return any(isinstance(part, tuple) and milvus_refuses(part, logical) for part in e[1:])


# -- the properties -------------------------------------------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    scenario=scenarios(),
    rnd=st.randoms(use_true_random=False),
    style=st.integers(0, 5),
    none_placeholders=st.booleans(),
)
def test_vectorised_filter_agrees_with_row_by_row_reference(
    scenario: tuple[CollectionSchema, list[dict[str, Any]]], rnd: random.Random, style: int, none_placeholders: bool
) -> None:
    schema, rows = scenario
    batch = to_batch(schema, rows, none_placeholders)
    for _ in range(8):
        check_one(schema, rows, batch, predicate(rnd, rnd.randrange(4), rows), style)


def check_one(
    schema: CollectionSchema, rows: list[dict[str, Any]], batch: dict[str, Column], expr: Expr, style: int
) -> None:
    text = render(expr, style)
    try:
        compiled = compile_filter(text, schema)
    except ShoalError as e:
        assert e.code == Code.PARAMETER_INVALID, e.message
        expected_error = (
            (uses_dynamic(expr) and not schema.enable_dynamic_field) or constant_error(expr) or milvus_refuses(expr)
        )
        assert expected_error, f"{text!r} was rejected: {e.message}"
        return
    assert schema.enable_dynamic_field or not uses_dynamic(expr), f"{text!r} compiled without a dynamic field"
    assert not milvus_refuses(expr), f"{text!r} compiled, but Milvus refuses it"
    try:
        expected = [truth(expr, row) is True for row in rows]
    except Overflow:
        return
    mask = compiled.evaluate(batch, len(rows))
    assert mask.dtype == np.bool_ and mask.shape == (len(rows),)
    assert mask.tolist() == expected, text


TOKENS = [
    "a", "i", "s", "b", "m", "k", "arr", "$meta", "id", "1", "0", "2.5", "0x1f", "'x'", '"y"', "r'z'", "[", "]", "(",
    ")", "{", "}", ",", "==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%", "**", "&", "|", "^", "~", "<<",
    ">>", "and", "or", "not", "!", "&&", "||", "in", "like", "is", "null", "exists", "true", "json_contains",
    "array_length", "array_contains_any", "text_match", '["v"]', "[0]", "{x}", "{l}", "{s}", "{nope}", "1.5e3",
    "0b101", "017", "08", "1e", "'\\x41'", "'\\u00e9'", '"\\q"', "r'a\\'b'", "u8'x'", "is not null", "IS NULL",
    "NOT IN", "$", "\\", "'", ".5", "-", "0x1p3", "9223372036854775808",
]
PARAMS = {"x": 1, "l": [1, "a", [2.5]], "s": "a", "f": 0.5, "b": True}


@settings(max_examples=300, deadline=None)
@given(scenario=scenarios(), tokens=st.lists(st.sampled_from(TOKENS), min_size=1, max_size=9), glue=st.sampled_from([" ", ""]))
def test_arbitrary_token_soup_never_crashes(
    scenario: tuple[CollectionSchema, list[dict[str, Any]]], tokens: list[str], glue: str
) -> None:
    schema, rows = scenario
    text = glue.join(tokens)
    try:
        mask = compile_filter(text, schema, PARAMS).evaluate(to_batch(schema, rows, True), len(rows))
    except ShoalError as e:
        assert e.code in (Code.PARAMETER_INVALID, Code.NOT_SUPPORTED), e.message
        return
    assert mask.dtype == np.bool_ and mask.shape == (len(rows),)
