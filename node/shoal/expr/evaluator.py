"""Evaluate a typed filter tree over one columnar batch, vectorised with numpy.

Reads `shoal.schema.Batch` columns and `typed` nodes; `compiled` calls it, `binder`
uses it to fold constants with exactly the semantics used on data. Scalar numeric, bool
and VARCHAR columns never run Python code per row; JSON and ARRAY values are walked row
by row (`jsonvalues`).

Null semantics are three-valued, as in SQL: a predicate yields (value, valid) masks,
with `value` False wherever `valid` is False. Any comparison touching a null field, a
missing JSON key, a JSON value of another kind or a division by zero is unknown; `not`
keeps it unknown; `and`/`or` resolve it when the other side decides. The final mask is
the rows known to be true. Integer arithmetic is int64 with wrap-around; `/` and `%` on
integers truncate toward zero like C (and Milvus).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from shoal.expr import jsonvalues as jv
from shoal.expr import typed as t
from shoal.expr.like import LikePattern, compile_like
from shoal.geometry import evaluate as spatial
from shoal.schema import SCALAR_DTYPES, Batch, Column, object_array
from shoal.text.analyzer import analyzer_for

Valid = np.ndarray | None  # None: every row valid
Tri = tuple[np.ndarray, Valid]

_NUMPY_CMP = {
    "==": np.equal, "!=": np.not_equal, "<": np.less,
    "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
}


_FLIPPED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


class FieldIndex(Protocol):
    """A scalar index over one column (see `shoal.index.scalar`): row masks or None (scan instead)."""

    def compare(self, op: str, value: Any) -> np.ndarray | None: ...
    def isin(self, values: tuple[Any, ...]) -> np.ndarray | None: ...
    def like(self, pattern: LikePattern) -> np.ndarray | None: ...


class PathIndex(Protocol):
    """An index of one JSON path (`shoal.index.json_path`), keyed by its `JsonPath` node: three-valued
    answers (value, valid) exactly as the scan's, or None (scan instead)."""

    present: np.ndarray  # the path is there (JSON null included)
    nonnull: np.ndarray

    def compare(self, op: str, value: Any) -> Tri | None: ...
    def isin(self, values: tuple[Any, ...]) -> Tri | None: ...
    def like(self, pattern: LikePattern) -> Tri | None: ...
    def contains(self, mode: str, value: Any) -> Tri | None: ...


@dataclass
class Vec:
    """Values of a value node: an (n,) array or a Python scalar (constants), plus validity."""

    data: Any
    valid: Valid = None


def _and_valid(a: Valid, b: Valid) -> Valid:
    if a is None:
        return b
    if b is None:
        return a
    return a & b


def evaluate(
    root: t.Node, batch: Batch, n: int, indexes: Mapping[Any, Any] | None = None
) -> np.ndarray:
    """The rows of `batch` (first `n`) for which `root` is known to be true."""
    batch = _with_member_arrays(root, batch, n)
    value, valid = Evaluator(batch, n, indexes).predicate(root)
    mask = np.array(np.broadcast_to(np.asarray(value, dtype=bool), (n,)), dtype=bool)
    if valid is not None:
        mask &= valid
    return mask


def matching_elements(node: t.ElementMatch, rows: Any, total: int) -> np.ndarray:
    """Which of the rows' elements (flattened in row order) satisfy `node.predicate`."""
    if not total:
        return np.zeros(0, dtype=bool)
    elements: Batch = {}
    for name, dtype in node.members:
        member = name[2:-1]
        values = [e[member] for r in rows if r for e in r]
        elements[name] = Column(
            np.asarray(values, dtype=SCALAR_DTYPES[dtype]) if dtype in SCALAR_DTYPES else object_array(values)
        )
    return evaluate(node.predicate, elements, total)


def _with_member_arrays(root: t.Node, batch: Batch, n: int) -> Batch:
    """`structs[member]` read as an ARRAY: each row's member values, derived from the struct column."""
    wanted = {
        node.name for node in t.walk(root)
        if isinstance(node, t.Field) and node.name not in batch and node.name.endswith("]") and "[" in node.name
    }
    if not wanted:
        return batch
    out = dict(batch)
    for name in wanted:
        struct, member = name[:-1].split("[", 1)
        col = batch.get(struct)
        if col is None:
            continue
        rows = col.values[:n]
        out[name] = Column(object_array([[e[member] for e in r] if r else [] for r in rows]), col.valid)
    return out


class Evaluator:
    def __init__(self, batch: Batch, n: int, indexes: Mapping[Any, Any] | None = None) -> None:
        # field name -> FieldIndex (an ARRAY field's also answers `contains`); JsonPath -> PathIndex
        self.batch = batch
        self.n = n
        self.indexes = indexes or {}
        self._json_cache: dict[t.JsonPath, np.ndarray] = {}

    # -- predicates ------------------------------------------------------------------
    def predicate(self, node: t.Node) -> Tri:
        if isinstance(node, t.Compare):
            return self.compare(node)
        if isinstance(node, t.InList):
            return self.in_list(node)
        if isinstance(node, t.Like):
            return self.like(node)
        if isinstance(node, t.Not):
            value, valid = self.predicate(node.operand)
            return (~value if valid is None else ~value & valid), valid
        if isinstance(node, t.And | t.Or):
            result = self.predicate(node.items[0])
            for item in node.items[1:]:
                result = _and(result, self.predicate(item)) if isinstance(node, t.And) else _or(result, self.predicate(item))
            return result
        if isinstance(node, t.IsNull):
            nulls = self.null_mask(node.operand)
            return (~nulls if node.negate else nulls), None
        if isinstance(node, t.Exists):
            index = self._path_index(node.path)
            if index is not None:
                return index.present[: self.n], None
            rows = self.json_values(node.path)
            return np.fromiter((v is not jv.MISSING for v in rows), dtype=bool, count=self.n), None
        if isinstance(node, t.Contains):
            return self.contains(node)
        if isinstance(node, t.TextMatch):
            return self.text_match(node)
        if isinstance(node, t.ElementMatch):
            return self.element_match(node), None
        if isinstance(node, t.Spatial):
            index = self._index_of(node.operand)
            if index is not None and hasattr(index, "spatial"):
                answered = self._indexed(node.operand, index.spatial(node.name, node.wkt, node.distance))
                if answered is not None:
                    return answered
            return self._tri_from_rows(spatial(node.name, self._rows(self.value(node.operand)), node.wkt, node.distance))
        if isinstance(node, t.Const):
            return np.full(self.n, bool(node.value)), None
        # A boolean value used as a predicate: a BOOL field, `a & b` on bools, a JSON value.
        vec = self.value(node)
        if node.type is t.T.JSON:
            return self._tri_from_rows([v if isinstance(v, bool) else None for v in self._rows(vec)])
        data = np.broadcast_to(np.asarray(vec.data, dtype=bool), (self.n,))
        return (data if vec.valid is None else data & vec.valid), vec.valid

    def element_match(self, node: t.ElementMatch) -> np.ndarray:
        """Rows whose struct elements satisfy `node.predicate` as often as `node.mode` asks
        (a null row never matches; MATCH_ALL holds for an empty array, as "every element" does)."""
        col = self.batch.get(node.field)
        if col is None:
            return np.zeros(self.n, dtype=bool)
        rows = col.values[: self.n]
        counts = np.fromiter((len(r) if r else 0 for r in rows), dtype=np.int64, count=self.n)
        matched = matching_elements(node, rows, int(counts.sum()))
        hits = np.bincount(np.repeat(np.arange(self.n), counts), weights=matched, minlength=self.n).astype(np.int64)
        if node.mode == "any":
            out = hits > 0
        elif node.mode == "all":
            out = hits == counts
        elif node.mode == "least":
            out = hits >= node.k
        elif node.mode == "most":
            out = hits <= node.k
        else:
            out = hits == node.k
        if col.valid is not None:
            out &= col.valid[: self.n]
        return out & np.fromiter((r is not None for r in rows), dtype=bool, count=self.n)

    def _index_of(self, node: t.Node) -> FieldIndex | None:
        if isinstance(node, t.Field) and node.name in self.batch:
            return self.indexes.get(node.name)
        return None

    def _path_index(self, node: t.Node) -> PathIndex | None:
        if isinstance(node, t.JsonPath) and node.field in self.batch:
            return self.indexes.get(node)
        return None

    def _element_index(self, node: t.Node) -> tuple[FieldIndex, np.ndarray] | None:
        """The sorted index of an ARRAY field's elements at one position (`arr[i]`), if indexed."""
        if isinstance(node, t.ArrayElement) and node.field in self.batch:
            index = self.indexes.get(node.field)
            if index is not None and hasattr(index, "element"):
                return index.element(node.index)
        return None

    def _path_indexed(self, answer: Tri | None) -> Tri | None:
        if answer is None:
            return None
        value, valid = answer
        return value[: self.n], valid[: self.n]

    def _indexed(self, field: t.Node, mask: np.ndarray | None) -> Tri | None:
        """An index's answer with the column's validity, or None to scan."""
        if mask is None:
            return None
        assert isinstance(field, t.Field)
        col = self.batch[field.name]
        valid = None if col.valid is None else col.valid[: self.n]
        mask = mask[: self.n]
        return (mask if valid is None else mask & valid), valid

    def compare(self, node: t.Compare) -> Tri:
        for field, const, op in ((node.left, node.right, node.op), (node.right, node.left, _FLIPPED[node.op])):
            index = self._index_of(field)
            if index is not None and isinstance(const, t.Const):
                answered = self._indexed(field, index.compare(op, const.value))
                if answered is not None:
                    return answered
            element = self._element_index(field)
            if element is not None and isinstance(const, t.Const) and const.type in _SCALAR_TYPES:
                sorted_index, present = element
                answered = self._path_indexed(_known(sorted_index.compare(op, const.value), present))
                if answered is not None:
                    return answered
            path_index = self._path_index(field)
            if path_index is not None and isinstance(const, t.Const) and const.type in _SCALAR_TYPES:
                answered = self._path_indexed(path_index.compare(op, const.value))
                if answered is not None:
                    return answered
        lt, rt = node.left.type, node.right.type
        if lt is t.T.JSON and rt in _SCALAR_TYPES:
            left, right = self.json_as(node.left, rt), self.value(node.right)
        elif rt is t.T.JSON and lt in _SCALAR_TYPES:
            left, right = self.value(node.left), self.json_as(node.right, lt)
        else:
            left, right = self.value(node.left), self.value(node.right)
        if lt in _DYNAMIC_TYPES and rt in _DYNAMIC_TYPES or t.T.ARRAY in (lt, rt) or t.T.LIST in (lt, rt):
            rows = [jv.compare(node.op, a, b) for a, b in zip(self._rows(left), self._rows(right), strict=True)]
            return self._tri_from_rows(rows)
        valid = _and_valid(left.valid, right.valid)
        with np.errstate(all="ignore"):
            value = np.asarray(_NUMPY_CMP[node.op](left.data, right.data), dtype=bool)
        value = np.broadcast_to(value, (self.n,))
        return (value if valid is None else value & valid), valid

    def in_list(self, node: t.InList) -> Tri:
        index = self._index_of(node.operand)
        answered = self._indexed(node.operand, index.isin(node.values)) if index is not None else None
        path_index = self._path_index(node.operand)
        if path_index is not None:
            answered = self._path_indexed(path_index.isin(node.values))
        element = self._element_index(node.operand)
        if element is not None and node.values:
            answered = self._path_indexed(_known(element[0].isin(node.values), element[1]))
        if answered is not None:
            value, valid = answered
            if node.negate:
                value = ~value if valid is None else ~value & valid
            return value, valid
        operand_type, kind = node.operand.type, _common_kind(node.values)
        if operand_type is t.T.JSON and kind is not None:
            vec = self.json_as(node.operand, kind)
        else:
            vec = self.value(node.operand)
        if operand_type is t.T.ARRAY or operand_type is t.T.JSON and kind is None:
            wanted = {jv.norm(v) for v in node.values}
            rows = [None if v is None else jv.norm(v) in wanted for v in self._rows(vec)]
            value, valid = self._tri_from_rows(rows)
        else:
            data = np.broadcast_to(np.asarray(vec.data), (self.n,))
            if not node.values:
                value = np.zeros(self.n, dtype=bool)
            elif data.dtype == object:
                value = np.isin(data, np.array(node.values, dtype=object))
            else:
                value = np.isin(data, np.asarray(node.values))
            valid = vec.valid
            if valid is not None:
                value &= valid
            if operand_type is t.T.JSON:
                # A value of another kind is simply not in the list (known false); only a
                # missing key or JSON null is unknown.
                valid = self.value(node.operand).valid
        if node.negate:
            value = ~value if valid is None else ~value & valid
        return value, valid

    def like(self, node: t.Like) -> Tri:
        pattern = compile_like(node.pattern)
        index = self._index_of(node.operand)
        if index is not None:
            answered = self._indexed(node.operand, index.like(pattern))
            if answered is not None:
                return answered
        path_index = self._path_index(node.operand)
        if path_index is not None:
            answered = self._path_indexed(path_index.like(pattern))
            if answered is not None:
                return answered
        if node.operand.type is t.T.JSON:
            vec = self.json_as(node.operand, t.T.STRING)
        else:
            vec = self.value(node.operand)
        data = np.broadcast_to(np.asarray(vec.data, dtype=object), (self.n,))
        value = pattern.match_array(data)
        return (value if vec.valid is None else value & vec.valid), vec.valid

    def contains(self, node: t.Contains) -> Tri:
        index = self._path_index(node.operand) or self._index_of(node.operand)
        if index is not None and hasattr(index, "contains"):
            answered = self._path_indexed(index.contains(node.mode, node.value))
            if answered is not None:
                value, valid = answered
                if isinstance(node.operand, t.Field):  # an ARRAY column's own nulls
                    col = self.batch[node.operand.name]
                    if col.valid is not None:
                        valid = valid & col.valid[: self.n]
                return value & valid, valid
        vec = self.value(node.operand)
        return self._tri_from_rows([jv.contains(node.mode, row, node.value) for row in self._rows(vec)])

    def text_match(self, node: t.TextMatch) -> Tri:
        analyzer = analyzer_for(node.analyzer)
        wanted = analyzer.tokens(node.query)
        rows = self._rows(self.value(node.operand))
        if node.slop is None:
            terms = set(wanted)
            hits = [None if r is None else not terms.isdisjoint(analyzer.tokens(r)) for r in rows]
        else:
            slots: dict[int, list[str]] = {}
            for tok, pos in analyzer.positions(node.query):
                slots.setdefault(pos, []).append(tok)
            phrase = list(slots.values())
            hits = [None if r is None else phrase_in(phrase, analyzer.positions(r), node.slop) for r in rows]
        value, valid = self._tri_from_rows(hits)
        return value, valid

    def null_mask(self, node: t.Node) -> np.ndarray:
        path_index = self._path_index(node)
        if path_index is not None:
            return ~path_index.nonnull[: self.n]
        if isinstance(node, t.JsonPath):
            return np.fromiter((v is None or v is jv.MISSING for v in self.json_values(node)), dtype=bool, count=self.n)
        valid = self.value(node).valid
        return np.zeros(self.n, dtype=bool) if valid is None else ~valid

    # -- values ----------------------------------------------------------------------
    def value(self, node: t.Node) -> Vec:
        if isinstance(node, t.Const):
            return Vec(node.value)
        if isinstance(node, t.Field):
            return self.field(node)
        if isinstance(node, t.JsonPath):
            rows = self.json_values(node)
            valid = np.fromiter((v is not None and v is not jv.MISSING for v in rows), dtype=bool, count=self.n)
            return Vec(rows, valid)
        if isinstance(node, t.ArrayElement):
            return self.array_element(node)
        if isinstance(node, t.Arith):
            return self.arith(node)
        if isinstance(node, t.Negate):
            vec = self.numeric(node.operand, node.type)
            with np.errstate(all="ignore"):
                data = np.negative(vec.data) if node.op == "-" else np.invert(vec.data)
            return Vec(data, vec.valid)
        if isinstance(node, t.ArrayLength):
            rows = self._rows(self.value(node.operand))
            lengths = [len(r) if isinstance(r, list) else None for r in rows]
            valid = np.fromiter((x is not None for x in lengths), dtype=bool, count=self.n)
            data = np.fromiter((x or 0 for x in lengths), dtype=np.int64, count=self.n)
            return Vec(data, valid)
        # A predicate used as a value, e.g. `(a > 1) == true`.
        value, valid = self.predicate(node)
        return Vec(value, valid)

    def field(self, node: t.Field) -> Vec:
        col = self.batch.get(node.name)
        if col is None:  # e.g. a field added after this data was written: all null
            if node.type is t.T.STRING:
                placeholder = np.full(self.n, "", dtype=object)
            elif node.type in (t.T.ARRAY, t.T.JSON):
                placeholder = np.full(self.n, None, dtype=object)
            else:
                placeholder = np.zeros(self.n, dtype=SCALAR_DTYPES.get(node.dtype, np.dtype(np.int64)))
            return Vec(placeholder, np.zeros(self.n, dtype=bool))
        data, valid = col.values[: self.n], None if col.valid is None else col.valid[: self.n]
        if valid is not None and node.type is t.T.STRING:
            data = np.where(valid, data, "")  # placeholders may be None; keep comparisons total
        return Vec(data, valid)

    def json_values(self, node: t.JsonPath) -> np.ndarray:
        """The value at `node`'s path in every row; MISSING where absent or the row is null."""
        cached = self._json_cache.get(node)
        if cached is not None:
            return cached
        out = np.empty(self.n, dtype=object)
        col = self.batch.get(node.field)
        if col is None:
            out[:] = [jv.MISSING] * self.n
        else:
            values, keys, missing = col.values[: self.n], node.keys, jv.MISSING
            if len(keys) == 1 and isinstance(keys[0], str):
                key = keys[0]
                out[:] = [v.get(key, missing) if type(v) is dict else missing for v in values]
            else:
                lookup = jv.lookup
                out[:] = [lookup(v, keys) for v in values]
            if col.valid is not None:
                out[~col.valid[: self.n]] = missing
        self._json_cache[node] = out
        return out

    def json_as(self, node: t.Node, kind: t.T) -> Vec:
        """A JSON value node as a column of one scalar kind; other kinds are invalid rows."""
        rows = self._rows(self.value(node)) if not isinstance(node, t.JsonPath) else self.json_values(node)
        types = _KIND_PYTYPES[kind]
        picked = np.array([v if type(v) in types else None for v in rows], dtype=object)
        valid = np.not_equal(picked, None).astype(bool)
        picked[~valid] = _KIND_FILL[kind]
        return Vec(picked, valid)

    def array_element(self, node: t.ArrayElement) -> Vec:
        col = self.batch.get(node.field)
        rows: list[Any] = [None] * self.n
        if col is not None:
            for i in range(self.n):
                row = col.values[i]
                if (col.valid is None or col.valid[i]) and isinstance(row, list) and node.index < len(row):
                    rows[i] = row[node.index]
        valid = np.fromiter((r is not None for r in rows), dtype=bool, count=self.n)
        if node.type is t.T.STRING:
            return Vec(np.array([r if r is not None else "" for r in rows], dtype=object), valid)
        dtype = np.int64 if node.type is t.T.INT else np.float64 if node.type is t.T.FLOAT else np.bool_
        data = np.array([r if r is not None else 0 for r in rows], dtype=dtype)
        return Vec(data, valid)

    def numeric(self, node: t.Node, want: t.T) -> Vec:
        """Values of `node` as int64 / float64 (or bool for bitwise on bools)."""
        vec = self.value(node)
        if node.type is t.T.JSON:
            rows = self._rows(vec)
            if want is t.T.INT:
                ok = [type(v) is int and -(2**63) <= v < 2**63 for v in rows]
                data = np.array([v if k else 0 for v, k in zip(rows, ok, strict=True)], dtype=np.int64)
                return Vec(data, np.array(ok, dtype=bool))
            vec = self.json_as(node, t.T.FLOAT)
            return Vec(vec.data.astype(np.float64), vec.valid)
        if node.type is t.T.BOOL:
            return Vec(np.asarray(vec.data, dtype=bool), vec.valid)
        dtype = np.int64 if want is t.T.INT else np.float64
        return Vec(np.asarray(vec.data, dtype=dtype), vec.valid)

    def arith(self, node: t.Arith) -> Vec:
        op = node.op
        # Operands are computed in the result's type (int64, float64, or bool for `& | ^`).
        want = node.type
        left = self.numeric(node.left, want)
        right = self.numeric(node.right, want)
        valid = _and_valid(left.valid, right.valid)
        a, b = left.data, right.data
        with np.errstate(all="ignore"):
            if op in ("/", "%"):
                zero = np.asarray(b == 0)
                if zero.any():
                    no_zero = ~np.broadcast_to(zero, (self.n,))
                    valid = no_zero if valid is None else valid & no_zero
                    b = np.where(zero, 1, b).astype(b.dtype)
                if op == "%":
                    data = np.fmod(a, b)
                elif want is t.T.INT:
                    q = np.floor_divide(a, b)
                    data = q + ((np.remainder(a, b) != 0) & ((a < 0) != (b < 0)))
                else:
                    data = np.true_divide(a, b)
            elif op in ("<<", ">>"):
                bad = np.asarray((b < 0) | (b > 63))
                if bad.any():
                    in_range = ~np.broadcast_to(bad, (self.n,))
                    valid = in_range if valid is None else valid & in_range
                    b = np.where(bad, 0, b).astype(np.int64)
                data = np.left_shift(a, b) if op == "<<" else np.right_shift(a, b)
            elif op == "**":
                data = np.power(a, b)
            else:
                data = _ARITH[op](a, b)
        return Vec(data, valid)

    # -- helpers ---------------------------------------------------------------------
    def _rows(self, vec: Vec) -> list[Any]:
        """Per-row Python values, None where invalid."""
        data = vec.data
        if not isinstance(data, np.ndarray):
            return [data] * self.n
        if data.ndim == 0:
            return [data.item()] * self.n
        rows = data.tolist() if data.dtype != object else list(data)
        if vec.valid is not None:
            rows = [r if ok else None for r, ok in zip(rows, vec.valid.tolist(), strict=True)]
        return [None if r is jv.MISSING else r for r in rows]

    def _tri_from_rows(self, rows: list[bool | None]) -> Tri:
        value = np.fromiter((r is True for r in rows), dtype=bool, count=self.n)
        valid = np.fromiter((r is not None for r in rows), dtype=bool, count=self.n)
        return value, valid


_SCALAR_TYPES = (t.T.INT, t.T.FLOAT, t.T.STRING, t.T.BOOL)
_DYNAMIC_TYPES = (t.T.JSON, t.T.ARRAY, t.T.LIST)
# Python types of JSON values that count as each kind (bool is not a number here).
_KIND_PYTYPES: dict[t.T, frozenset[type]] = {
    t.T.INT: frozenset({int, float}),
    t.T.FLOAT: frozenset({int, float}),
    t.T.STRING: frozenset({str}),
    t.T.BOOL: frozenset({bool}),
}
_KIND_FILL: dict[t.T, Any] = {t.T.INT: 0, t.T.FLOAT: 0, t.T.STRING: "", t.T.BOOL: False}


def _common_kind(values: tuple[Any, ...]) -> t.T | None:
    """The one scalar kind of all `values` (numbers, strings or bools), if there is one."""
    if values and all(type(v) is str for v in values):
        return t.T.STRING
    if values and all(type(v) in (int, float) for v in values):
        return t.T.FLOAT
    if values and all(type(v) is bool for v in values):
        return t.T.BOOL
    return None


_ARITH = {
    "+": np.add, "-": np.subtract, "*": np.multiply,
    "&": np.bitwise_and, "|": np.bitwise_or, "^": np.bitwise_xor,
}


def _known(mask: np.ndarray | None, valid: np.ndarray) -> Tri | None:
    return None if mask is None else (mask & valid, valid)


def _and(a: Tri, b: Tri) -> Tri:
    (av, aok), (bv, bok) = a, b
    if aok is None and bok is None:
        return av & bv, None
    aok = np.ones_like(av) if aok is None else aok
    bok = np.ones_like(bv) if bok is None else bok
    value = av & bv
    known_false = (aok & ~av) | (bok & ~bv)
    return value, value | known_false


def _or(a: Tri, b: Tri) -> Tri:
    (av, aok), (bv, bok) = a, b
    if aok is None and bok is None:
        return av | bv, None
    aok = np.ones_like(av) if aok is None else aok
    bok = np.ones_like(bv) if bok is None else bok
    value = av | bv
    known_false = (aok & ~av) & (bok & ~bv)
    return value, value | known_false


def phrase_in(phrase: list[list[str]], tokens: list[tuple[str, int]], slop: int) -> bool:
    """The phrase's words (each a list of alternatives: a word and its synonyms) appear in order,
    with at most `slop` other positions between them in all. `tokens`: (token, position)."""
    if not phrase:
        return False
    positions: dict[str, list[int]] = {}
    for tok, pos in tokens:
        positions.setdefault(tok, []).append(pos)
    slots = [sorted({p for alt in slot for p in positions.get(alt, ())}) for slot in phrase]
    if not all(slots):
        return False
    for start in slots[0]:
        at = start
        for slot in slots[1:]:
            nxt = next((p for p in slot if p > at), None)
            if nxt is None:
                break
            at = nxt
        else:
            if at - start - (len(phrase) - 1) <= slop:
                return True
    return False
