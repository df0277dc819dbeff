"""`compile_filter`: the one entry point of `shoal.expr`, and the `CompiledFilter` it returns.

Chains `parser` (text -> syntax), `binder` (syntax + schema + params -> typed tree) and
`evaluator` (typed tree + batch -> bool mask). The engine compiles a filter once per
request and evaluates it per segment batch; it may also ask for the primary keys of a
pure `pk in [...]` / `pk == v` filter to do point lookups instead of a scan.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

import numpy as np

from shoal.errors import Code, ShoalError, invalid
from shoal.expr import syntax as s
from shoal.expr import typed as t
from shoal.expr.binder import bind
from shoal.expr.evaluator import evaluate
from shoal.expr.lexer import syntax_error
from shoal.expr.parser import parse
from shoal.schema import Batch, CollectionSchema


class CompiledFilter:
    """A filter bound to one schema: evaluate it on batches of that collection."""

    def __init__(self, text: str, root: t.Node | None, sample: float | None = None) -> None:
        self.text = text
        self.root = root
        self.sample = sample  # random_sample(factor): the caller keeps that share of each segment's matches

    def __repr__(self) -> str:
        return f"CompiledFilter({self.text!r})"

    @cached_property
    def cache_key(self) -> str:
        """Equal for filters that match the same rows of any batch: the bound tree, constants included."""
        return repr(self.root)

    @property
    def always_true(self) -> bool:
        return self.root is None or (isinstance(self.root, t.Const) and bool(self.root.value))

    def evaluate(self, batch: Batch, n: int, indexes: Mapping[Any, Any] | None = None) -> np.ndarray:
        """A bool mask of the `n` rows of `batch` that match; `indexes` (scalar indexes by field) may answer predicates."""
        if self.root is None:
            return np.ones(n, dtype=bool)
        return evaluate(self.root, batch, n, indexes)

    def element_filter(self, struct: str) -> t.ElementMatch | None:
        """The `element_filter(struct, ...)` an element-level search of `struct` picks its
        elements by: one, ANDed with the rest of the filter at its top level (1100 otherwise)."""
        if self.root is None:
            return None
        top = [n for n in _conjuncts(self.root) if isinstance(n, t.ElementMatch) and n.per_element and n.field == struct]
        anywhere = [n for n in t.walk(self.root) if isinstance(n, t.ElementMatch) and n.per_element and n.field == struct]
        if len(top) > 1 or len(anywhere) > len(top):
            raise invalid(f"an element-level search of {struct} takes one element_filter({struct}, ...), "
                          f"combined with the rest of the filter by AND at its top level")
        return top[0] if top else None

    @property
    def referenced_fields(self) -> set[str]:
        """Schema fields (and `$meta`) whose columns the filter reads."""
        if self.root is None:
            return set()
        names: set[str] = set()
        for node in t.walk(self.root):
            if isinstance(node, t.Field | t.ArrayElement | t.JsonPath | t.ElementMatch):
                names.add(node.name if isinstance(node, t.Field) else node.field)
        return names

    def primary_key_values(self, pk_name: str) -> list[Any] | None:
        """The keys when the whole filter is `pk in [...]` / `pk == v`, possibly OR-ed; else None."""
        if self.root is None:
            return None
        keys = _pk_keys(self.root, pk_name)
        if keys is None:
            return None
        seen: set[Any] = set()
        unique = []
        for k in keys:
            if k not in seen:
                seen.add(k)
                unique.append(k)
        return unique


def _conjuncts(node: t.Node) -> list[t.Node]:
    if isinstance(node, t.And):
        return [c for item in node.items for c in _conjuncts(item)]
    return [node]


def _pk_keys(node: t.Node, pk: str) -> list[Any] | None:
    def is_pk(n: t.Node) -> bool:
        return isinstance(n, t.Field) and n.name == pk

    if isinstance(node, t.InList) and not node.negate and is_pk(node.operand):
        return _as_key_type(node.operand, node.values)
    if isinstance(node, t.Compare) and node.op == "==":
        if is_pk(node.left) and isinstance(node.right, t.Const):
            return _as_key_type(node.left, [node.right.value])
        if is_pk(node.right) and isinstance(node.left, t.Const):
            return _as_key_type(node.right, [node.left.value])
    if isinstance(node, t.Or):
        out: list[Any] = []
        for item in node.items:
            keys = _pk_keys(item, pk)
            if keys is None:
                return None
            out.extend(keys)
        return out
    return None


def _as_key_type(field: t.Node, values: Any) -> list[Any]:
    """Keys as the primary key's type: `id in [2.0, 2.5]` looks up 2 only (2.5 matches nothing)."""
    if field.type is not t.T.INT:
        return list(values)
    return [int(v) for v in values if isinstance(v, int) or isinstance(v, float) and v.is_integer()]


def compile_filter(text: str, schema: CollectionSchema, params: Mapping[str, Any] | None = None) -> CompiledFilter:
    """Parse, bind and type-check `text` (a Milvus boolean expression) for `schema`.

    Raises ShoalError 1100 for malformed or ill-typed filters (the message names the
    character position), and code 10 for Milvus functions Shoal does not implement.
    """
    try:
        syntax_tree = parse(text or "")
        if syntax_tree is None:
            return CompiledFilter(text, None)
        syntax_tree, sample = _split_sample(syntax_tree)
        if syntax_tree is None:
            return CompiledFilter(text, None, sample)
        return CompiledFilter(text, bind(text, syntax_tree, schema, params), sample)
    except RecursionError:
        raise _plan_error(syntax_error(text, 0, "the expression is nested too deeply")) from None
    except ShoalError as e:
        raise _plan_error(e) from None


SAMPLE_RANGE_ERROR = "the sample factor should be between 0 and 1 and not too close to 0 or 1"


def _split_sample(node: s.Node) -> tuple[s.Node | None, float | None]:
    """Take a `random_sample(f)` off the top-level AND chain: (the rest, f).

    Anywhere else (under OR, NOT, twice) the binder refuses it."""
    if isinstance(node, s.Call) and node.name == "random_sample":
        return None, _sample_factor(node)
    if isinstance(node, s.Binary) and node.op == "and":
        left, ls = _split_sample(node.left)
        right, rs = _split_sample(node.right)
        if ls is not None and rs is not None:
            raise invalid("random_sample can be used only once in a filter")
        if left is None or right is None:
            return left if right is None else right, ls if ls is not None else rs
        return (node if ls is None and rs is None else s.Binary(node.pos, "and", left, right)), (
            ls if ls is not None else rs
        )
    return node, None


def _sample_factor(node: s.Call) -> float:
    arg = node.args[0] if len(node.args) == 1 else None
    sign = 1.0
    while isinstance(arg, s.Unary) and arg.op in ("-", "+"):
        sign, arg = (-sign if arg.op == "-" else sign), arg.operand
    if not isinstance(arg, s.Literal) or isinstance(arg.value, bool | str):
        raise invalid("random_sample takes one number: random_sample(factor), 0 < factor < 1")
    factor = sign * float(arg.value)
    if not 0.0 < factor < 1.0 or factor < 1e-4 or factor > 1 - 1e-4:
        raise invalid(SAMPLE_RANGE_ERROR)
    return factor


def sample_mask(mask: np.ndarray, factor: float, rng: np.random.Generator | None = None) -> np.ndarray:
    """Keep max(1, floor(matches * factor)) of the True rows of `mask`, drawn at random."""
    rows = np.flatnonzero(mask)
    if not len(rows):
        return mask
    keep = max(1, int(len(rows) * factor))
    chosen = (rng or np.random.default_rng()).choice(rows, keep, replace=False)
    out = np.zeros(len(mask), dtype=bool)
    out[chosen] = True
    return out


PLAN_PREFIX = "failed to create query plan: "


def _plan_error(err: ShoalError) -> ShoalError:
    """Milvus words every filter it cannot plan as "failed to create query plan: ..."."""
    if err.code != Code.PARAMETER_INVALID or err.message.startswith(PLAN_PREFIX):
        return err
    return ShoalError(err.code, PLAN_PREFIX + err.message)
