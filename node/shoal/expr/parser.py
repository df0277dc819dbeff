"""Parse filter text into the untyped syntax tree of `syntax`.

A Pratt parser over `lexer` tokens. Binding strength follows Milvus's Plan.g4, tightest
first: `like`; `**`; unary `- + ~`; `* / %`; `+ -`; `<< >>`; `[not] in`; `< <= > >=`
(with two-operator chains such as `1 < a <= 5`); `== !=`; `&`; `^`; `|`; `and &&`;
`or ||`. One deliberate difference: `not` / `!` binds looser than comparisons (as in
SQL), so `not a in [1, 2]` means `not (a in [1, 2])` instead of a type error.
Keywords are case-insensitive (`AND`, `Or`, `IN`, `Like`). Schemas are `binder`'s job.
"""

from __future__ import annotations

import re

from shoal.errors import Code, ShoalError
from shoal.expr import syntax as s
from shoal.expr.lexer import Kind, Token, syntax_error, tokenize
from shoal.timestamptz import parse_iso

KEYWORDS = frozenset({"and", "or", "not", "in", "like", "exists", "is", "null", "true", "false"})

_OR, _AND, _NOT_OPERAND = 1, 2, 3
_INFIX_BP: dict[str, int] = {
    "|": 4, "^": 5, "&": 6,
    "==": 7, "!=": 7,
    "<": 8, "<=": 8, ">": 8, ">=": 8,
    "in": 9,
    "<<": 10, ">>": 10,
    "+": 11, "-": 11,
    "*": 12, "/": 12, "%": 12,
    "**": 14,
    "like": 15,
}
_UNARY_OPERAND = 14  # operand of unary - + ~ : only `**` and `like` bind tighter
_RELATIONAL = ("<", "<=", ">", ">=")
# operators whose refusals quote the sub-expression's text (Milvus: the rule context's GetText)
_QUOTED = ("&", "|", "^", "<<", ">>", "**")


def parse(source: str) -> s.Node | None:
    """The syntax tree of `source`, or None when it is empty (match everything)."""
    tokens = tokenize(source)
    if tokens[0].kind is Kind.EOF:
        return None
    return _Parser(source, tokens).parse_all()


def parse_identifier(source: str) -> s.Name:
    """`source` read as one identifier (a field, a dynamic key, a JSON path), as Milvus's
    ParseIdentifier reads an index's `json_path`: anything else is code 65535 in its words."""
    tokens = tokenize(source)
    if tokens[0].kind is Kind.EOF:
        raise ShoalError(Code.UNEXPECTED, f"cannot parse identifier: {source}")
    try:
        node = _Parser(source, tokens).parse_all()
    except ShoalError as e:
        at = re.search(r"found (.+) at position (\d+)$", e.message)
        detail = f", error: line 1:{at.group(2)} mismatched input {at.group(1)}" if at else ""
        raise ShoalError(Code.UNEXPECTED, f"cannot parse identifier: {source}{detail}") from None
    if not isinstance(node, s.Name):
        raise ShoalError(Code.UNEXPECTED, f"cannot parse identifier: {source}")
    return node


class _Parser:
    def __init__(self, source: str, tokens: list[Token]) -> None:
        self.src = source
        self.toks = tokens
        self.i = 0

    # -- token helpers -------------------------------------------------------------
    def peek(self, ahead: int = 0) -> Token:
        at = self.i + ahead
        return self.toks[at] if at < len(self.toks) else self.toks[-1]

    def next(self) -> Token:
        tok = self.peek()
        self.i += 1
        return tok

    def error(self, tok: Token, what: str) -> ShoalError:
        return syntax_error(self.src, tok.pos, what)

    def expect_op(self, op: str, context: str) -> Token:
        tok = self.next()
        if not tok.is_op(op):
            raise self.error(tok, f"expected '{op}' {context}, found {_describe(tok)}")
        return tok

    # -- grammar -------------------------------------------------------------------
    def parse_all(self) -> s.Node:
        node = self.expr(0)
        tok = self.peek()
        if tok.kind is not Kind.EOF:
            # Milvus: a whole expression followed by more tokens is "invalid expression: <filter>"
            shown = self.src if len(self.src) <= 300 else self.src[:300] + "..."
            raise self.error(tok, f"invalid expression: {shown}, unexpected {_describe(tok)}")
        return node

    def infix_op(self) -> tuple[str, int] | None:
        """The infix operator at the cursor and its binding power, if any."""
        tok = self.peek()
        if tok.kind is Kind.OP:
            if tok.text in ("||",):
                return "or", _OR
            if tok.text in ("&&",):
                return "and", _AND
            bp = _INFIX_BP.get(tok.text)
            return (tok.text, bp) if bp is not None else None
        if tok.kind is Kind.NAME:
            word = tok.text.lower()
            if word == "or":
                return "or", _OR
            if word == "and":
                return "and", _AND
            if word in ("in", "like"):
                return word, _INFIX_BP[word]
            if word == "not" and self.peek(1).is_word("in"):
                return "not in", _INFIX_BP["in"]
        return None

    def expr(self, min_bp: int) -> s.Node:
        start = self.i
        left = self.prefix()
        while True:
            found = self.infix_op()
            if found is None:
                return left
            op, bp = found
            if bp < min_bp:
                return left
            tok = self.next()
            if op == "not in":
                self.next()
            if op in ("in", "not in"):
                first = self.i
                values = self.expr(bp + 1)
                # Milvus names the right-hand side by its tokens run together (ANTLR's GetText)
                text = "".join(tok.text for tok in self.toks[first:self.i])
                left = s.In(left.pos, left, values, negate=op == "not in", values_text=text)
            elif op in _RELATIONAL:
                left = self.relational(left, op, tok)
            else:
                right = self.expr(bp + 1)
                text = "".join(tok.text for tok in self.toks[start:self.i]) if op in _QUOTED else ""
                left = s.Binary(left.pos, op, left, right, text)

    def relational(self, left: s.Node, op: str, tok: Token) -> s.Node:
        middle = self.expr(_INFIX_BP[op] + 1)
        nxt = self.peek()
        if not (nxt.kind is Kind.OP and nxt.text in _RELATIONAL):
            return s.Binary(left.pos, op, left, middle)
        self.next()
        op2 = nxt.text
        if (op[0] == "<") != (op2[0] == "<"):
            raise self.error(nxt, f"a range must use '<'/'<=' or '>'/'>=' on both sides, found '{op}' and '{op2}'")
        high = self.expr(_INFIX_BP[op] + 1)
        after = self.peek()
        if after.kind is Kind.OP and after.text in _RELATIONAL:
            raise self.error(after, "a comparison chain allows at most two operators")
        return s.Range(left.pos, left, op, middle, op2, high)

    def prefix(self) -> s.Node:
        tok = self.peek()
        if tok.is_op("-", "+", "~"):
            self.next()
            return s.Unary(tok.pos, tok.text, self.expr(_UNARY_OPERAND))
        if tok.is_op("!") or tok.is_word("not"):
            self.next()
            return s.Unary(tok.pos, "not", self.expr(_NOT_OPERAND))
        if tok.is_word("exists"):
            self.next()
            return s.Exists(tok.pos, self.postfix(self.primary()))
        return self.postfix(self.primary())

    def postfix(self, node: s.Node) -> s.Node:
        tok = self.peek()
        if not tok.is_word("is"):
            return node
        self.next()
        negate = False
        if self.peek().is_word("not"):
            self.next()
            negate = True
        end = self.next()
        if not end.is_word("null"):
            raise self.error(end, f"expected 'null' after 'is{' not' if negate else ''}', found {_describe(end)}")
        return s.IsNull(node.pos, node, negate)

    def primary(self) -> s.Node:
        tok = self.next()
        if tok.kind in (Kind.INT, Kind.FLOAT, Kind.STRING):
            assert tok.value is not None
            return s.Literal(tok.pos, tok.value)
        if tok.is_op("("):
            inner = self.expr(0)
            self.expect_op(")", "to close '('")
            return inner
        if tok.is_op("["):
            return self.list_literal(tok)
        if tok.is_op("{"):
            name = self.next()
            if name.kind is not Kind.NAME:
                raise self.error(name, f"expected a template name after '{{', found {_describe(name)}")
            self.expect_op("}", "to close the template")
            return s.Template(tok.pos, name.text)
        if tok.kind is Kind.NAME:
            return self.name(tok)
        raise self.error(tok, f"expected an operand, found {_describe(tok)}")

    def name(self, tok: Token) -> s.Node:
        word = tok.text.lower()
        if word in ("true", "false"):
            return s.Literal(tok.pos, word == "true")
        if word == "iso" and self.peek().kind is Kind.STRING:
            # ISO '2025-01-01T00:00:00+08:00': a TIMESTAMPTZ constant, in microseconds (UTC when no offset)
            text = self.next()
            try:
                return s.Literal(tok.pos, parse_iso(text.value))
            except ShoalError as e:
                raise self.error(text, e.message) from None
        if self.peek().is_op("("):
            self.next()
            return s.Call(tok.pos, word, self.arguments())
        if word in KEYWORDS:
            raise self.error(tok, f"expected an operand, found keyword '{tok.text}'")
        keys: list[str | int] = []
        bare = False
        while self.peek().is_op("["):
            self.next()
            key = self.next()
            if key.kind is Kind.NAME and not keys and self.peek().is_op("]") and not key.text.startswith("$"):
                keys.append(key.text)  # `structs[member]`; the binder accepts it for arrays of structs only
                bare = True
            elif key.kind is Kind.STRING:
                assert isinstance(key.value, str)
                keys.append(key.value)
            elif key.kind is Kind.INT and isinstance(key.value, int) and not key.text.startswith(("0x", "0X", "0b", "0B")):
                keys.append(key.value)
            else:
                raise self.error(key, f"expected a string key or array index in '[]', found {_describe(key)}")
            self.expect_op("]", "to close the subscript")
            if bare and not self.peek().is_op("]") and self.peek().is_op("["):
                raise self.error(self.peek(), "a struct member path takes no further subscript")
        return s.Name(tok.pos, tok.text, tuple(keys), bare)

    def arguments(self) -> tuple[s.Node, ...]:
        args: list[s.Node] = []
        while not self.peek().is_op(")"):
            if self.peek().kind is Kind.KEYWORD:
                tok = self.next()
                args.append(s.Keyword(tok.pos, tok.text, self.expr(0)))
            else:
                args.append(self.expr(0))
            if not self.peek().is_op(","):
                break
            self.next()
        self.expect_op(")", "to close the argument list")
        return tuple(args)

    def list_literal(self, open_tok: Token) -> s.Node:
        items: list[s.Node] = []
        literal_kinds = (Kind.INT, Kind.FLOAT, Kind.STRING)
        while not self.peek().is_op("]"):
            tok, after = self.peek(), self.peek(1)
            if tok.value is not None and tok.kind in literal_kinds and after.kind is Kind.OP and after.text in (",", "]"):
                # Fast path for long literal lists such as `pk in [1, 2, ...]`.
                self.i += 1
                items.append(s.Literal(tok.pos, tok.value))
            else:
                items.append(self.expr(0))
            if not self.peek().is_op(","):
                break
            self.next()
        self.expect_op("]", "to close the list")
        return s.ListLiteral(open_tok.pos, tuple(items))


def _describe(tok: Token) -> str:
    if tok.kind is Kind.EOF:
        return "end of expression"
    if tok.kind is Kind.KEYWORD:  # `a = 1`: '=' is no comparison (that is '==')
        return f"'{tok.text}=' (use '==' to compare)"
    return f"'{tok.text}'"
