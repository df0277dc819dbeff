"""Turn a `syntax` tree into a `typed` tree for one collection schema.

Resolves names (schema fields, `$meta`, and bare names that fall back to dynamic-field
keys), substitutes `{template}` values from `filter_params`, checks types, desugars
ranges, and folds constant sub-expressions through `evaluator` so constants and data
share one arithmetic. Every problem is a ShoalError 1100 naming the field and the
character position; unsupported Milvus functions are code 10 (`not_supported`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from shoal.errors import ShoalError, invalid, not_supported
from shoal.expr import jsonvalues as jv
from shoal.expr import syntax as s
from shoal.expr import typed as t
from shoal.expr.evaluator import Evaluator
from shoal.expr.lexer import INT64_MAX, INT64_MIN, syntax_error
from shoal.geometry import DISTANCE_PREDICATES, PREDICATES, parse_wkt
from shoal.schema import DYNAMIC_FIELD, CollectionSchema, DataType, FieldSchema

_COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")
# nodes whose value is data or a constant, not a computed predicate (Milvus: nodeDependent)
_VALUES = (t.Const, t.Field, t.JsonPath, t.ArrayElement, t.Arith, t.Negate, t.ArrayLength)
_COLUMNS = (t.Field, t.JsonPath, t.ArrayElement)
_ARITHMETIC = ("+", "-", "*", "/", "%", "**")
_BITWISE = {"&": "BitAnd", "|": "BitOr", "^": "BitXor"}  # Milvus's planner names them so
_SHIFTS = ("<<", ">>")
_CONTAINS = {
    "json_contains": "one", "array_contains": "one",
    "json_contains_all": "all", "array_contains_all": "all",
    "json_contains_any": "any", "array_contains_any": "any",
}
SPATIAL_CALLS = (*PREDICATES, *DISTANCE_PREDICATES)
# element_filter and the MATCH family over an array of structs: name -> (mode, takes a count)
_ELEMENT_CALLS = {
    "element_filter": ("any", False), "match_any": ("any", False), "match_all": ("all", False),
    "match_least": ("least", True), "match_most": ("most", True), "match_exact": ("exact", True),
}


def bind(source: str, node: s.Node, schema: CollectionSchema, params: Mapping[str, Any] | None) -> t.Node:
    root = _Binder(source, schema, params or {}).bind(node)
    # Milvus's planner runs only a computed predicate or a boolean constant (`true`, `false`, or
    # one it folded: `1 == 1`, `not false`): a non-boolean root (`1.2` too) or a bare column (a BOOL
    # field, a JSON path, a dynamic key) is refused. (Milvus 2.6 refused a literal `true` too;
    # the master its suite targets answers every row for it, and none for `false`.)
    constant = isinstance(root, t.Const) and root.type is t.T.BOOL
    if not (is_predicate(root) or constant):
        shown = source if len(source) <= 300 else source[:300] + "..."
        raise invalid(f"predicate is not a boolean expression: {shown}, data type: {milvus_type_name(root)}")
    return root


def is_predicate(node: t.Node) -> bool:
    """A boolean the planner computes per row (Milvus's canBeExecuted): not a constant, a bare
    column or an arithmetic value."""
    return node.type is t.T.BOOL and not isinstance(node, _VALUES)


def bind_json_path(source: str, schema: CollectionSchema) -> t.JsonPath | None:
    """`source` read as a JSON path (`meta['a'][0]`, a dynamic key, `$meta['k']`); None when
    it names something else (a plain field, an expression) or nothing."""
    from shoal.expr.parser import parse  # the parser is the binder's caller everywhere else

    try:
        node = parse(source)
        if not isinstance(node, s.Name):
            return None
        bound = _Binder(source, schema, {}).name(node)
    except ShoalError:
        return None
    return bound if isinstance(bound, t.JsonPath) else None


_MILVUS_TYPE_NAMES = {
    DataType.BOOL: "Bool", DataType.INT8: "Int8", DataType.INT16: "Int16", DataType.INT32: "Int32",
    DataType.INT64: "Int64", DataType.FLOAT: "Float", DataType.DOUBLE: "Double", DataType.STRING: "String",
    DataType.VARCHAR: "VarChar", DataType.ARRAY: "Array", DataType.JSON: "JSON", DataType.GEOMETRY: "Geometry",
    DataType.TIMESTAMPTZ: "Timestamptz",
}
_T_MILVUS_NAMES = {
    t.T.BOOL: "Bool", t.T.INT: "Int64", t.T.FLOAT: "Double", t.T.STRING: "VarChar",
    t.T.JSON: "JSON", t.T.ARRAY: "Array", t.T.LIST: "Array",
}


def milvus_type_name(node: t.Node) -> str:
    """The schemapb.DataType name Milvus's planner gives a node's values."""
    if isinstance(node, t.Field):
        return _MILVUS_TYPE_NAMES.get(node.dtype, node.dtype.name)
    if isinstance(node, t.ArrayElement):  # a column of the ARRAY field, subscripted
        return "Array"
    return _T_MILVUS_NAMES[node.type]


def _compared_type_name(node: t.Node) -> str:
    """A comparison operand's type as Milvus's "comparisons between A and B" names it."""
    if isinstance(node, t.Field) and node.dtype is DataType.ARRAY or isinstance(node, t.ArrayElement):
        element = node.element_type or DataType.NONE  # an element is still a column of the ARRAY field
        return f"Array[{_MILVUS_TYPE_NAMES.get(element, element.name)}]"
    return milvus_type_name(node)


def _cast_type_name(node: t.Node) -> str | None:
    """The integer type a constant compared with `node` is cast to (Milvus's castValue), or None
    when `node` is no integer column or computed integer."""
    if isinstance(node, t.Field) and node.dtype.is_integer:
        return _MILVUS_TYPE_NAMES[node.dtype]
    if isinstance(node, t.ArrayElement) and node.element_type.is_integer:
        return _MILVUS_TYPE_NAMES[node.element_type]
    if isinstance(node, t.Arith | t.Negate) and node.type is t.T.INT:
        return "Int64"
    return None


def describe(node: t.Node) -> str:
    """How a node is named in error messages."""
    if isinstance(node, t.Field):
        return f"field '{node.name}' of type {node.dtype.name}"
    if isinstance(node, t.JsonPath):
        return f"'{_path_text(node)}'"
    if isinstance(node, t.ArrayElement):
        return f"'{node.field}[{node.index}]' of type {node.element_type.name}"
    if isinstance(node, t.Const):
        shown = repr(node.value)
        return f"{node.type.value} {shown if len(shown) <= 60 else shown[:60] + '...'}"
    return f"{node.type.value} expression"


def _path_text(node: t.JsonPath) -> str:
    return node.field + "".join(f"[{k!r}]" if isinstance(k, int) else f'["{k}"]' for k in node.keys)


class _Binder:
    def __init__(self, source: str, schema: CollectionSchema, params: Mapping[str, Any]) -> None:
        self.src = source
        self.schema = schema
        self.params = params

    def error(self, node: s.Node, what: str) -> ShoalError:
        return syntax_error(self.src, node.pos, what)

    # -- dispatch ----------------------------------------------------------------------
    def bind(self, node: s.Node) -> t.Node:
        if isinstance(node, s.Literal):
            return self.literal(node)
        if isinstance(node, s.ListLiteral):
            items = [self.literal(item) if isinstance(item, s.Literal) else self.bind(item) for item in node.items]
            for item, src in zip(items, node.items, strict=True):
                if not isinstance(item, t.Const):
                    raise self.error(src, f"list elements must be constants, got {describe(item)}")
            return t.Const(t.T.LIST, [item.value for item in items if isinstance(item, t.Const)])
        if isinstance(node, s.Template):
            return self.template(node)
        if isinstance(node, s.Name):
            return self.name(node)
        if isinstance(node, s.Unary):
            return self.unary(node)
        if isinstance(node, s.Binary):
            if node.op in ("and", "or"):
                return self.logical_chain(node)
            return self.binary(node)
        if isinstance(node, s.Range):
            return self.range(node)
        if isinstance(node, s.In):
            return self.in_list(node)
        if isinstance(node, s.Call):
            return self.call(node)
        if isinstance(node, s.IsNull):
            self.refuse_vector_null_check(node)
            operand = self.bind(node.operand)
            if isinstance(operand, t.ArrayElement):
                raise self.error(node, "IsNull/IsNotNull operations are not supported on array element access, "
                                       f"got: {operand.field}[{operand.index}]")
            if not isinstance(operand, t.Field | t.JsonPath):
                raise self.error(node, f"'is null' needs a field or JSON path, got {describe(operand)}")
            return t.IsNull(t.T.BOOL, operand, node.negate)
        if isinstance(node, s.Exists):
            operand = self.bind(node.operand)
            if not isinstance(operand, t.JsonPath) or not operand.keys:
                raise self.error(node, f"'exists' needs a JSON path such as meta[\"key\"], got {describe(operand)}")
            return t.Exists(t.T.BOOL, operand)
        if isinstance(node, s.Keyword):
            raise self.error(node, f"a keyword argument ({node.name}=) is only taken by MATCH_LEAST/MOST/EXACT")
        raise self.error(node, f"unsupported syntax {type(node).__name__}")

    def refuse_vector_null_check(self, node: s.IsNull) -> None:
        operand = node.operand
        if isinstance(operand, s.Name) and not operand.keys:
            f = self.schema.field(operand.name)
            if f is not None and f.dtype.is_vector:
                raise self.error(node, "IsNull/IsNotNull operations are not supported on vector fields")

    # -- leaves --------------------------------------------------------------------------
    def literal(self, node: s.Literal) -> t.Node:
        v = node.value
        if isinstance(v, bool):
            return t.Const(t.T.BOOL, v)
        if isinstance(v, int):
            if v > INT64_MAX:
                raise self.error(node, f"integer {v} is out of the int64 range")
            return t.Const(t.T.INT, v)
        if isinstance(v, float):
            return t.Const(t.T.FLOAT, v)
        return t.Const(t.T.STRING, v)

    def template(self, node: s.Template) -> t.Node:
        if node.name not in self.params:
            raise self.error(node, f"template variable {{{node.name}}} has no value in filter_params")
        try:
            value = _plain(self.params[node.name])
        except ValueError as e:
            raise self.error(node, f"template variable {{{node.name}}}: {e}") from None
        return _const(value)

    def name(self, node: s.Name) -> t.Node:
        name, keys = node.name, node.keys
        if name == DYNAMIC_FIELD:
            if not self.schema.enable_dynamic_field:
                raise self.error(node, "the dynamic field ($meta) is not enabled for this collection")
            return t.JsonPath(t.T.JSON, DYNAMIC_FIELD, keys)
        f = self.schema.field(name)
        if node.bare_key and (f is None or f.dtype is not DataType.ARRAY_OF_STRUCT):
            at = s.Name(node.pos + len(name) + 1, name)  # the unquoted key, just after `name[`
            raise self.error(at, f"expected a string key or array index in '[]', found '{keys[0]}'")
        if f is not None and f.dtype is DataType.ARRAY_OF_STRUCT:
            member = f.sub_field(str(keys[0])) if node.bare_key else None
            if member is None or member.dtype.is_vector:
                raise self.error(node, f"the array of structs field '{name}' is filtered by a scalar member, as "
                                       f"{name}[member], or with element_filter/MATCH_* and $[member]")
            # the member's values of every element: an ARRAY column the evaluator derives
            return t.Field(t.T.ARRAY, f"{name}[{member.name}]", DataType.ARRAY, member.dtype)
        if f is None:
            if self.schema.enable_dynamic_field:
                return t.JsonPath(t.T.JSON, DYNAMIC_FIELD, (name, *keys))
            raise self.error(node, f"field {name} not exist (the collection has no dynamic field)")
        if f.is_dynamic:
            return t.JsonPath(t.T.JSON, DYNAMIC_FIELD, keys)
        if f.dtype.is_vector:
            raise self.error(node, f"cannot filter on vector field '{name}' of type {f.dtype.name}")
        if f.dtype is DataType.JSON:
            return t.JsonPath(t.T.JSON, f.name, keys)
        if f.dtype is DataType.ARRAY:
            element = f.element_type or DataType.NONE
            if not keys:
                return t.Field(t.T.ARRAY, f.name, f.dtype, element)
            if len(keys) != 1 or not isinstance(keys[0], int):
                raise self.error(node, f"array field '{name}' takes one integer index, like {name}[0]")
            try:
                elem_type = t.type_of_datatype(element)
            except ValueError:
                raise self.error(node, f"array field '{name}' has no usable element type") from None
            return t.ArrayElement(elem_type, f.name, keys[0], element)
        if keys:
            raise self.error(node, f"field '{name}' of type {f.dtype.name} cannot be subscripted")
        try:
            return t.Field(t.type_of_datatype(f.dtype), f.name, f.dtype)
        except ValueError:
            raise self.error(node, f"cannot filter on field '{name}' of type {f.dtype.name}") from None

    # -- operators -----------------------------------------------------------------------
    def unary(self, node: s.Unary) -> t.Node:
        if node.op == "-" and isinstance(node.operand, s.Literal) and node.operand.value == INT64_MAX + 1:
            return t.Const(t.T.INT, INT64_MIN)
        operand = self.bind(node.operand)
        if node.op == "not":
            if isinstance(operand, t.Const):
                self.need_bool_constant(operand, node.operand, "not")
                return t.Const(t.T.BOOL, not operand.value)
            if not is_predicate(operand):
                raise self.error(node.operand, "not op can only be applied on boolean expression")
            if isinstance(operand, t.Not):
                return operand.operand
            return t.Not(t.T.BOOL, operand)
        if node.op == "+":
            self.need_number(operand, node.operand, "unary '+'")
            return operand
        # Milvus's planner negates constants only and has no `~` at all
        if node.op == "~" or not isinstance(operand, t.Const):
            raise self.error(node, f"unexpected op: {node.op}")
        self.need_number(operand, node.operand, "unary '-'")
        result_type = t.T.INT if operand.type is t.T.INT else t.T.FLOAT
        return self.fold(t.Negate(result_type, node.op, operand), node)

    def logical_chain(self, node: s.Binary) -> t.Node:
        """`a or b or c ...` bound without recursing down the chain (filters may OR thousands)."""
        op = node.op
        operands: list[s.Node] = []
        stack: list[s.Node] = [node]
        while stack:
            current = stack.pop()
            if isinstance(current, s.Binary) and current.op == op:
                stack.append(current.right)
                stack.append(current.left)
            else:
                operands.append(current)
        parts = [self.bind(src) for src in operands]
        if all(isinstance(part, t.Const) for part in parts):
            for part, src in zip(parts, operands, strict=True):
                self.need_bool_constant(part, src, op)
            return _logical(op, parts)
        # Milvus folds constants only between constants: beside a predicate, a constant, a bare
        # column (a BOOL field, a JSON path) or an arithmetic value is refused
        for part, src in zip(parts, operands, strict=True):
            if not is_predicate(part):
                raise self.error(src, f"'{op}' can only be used between boolean expressions")
        return _logical(op, parts)

    def binary(self, node: s.Binary) -> t.Node:
        op = node.op
        left, right = self.bind(node.left), self.bind(node.right)
        if op in _COMPARISONS:
            return self.comparison(op, left, right, node)
        if op == "like":
            if not isinstance(left, (*_COLUMNS, t.Const)):
                raise self.error(node.left, "like operation on complicated expr is unsupported")
            if left.type not in (t.T.STRING, t.T.JSON):
                raise self.error(node.left, "like operation on non-string or no-json field is unsupported")
            if not (isinstance(right, t.Const) and right.type is t.T.STRING):
                raise self.error(node.right, f"the pattern of 'like' must be a string, got {describe(right)}")
            if isinstance(left, t.Const):
                return self.fold(t.Like(t.T.BOOL, left, right.value), node)
            return t.Like(t.T.BOOL, left, right.value)
        return self.arithmetic(op, left, right, node)

    def arithmetic(self, op: str, left: t.Node, right: t.Node, node: s.Binary) -> t.Node:
        # Milvus's planner refuses bitwise operators and shifts even between constants, and
        # computes a power of constants only
        if op in _BITWISE:
            raise self.error(node, f"{_BITWISE[op]} is not supported: {node.text}")
        if op in _SHIFTS:
            raise self.error(node, f"shift is not supported: {node.text}")
        if op == "**" and not (isinstance(left, t.Const) and isinstance(right, t.Const)):
            raise self.error(node, f"power can only apply on constants: {node.text}")
        if not isinstance(left, t.Const) and not isinstance(right, t.Const):
            # Milvus computes on one column and constants only (`a + b > 3` is refused)
            raise self.error(node, "not supported to do arithmetic operations between multiple fields")
        self.need_number(left, node.left, f"'{op}'")
        self.need_number(right, node.right, f"'{op}'")
        if op in ("/", "%") and isinstance(right, t.Const) and right.value == 0:
            raise self.error(node.right, "division by zero")
        both_int = left.type is t.T.INT and right.type is t.T.INT
        if op == "**":
            both_int = both_int and isinstance(right, t.Const) and right.value >= 0
        return self.fold(t.Arith(t.T.INT if both_int else t.T.FLOAT, op, left, right), node)

    def comparison(self, op: str, left: t.Node, right: t.Node, node: s.Node) -> t.Node:
        lt, rt = left.type, right.type
        ok = (
            t.T.JSON in (lt, rt)
            or lt.numeric and rt.numeric
            or lt is rt is t.T.STRING
            or (lt is rt is t.T.BOOL and op in ("==", "!="))
            or ({lt, rt} <= {t.T.ARRAY, t.T.LIST} and op in ("==", "!="))
        )
        if not ok:
            if {lt, rt} & {t.T.ARRAY, t.T.LIST} or lt is rt is t.T.BOOL:
                raise self.error(node, f"cannot compare {describe(left)} with {describe(right)} using '{op}'")
            raise self.error(
                node, f"comparisons between {_compared_type_name(left)} and {_compared_type_name(right)} are not supported"
            )
        if not isinstance(left, t.Const) and not isinstance(right, t.Const):
            # two columns: compared as they are, never through arithmetic or a JSON value
            if not isinstance(left, _COLUMNS) or not isinstance(right, _COLUMNS):
                raise self.error(node, "only comparison between two fields is supported")
            if t.T.JSON in (lt, rt):
                raise self.error(node, "two column comparison with JSON type is not supported")
        for column, value in ((left, right), (right, left)):
            cast_to = _cast_type_name(column)
            if cast_to and isinstance(value, t.Const) and value.type is t.T.FLOAT:
                # Milvus casts the constant to the integer column's type and refuses a fraction
                raise self.error(node, f"cannot cast value to {cast_to}, value: {_proto_text(value.value)}")
        for side, value in ((left, right), (right, left)):
            if isinstance(side, t.Arith) and isinstance(value, t.Const):
                self.need_one_column_arithmetic(side, node)
        if isinstance(left, t.Const) and isinstance(right, t.Const):
            result = jv.compare(op, left.value, right.value)
            if result is None:
                raise self.error(node, f"cannot compare {describe(left)} with {describe(right)} using '{op}'")
            return t.Const(t.T.BOOL, result)
        return t.Compare(t.T.BOOL, op, left, right)

    def range(self, node: s.Range) -> t.Node:
        low, middle, high = self.bind(node.low), self.bind(node.middle), self.bind(node.high)
        first = self.comparison(node.op1, low, middle, node)
        second = self.comparison(node.op2, middle, high, node)
        return _logical("and", [first, second])

    def in_list(self, node: s.In) -> t.Node:
        operand = self.bind(node.operand)
        values = self.bind(node.values)
        if not isinstance(values, t.Const):
            raise self.error(node.values, f"value '{node.values_text}' in list cannot be a non-const expression")
        if values.type is not t.T.LIST:
            raise self.error(node.values, f"the right-hand side of 'in' must be a list, but got: {node.values_text}")
        items = tuple(values.value)
        if operand.type in (t.T.ARRAY, t.T.LIST):
            raise self.error(node, f"'in' cannot test {describe(operand)}; use array_contains_any")
        if isinstance(operand, t.Field) and operand.dtype.is_integer:
            # Milvus casts each value to the field's type and refuses a float (its message
            # shows the value in protobuf text form)
            flt = next((v for v in items if isinstance(v, float)), None)
            if flt is not None:
                raise self.error(
                    node, f"value '{_proto_text(flt)}' in list cannot be casted to {operand.dtype.milvus_name}"
                )
        check = _ELEMENT_CHECKS.get(operand.type)
        bad = next((v for v in items if check and not check(v)), None) if check else None
        if bad is not None:
            if isinstance(operand, t.Field):  # Milvus's cast of each value to the field's type
                raise self.error(
                    node, f"value '{_proto_text(bad)}' in list cannot be casted to {operand.dtype.milvus_name}"
                )
            raise self.error(node, f"cannot test {describe(operand)} against {bad!r} in the list")
        if isinstance(operand, t.Const):
            found = any(jv.compare("==", operand.value, v) for v in items)
            return t.Const(t.T.BOOL, found != node.negate)
        return t.InList(t.T.BOOL, operand, items, node.negate)

    def call(self, node: s.Call) -> t.Node:
        name = node.name
        if name in SPATIAL_CALLS:
            return self.spatial(node)
        if name == "random_sample":
            raise self.error(node, "random_sample can only be combined with the rest of the filter by AND at its top level")
        if name in _ELEMENT_CALLS:
            return self.element_match(node)
        if name.startswith("st_"):
            raise not_supported(f"the filter function {name}()")
        if name in _CONTAINS:
            return self.contains(_CONTAINS[name], node)
        if name in ("text_match", "phrase_match"):
            return self.text_match(node)
        if name == "array_length":
            if len(node.args) != 1:
                raise self.error(node, "array_length() takes exactly one argument")
            operand = self.bind(node.args[0])
            if not (operand.type is t.T.ARRAY and isinstance(operand, t.Field) or isinstance(operand, t.JsonPath)):
                raise self.error(node.args[0], f"array_length() needs an ARRAY field or JSON path, got {describe(operand)}")
            return t.ArrayLength(t.T.INT, operand)
        raise self.error(node, f"unknown function {name}()")

    def element_match(self, node: s.Call) -> t.Node:
        """`element_filter(structs, pred)`, `MATCH_ALL(structs, pred)`, `MATCH_LEAST(structs, pred, k)`...:
        `pred` names the struct's scalar members as `$[member]` and nothing else."""
        mode, counted = _ELEMENT_CALLS[node.name]
        shape = f"{node.name}(struct_array_field, predicate{', count' if counted else ''})"
        if len(node.args) != (3 if counted else 2):
            raise self.error(node, f"{node.name} takes {shape}")
        target = node.args[0]
        f = self.schema.field(target.name) if isinstance(target, s.Name) and not target.keys else None
        if f is None or f.dtype is not DataType.ARRAY_OF_STRUCT:
            raise self.error(target, f"the first argument of {node.name} must be an array of structs field")
        k = 0
        if counted:
            arg = node.args[2]
            if isinstance(arg, s.Keyword):
                if arg.name.lower() != "threshold":
                    raise self.error(arg, f"{node.name} takes threshold=count, not {arg.name}=")
                arg = arg.value
            if not isinstance(arg, s.Literal) or isinstance(arg.value, bool) or not isinstance(arg.value, int) or arg.value < 0:
                raise self.error(arg, f"the count of {node.name} must be a non-negative integer")
            k = arg.value
        members = tuple((f"$[{m.name}]", m.dtype) for m in f.struct_fields if not m.dtype.is_vector)
        element_schema = CollectionSchema(
            fields=[FieldSchema(name=n, dtype=dt) for n, dt in members], enable_dynamic_field=False
        )
        predicate = bind(self.src, node.args[1], element_schema, self.params)
        return t.ElementMatch(t.T.BOOL, f.name, members, predicate, mode, k, node.name == "element_filter")

    def spatial(self, node: s.Call) -> t.Node:
        distance = node.name in DISTANCE_PREDICATES
        if len(node.args) != (3 if distance else 2):
            raise self.error(node, f"{node.name}() takes {'three' if distance else 'two'} arguments")
        operand, wkt = self.bind(node.args[0]), self.bind(node.args[1])
        if not isinstance(operand, t.Field) or operand.dtype is not DataType.GEOMETRY:
            raise self.error(node.args[0], f"{node.name}() needs a GEOMETRY field, got {describe(operand)}")
        if not (isinstance(wkt, t.Const) and isinstance(wkt.value, str)):
            raise self.error(node.args[1], f"the second argument of {node.name}() must be WKT text, got {describe(wkt)}")
        parse_wkt(wkt.value, node.name)
        dist = None
        if distance:
            d = self.bind(node.args[2])
            if not (isinstance(d, t.Const) and d.type in (t.T.INT, t.T.FLOAT)) or d.value < 0:
                raise self.error(node.args[2], f"the distance of {node.name}() must be a non-negative number")
            dist = float(d.value)
        return t.Spatial(t.T.BOOL, node.name, operand, wkt.value, dist)

    def text_match(self, node: s.Call) -> t.Node:
        phrase = node.name == "phrase_match"
        if len(node.args) not in ((2, 3) if phrase else (2,)):
            raise self.error(node, f"{node.name}() takes {'two or three' if phrase else 'two'} arguments")
        operand, query = self.bind(node.args[0]), self.bind(node.args[1])
        if not isinstance(operand, t.Field) or operand.dtype not in (DataType.VARCHAR, DataType.TEXT):
            raise self.error(node.args[0], f"{node.name}() needs a VARCHAR or TEXT field, got {describe(operand)}")
        fld = self.schema.field(operand.name)
        if fld is None or str(fld.type_params.get("enable_match", "")).lower() != "true":
            raise invalid(f"field \"{operand.name}\" does not enable match")
        if not (isinstance(query, t.Const) and isinstance(query.value, str)):
            raise self.error(node.args[1], f"the second argument of {node.name}() must be a string, got {describe(query)}")
        slop: int | None = None
        if phrase:
            slop = 0
            if len(node.args) == 3:
                raw = self.bind(node.args[2])
                if not (isinstance(raw, t.Const) and isinstance(raw.value, int) and not isinstance(raw.value, bool)) or raw.value < 0:
                    raise self.error(node.args[2], "the slop of phrase_match() must be a non-negative integer")
                slop = int(raw.value)
        params = fld.type_params.get("analyzer_params") or ""
        return t.TextMatch(t.T.BOOL, operand, str(params), query.value, slop)

    def contains(self, mode: str, node: s.Call) -> t.Node:
        if len(node.args) != 2:
            raise self.error(node, f"{node.name}() takes exactly two arguments")
        operand, value = self.bind(node.args[0]), self.bind(node.args[1])
        if not (isinstance(operand, t.JsonPath) or isinstance(operand, t.Field) and operand.type is t.T.ARRAY):
            raise self.error(node.args[0], f"{node.name}() needs an ARRAY field or JSON path, got {describe(operand)}")
        if not isinstance(value, t.Const):
            raise self.error(node.args[1], f"the second argument of {node.name}() must be a constant, got {describe(value)}")
        if mode != "one" and value.type is not t.T.LIST:
            raise self.error(node.args[1], f"the second argument of {node.name}() must be a list, got {describe(value)}")
        if isinstance(operand, t.Field) and operand.element_type is not None:
            check = _ELEMENT_CHECKS.get(_safe_type(operand.element_type))
            wanted = value.value if mode != "one" else [value.value]
            if check and not all(check(v) for v in wanted):
                raise self.error(
                    node.args[1],
                    f"{node.name}() on field '{operand.name}' (ARRAY of {operand.element_type.name}) "
                    f"cannot look for {describe(value)}",
                )
        return t.Contains(t.T.BOOL, mode, operand, value.value)

    # -- checks and folding --------------------------------------------------------------
    def need_one_column_arithmetic(self, arith: t.Arith, src: s.Node) -> None:
        """Milvus plans a comparison of `column op constant` (or `constant + column`, `constant *
        column`) with a constant, never nested arithmetic such as `(a + 1) * 2 > 3`."""
        if isinstance(arith.left, _COLUMNS) and isinstance(arith.right, t.Const):
            return
        if isinstance(arith.left, t.Const) and isinstance(arith.right, _COLUMNS):
            if arith.op not in ("+", "*"):
                raise self.error(src, "module field is not yet supported")
            return
        raise self.error(src, "complicated arithmetic operations are not supported")

    def need_bool_constant(self, operand: t.Const, src: s.Node, op: str) -> None:
        if operand.type is not t.T.BOOL:  # Milvus's constant folding words it so
            raise self.error(src, f"{op} can only apply on boolean, got {describe(operand)}")

    def need_number(self, operand: t.Node, src: s.Node, op: str) -> None:
        if not (operand.type.numeric or operand.type is t.T.JSON):
            raise self.error(src, f"arithmetic {op} needs numbers, got {describe(operand)}")

    def fold(self, node: t.Node, src: s.Node) -> t.Node:
        """Replace an operator over constants by its value, computed like on data."""
        if not all(isinstance(c, t.Const) for c in t.children(node)):
            return node
        if node.type is t.T.BOOL and not isinstance(node, t.Arith):
            value, _ = Evaluator({}, 1).predicate(node)
            return t.Const(t.T.BOOL, bool(np.asarray(value).reshape(-1)[0]))
        vec = Evaluator({}, 1).value(node)
        if vec.valid is not None and not np.asarray(vec.valid).reshape(-1)[0]:
            raise self.error(src, "division by zero or shift out of range in constant expression")
        result = np.asarray(vec.data).reshape(-1)[0].item()
        return t.Const(node.type, result)


def _safe_type(dtype: DataType) -> t.T | None:
    try:
        return t.type_of_datatype(dtype)
    except ValueError:
        return None


_ELEMENT_CHECKS = {
    t.T.INT: jv.is_number,
    t.T.FLOAT: jv.is_number,
    t.T.STRING: lambda v: isinstance(v, str),
    t.T.BOOL: lambda v: isinstance(v, bool),
}


def _proto_text(value: object) -> str:
    """A list value as Milvus's messages show it: its GenericValue in protobuf text form."""
    if isinstance(value, bool):
        return f"bool_val:{str(value).lower()}"
    if isinstance(value, int):
        return f"int64_val:{value}"
    if isinstance(value, float):
        return f"float_val:{repr(value).removesuffix('.0')}"
    if isinstance(value, str):
        return f'string_val:"{value}"'
    return repr(value)


def _logical(op: str, sides: list[t.Node]) -> t.Node:
    """`and` / `or` with constant sides folded and nested same-op nodes flattened."""
    decisive = op == "or"  # `true or x` is true; `false and x` is false
    parts: list[t.Node] = []
    for side in sides:
        if isinstance(side, t.Const):
            if bool(side.value) == decisive:
                return t.Const(t.T.BOOL, decisive)
            continue
        if op == "and" and isinstance(side, t.And) or op == "or" and isinstance(side, t.Or):
            parts.extend(side.items)
        else:
            parts.append(side)
    if not parts:
        return t.Const(t.T.BOOL, not decisive)
    if len(parts) == 1:
        return parts[0]
    return t.And(t.T.BOOL, tuple(parts)) if op == "and" else t.Or(t.T.BOOL, tuple(parts))


def _plain(value: Any) -> Any:
    """A filter_params value as plain Python (bool, int, float, str, nested lists)."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        v = int(value)
        if not INT64_MIN <= v <= INT64_MAX:
            raise ValueError(f"integer {v} is out of the int64 range")
        return v
    if isinstance(value, float | np.floating):
        return float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in value]
    raise ValueError(f"unsupported value of type {type(value).__name__}")


def _const(value: Any) -> t.Const:
    if isinstance(value, bool):
        return t.Const(t.T.BOOL, value)
    if isinstance(value, int):
        return t.Const(t.T.INT, value)
    if isinstance(value, float):
        return t.Const(t.T.FLOAT, value)
    if isinstance(value, str):
        return t.Const(t.T.STRING, value)
    return t.Const(t.T.LIST, value)
