"""The typed filter tree: names resolved against a schema, types checked, constants folded.

Built by `binder`, walked by `evaluator`, inspected by `compiled` (primary-key lookups,
referenced fields). Value nodes produce a column of values; predicate nodes produce a
three-valued (true / false / unknown) mask. Nothing here reads data.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from shoal.schema import DataType


class T(Enum):
    """Static type of a node's values."""

    BOOL = "bool"
    INT = "integer"
    FLOAT = "float"
    STRING = "string"
    JSON = "json"  # dynamically typed: a JSON field, a JSON path or a dynamic-field key
    ARRAY = "array"  # an ARRAY field (a list per row)
    LIST = "list"  # a constant list

    @property
    def numeric(self) -> bool:
        return self in (T.INT, T.FLOAT)


def type_of_datatype(dtype: DataType) -> T:
    if dtype is DataType.BOOL:
        return T.BOOL
    if dtype.is_integer or dtype is DataType.TIMESTAMPTZ:
        return T.INT
    if dtype.is_float:
        return T.FLOAT
    if dtype.is_string or dtype is DataType.GEOMETRY:
        return T.STRING
    if dtype is DataType.JSON:
        return T.JSON
    if dtype is DataType.ARRAY:
        return T.ARRAY
    raise ValueError(f"no filter type for {dtype.name}")


@dataclass(frozen=True)
class Node:
    type: T


# -- value nodes ---------------------------------------------------------------------


@dataclass(frozen=True)
class Const(Node):
    value: Any  # bool, int, float, str, or a (nested) list of those


@dataclass(frozen=True)
class Field(Node):
    """A whole scalar, ARRAY or JSON column."""

    name: str
    dtype: DataType
    element_type: DataType | None = None


@dataclass(frozen=True)
class JsonPath(Node):
    """A value inside a JSON column (`$meta` for dynamic fields); keys may be empty."""

    field: str
    keys: tuple[str | int, ...]


@dataclass(frozen=True)
class ArrayElement(Node):
    field: str
    index: int
    element_type: DataType


@dataclass(frozen=True)
class Arith(Node):
    op: str  # + - * / % ** & | ^ << >>
    left: Node
    right: Node


@dataclass(frozen=True)
class Negate(Node):
    op: str  # "-" or "~"
    operand: Node


@dataclass(frozen=True)
class ArrayLength(Node):
    operand: Node  # an ARRAY Field or a JsonPath


# -- predicate nodes (type BOOL) -------------------------------------------------------


@dataclass(frozen=True)
class Compare(Node):
    op: str  # == != < <= > >=
    left: Node
    right: Node


@dataclass(frozen=True)
class InList(Node):
    operand: Node
    values: tuple[Any, ...]
    negate: bool


@dataclass(frozen=True)
class Like(Node):
    operand: Node
    pattern: str


@dataclass(frozen=True)
class Not(Node):
    operand: Node


@dataclass(frozen=True)
class And(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True)
class IsNull(Node):
    operand: Node  # Field, JsonPath or ArrayElement
    negate: bool


@dataclass(frozen=True)
class Exists(Node):
    path: JsonPath


@dataclass(frozen=True)
class Contains(Node):
    mode: str  # "one", "all", "any"
    operand: Node  # an ARRAY Field or a JsonPath
    value: Any


@dataclass(frozen=True)
class TextMatch(Node):
    """text_match (any of the query's tokens) or, with `slop` set, phrase_match."""

    operand: Node  # a VARCHAR Field with enable_match
    analyzer: str  # the field's analyzer_params (JSON text)
    query: str
    slop: int | None = None


@dataclass(frozen=True)
class ElementMatch(Node):
    """element_filter / MATCH_* over an array of structs: `predicate` is bound to the struct's
    scalar members (named `$[member]`) and evaluated per element; `mode` says how many of a
    row's elements must match (any, all, least/most/exact `k`). `per_element`: written as
    element_filter, which an element-level search also uses to pick the elements it scores."""

    field: str
    members: tuple[tuple[str, DataType], ...]
    predicate: Node
    mode: str
    k: int = 0
    per_element: bool = False


@dataclass(frozen=True)
class Spatial(Node):
    """An ST_* predicate of a GEOMETRY field against a constant WKT geometry."""

    name: str  # lower-cased, e.g. st_within
    operand: Node
    wkt: str
    distance: float | None = None


def walk(node: Node) -> list[Node]:
    """Every node of the tree, parents before children."""
    out = [node]
    for child in children(node):
        out.extend(walk(child))
    return out


def children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, Arith | Compare):
        return (node.left, node.right)
    if isinstance(node, Negate | ArrayLength | InList | Like | Not | IsNull | Contains | TextMatch | Spatial):
        return (node.operand,)
    if isinstance(node, And | Or):
        return node.items
    if isinstance(node, Exists):
        return (node.path,)
    return ()
