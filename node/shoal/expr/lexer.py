"""Tokens of the Milvus filter language: text in, a list of positioned tokens out.

The first stage of `shoal.expr`; `parser` consumes what this produces. Knows the lexical
rules of Milvus's Plan.g4 (integer bases, C-style string escapes, raw strings, `$meta`)
but nothing about precedence or schemas. Every error carries the character position.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import NamedTuple

from shoal.errors import ShoalError, invalid

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


class Kind(Enum):
    INT = "integer"
    FLOAT = "float"
    STRING = "string"
    NAME = "name"
    OP = "operator"
    KEYWORD = "keyword argument"  # `threshold=` inside MATCH_LEAST/MOST/EXACT(...)
    EOF = "end of expression"


class Token(NamedTuple):
    kind: Kind
    text: str  # source text as written
    pos: int
    value: int | float | str | None = None

    def is_op(self, *ops: str) -> bool:
        return self.kind is Kind.OP and self.text in ops

    def is_word(self, *words: str) -> bool:
        """A name token spelling one of `words` in any letter case (keywords)."""
        return self.kind is Kind.NAME and self.text.lower() in words


def syntax_error(source: str, pos: int, what: str) -> ShoalError:
    """Code 1100 in Milvus's message shape; long filters (big pk lists) are cut short."""
    shown = source if len(source) <= 300 else source[:300] + "..."
    return invalid(f"cannot parse expression: {shown}, error: {what} at position {pos}")


# One pass per token: whitespace, numbers, names, `$meta`, `$[member]` (a struct member inside
# element_filter/MATCH_*), operators (longest first, so
# `<=` wins over `<` and `**` over `*`), or the opening quote of a string.
_TOKEN_RE = re.compile(
    r"""
    (?P<ws>[ \t\r\n]+)
  | (?P<num>(?:[0-9]|\.[0-9])(?:[0-9A-Za-z_.]|(?<=[eEpP])[+-])*)
  | (?P<keyword>[A-Za-z_][A-Za-z0-9_]*[ \t]*=(?!=))
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<meta>\$meta(?![A-Za-z0-9_]))
  | (?P<member>\$\[[A-Za-z_][A-Za-z0-9_]*\])
  | (?P<op>\*\*|<<|>>|<=|>=|==|!=|&&|\|\||[-+*/%<>&|^~!()\[\]{},])
  | (?P<quote>["'])
    """,
    re.VERBOSE,
)
_SIMPLE_ESCAPES = {
    "'": "'", '"': '"', "?": "?", "\\": "\\",
    "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
}
_STRING_PREFIXES = ("u8", "u", "U", "L")


def tokenize(source: str) -> list[Token]:
    return _Lexer(source).run()


class _Lexer:
    def __init__(self, source: str) -> None:
        self.src = source
        self.i = 0
        self.out: list[Token] = []

    def error(self, pos: int, what: str) -> ShoalError:
        return syntax_error(self.src, pos, what)

    def run(self) -> list[Token]:
        src, match = self.src, _TOKEN_RE.match
        while self.i < len(src):
            m = match(src, self.i)
            if m is None:
                raise self.error(self.i, f"unexpected character {src[self.i]!r}")
            group = m.lastgroup
            if group == "ws":
                self.i = m.end()
            elif group == "num":
                self.number(m.group())
            elif group == "name":
                self.word(m.group())
            elif group == "quote":
                self.string(self.i, self.i, raw=False)
            elif group == "keyword":
                self.out.append(Token(Kind.KEYWORD, m.group().rstrip("= \t"), self.i))
                self.i = m.end()
            else:
                kind = Kind.NAME if group in ("meta", "member") else Kind.OP
                self.out.append(Token(kind, m.group(), self.i))
                self.i = m.end()
        self.out.append(Token(Kind.EOF, "", len(src)))
        return self.out

    def word(self, text: str) -> None:
        start = self.i
        self.i += len(text)
        quote = self.src[self.i : self.i + 1]
        if quote in ("'", '"'):
            if text in ("r", "R"):
                self.string(start, self.i, raw=True)
                return
            if text in _STRING_PREFIXES:
                self.string(start, self.i, raw=False)
                return
        self.out.append(Token(Kind.NAME, text, start))

    def number(self, text: str) -> None:
        start = self.i
        if text[:2] in ("0x", "0X") and "p" not in text.lower():
            # A sign after a hex digit `e` is an operator: 0x1e+5 is 0x1e + 5.
            text = re.split(r"[+-]", text, maxsplit=1)[0]
        self.i = start + len(text)
        value = _parse_number(text)
        if value is None:
            raise self.error(start, f"malformed number {text!r}")
        if isinstance(value, int):
            if value > INT64_MAX + 1:  # +1: `-9223372036854775808` is legal once negated
                raise self.error(start, f"integer {text} is out of the int64 range")
            self.out.append(Token(Kind.INT, text, start, value))
        else:
            self.out.append(Token(Kind.FLOAT, text, start, value))

    def string(self, start: int, quote_at: int, raw: bool) -> None:
        src = self.src
        quote = src[quote_at]
        i = quote_at + 1
        chars: list[str] = []
        while True:
            if i >= len(src) or src[i] in "\r\n":
                raise self.error(start, "unterminated string literal")
            c = src[i]
            if c == quote:
                i += 1
                break
            if c != "\\":
                chars.append(c)
                i += 1
                continue
            if i + 1 >= len(src):
                raise self.error(start, "unterminated string literal")
            if raw:
                chars.append(src[i : i + 2])
                i += 2
                continue
            decoded, i = self.escape(i)
            chars.append(decoded)
        value = "".join(chars)
        self.i = i
        self.out.append(Token(Kind.STRING, src[start:i], start, value))

    def escape(self, i: int) -> tuple[str, int]:
        """Decode the escape sequence starting at the backslash at `i`."""
        src = self.src
        nxt = src[i + 1]
        if nxt in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[nxt], i + 2
        if nxt in "01234567":
            j = i + 1
            while j < len(src) and j < i + 4 and src[j] in "01234567":
                j += 1
            return chr(int(src[i + 1 : j], 8)), j
        if nxt in "xuU":
            # Exactly 2, 4 or 8 hex digits, as Go's strconv.Unquote (which Milvus uses) reads them.
            width = {"x": 2, "u": 4, "U": 8}[nxt]
            j = i + 2
            while j < len(src) and src[j] in "0123456789abcdefABCDEF" and j < i + 2 + width:
                j += 1
            digits = src[i + 2 : j]
            if len(digits) != width:
                raise self.error(i, f"bad \\{nxt} escape in string literal")
            code = int(digits, 16)
            if code > 0x10FFFF:
                raise self.error(i, f"bad \\{nxt} escape in string literal")
            return chr(code), j
        # Unknown escapes (`\%`, `\_` for LIKE) keep their backslash for the next stage.
        return "\\" + nxt, i + 2


def _parse_number(text: str) -> int | float | None:
    if text.isdigit() and (text[0] != "0" or len(text) == 1) and text.isascii():
        return int(text)
    low = text.lower()
    if "_" in low:
        return None
    try:
        if low.startswith("0x"):
            if "p" in low:
                return float.fromhex(low)
            return int(low[2:], 16)
        if low.startswith("0b"):
            return int(low[2:], 2)
        if any(ch in low for ch in ".e"):
            if low.endswith(("e", "e+", "e-")):
                return None
            return float(low)
        if len(low) > 1 and low.startswith("0"):
            return int(low[1:], 8)
        return int(low, 10)
    except (ValueError, OverflowError):
        return None
