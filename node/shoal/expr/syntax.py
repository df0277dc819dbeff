"""The untyped syntax tree the parser builds: what the user wrote, with positions.

Produced by `parser`, consumed by `binder` (which resolves names against a schema and
checks types). No schema knowledge here; every node keeps the character position of its
first token so later errors can point at it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Node:
    pos: int


@dataclass(frozen=True)
class Literal(Node):
    value: int | float | str | bool


@dataclass(frozen=True)
class ListLiteral(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Name(Node):
    """A field name, a dynamic-field key, or `$meta`, with optional subscripts."""

    name: str
    keys: tuple[str | int, ...] = ()
    bare_key: bool = False  # `structs[member]`: the one key was an unquoted name


@dataclass(frozen=True)
class Template(Node):
    name: str


@dataclass(frozen=True)
class Unary(Node):
    op: str  # "-", "+", "~", "not"
    operand: Node


@dataclass(frozen=True)
class Binary(Node):
    op: str  # arithmetic, bitwise, comparison, "and", "or", "like"
    left: Node
    right: Node
    text: str = ""  # its tokens run together, as Milvus's planner quotes a sub-expression


@dataclass(frozen=True)
class Range(Node):
    """`low op1 middle op2 high`, both operators pointing the same way."""

    low: Node
    op1: str
    middle: Node
    op2: str
    high: Node


@dataclass(frozen=True)
class In(Node):
    operand: Node
    values: Node
    negate: bool
    values_text: str = ""


@dataclass(frozen=True)
class Call(Node):
    name: str  # lower-cased
    args: tuple[Node, ...]


@dataclass(frozen=True)
class IsNull(Node):
    operand: Node
    negate: bool


@dataclass(frozen=True)
class Exists(Node):
    operand: Node


@dataclass(frozen=True)
class Keyword(Node):
    """`name=value` in a call's arguments (MATCH_LEAST(s, pred, threshold=2))."""

    name: str
    value: Node
