"""Per-value semantics for dynamically typed data: JSON paths, ARRAY rows, constant lists.

Used by `evaluator` (row by row, for JSON and ARRAY columns) and `binder` (to fold
constants). A comparison between values of different kinds (a number and a string, a
bool and a number) is neither true nor false but unknown (`None`), so such rows never
match, and neither does their negation. Membership (`in`, `json_contains`) is different:
a value of another kind is simply not in the list. Booleans are never numbers here,
unlike Python.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any


class _Missing:
    """A JSON key or array index that is not there."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

ORDER_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
EQUALITY_OPS: dict[str, Callable[[Any, Any], bool]] = {"==": operator.eq, "!=": operator.ne}


def is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def lookup(value: Any, keys: tuple[str | int, ...]) -> Any:
    """`value[k0][k1]...`, following dict keys and list indexes; MISSING when absent."""
    for key in keys:
        if isinstance(value, dict):
            if isinstance(key, int):
                key = str(key)
            if key not in value:
                return MISSING
            value = value[key]
        elif isinstance(value, list) and isinstance(key, int):
            if key >= len(value):
                return MISSING
            value = value[key]
        else:
            return MISSING
    return value


def norm(v: Any) -> Any:
    """A hashable key equal for equal JSON values (1 == 1.0, but True != 1)."""
    if isinstance(v, bool):
        return ("b", v)
    if isinstance(v, int | float):
        return ("n", v)
    if isinstance(v, str):
        return ("s", v)
    if isinstance(v, list | tuple):
        return ("l", tuple(norm(x) for x in v))
    if isinstance(v, dict):
        return ("d", tuple(sorted((str(k), norm(x)) for k, x in v.items())))
    return ("z", repr(v))


def compare(op: str, a: Any, b: Any) -> bool | None:
    """`a op b` for two JSON-like values; None (unknown) for missing, null or mismatched."""
    if a is None or b is None or a is MISSING or b is MISSING:
        return None
    if is_number(a) and is_number(b) or isinstance(a, str) and isinstance(b, str):
        if op in EQUALITY_OPS:
            return EQUALITY_OPS[op](a, b)
        return ORDER_OPS[op](a, b)
    if op not in EQUALITY_OPS:
        return None
    same_kind = (
        isinstance(a, bool) and isinstance(b, bool)
        or isinstance(a, list | tuple) and isinstance(b, list | tuple)
        or isinstance(a, dict) and isinstance(b, dict)
    )
    if not same_kind:
        return None
    equal = norm(a) == norm(b)
    return equal if op == "==" else not equal


def contains(mode: str, row: Any, value: Any) -> bool | None:
    """`json_contains` / `_all` / `_any` of one row; None when the row is not a list."""
    if not isinstance(row, list):
        return None
    present = {norm(x) for x in row}
    if mode == "one":
        return norm(value) in present
    wanted = [norm(x) for x in value]
    if mode == "all":
        return all(w in present for w in wanted)
    return any(w in present for w in wanted)
