"""LIKE patterns: `%` (any run), `_` (one character), `\\%` / `\\_` for the literal ones.

Used by `evaluator`. A pattern is sorted into a fast shape (exact, prefix, suffix,
infix) that works on a whole object array of strings without Python code per row;
anything else becomes an anchored regular expression.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import numpy as np

_MAX_CHAR = "\U0010ffff"


@dataclass(frozen=True)
class LikePattern:
    kind: str  # "exact", "prefix", "suffix", "infix", "regex"
    literal: str
    regex: re.Pattern[str] | None = None
    runs: tuple[str, ...] = ()  # the literal text between wildcards: every match contains each run

    def match_one(self, s: str) -> bool:
        if self.kind == "exact":
            return s == self.literal
        if self.kind == "prefix":
            return s.startswith(self.literal)
        if self.kind == "suffix":
            return s.endswith(self.literal)
        if self.kind == "infix":
            return self.literal in s
        assert self.regex is not None
        return self.regex.fullmatch(s) is not None

    def match_array(self, values: np.ndarray) -> np.ndarray:
        """Match an object array holding only `str`."""
        n = len(values)
        if self.kind == "exact":
            return np.asarray(values == self.literal, dtype=bool)
        if self.kind == "prefix":
            return _prefix_mask(values, self.literal)
        if self.kind == "suffix":
            method = str.endswith
        elif self.kind == "infix":
            method = str.__contains__
        else:
            assert self.regex is not None
            return np.fromiter(map(bool, map(self.regex.fullmatch, values)), dtype=bool, count=n)
        # map() over C callables: no Python bytecode runs per row.
        return np.fromiter(map(method, values, itertools.repeat(self.literal)), dtype=bool, count=n)


def compile_like(pattern: str) -> LikePattern:
    # Split into (is_wildcard, text) pieces, resolving backslash escapes.
    pieces: list[tuple[bool, str]] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            pieces.append((False, pattern[i + 1]))
            i += 2
            continue
        pieces.append((c in "%_", c))
        i += 1
    runs = tuple(
        "".join(text for _, text in group) for is_wild, group in itertools.groupby(pieces, key=lambda p: p[0]) if not is_wild
    )
    wild = [p for p in pieces if p[0]]
    if all(w[1] == "%" for w in wild):
        starts = bool(pieces) and pieces[0] == (True, "%")
        ends = len(pieces) > 1 and pieces[-1] == (True, "%") or (len(pieces) == 1 and starts)
        inner = pieces[int(starts) : len(pieces) - int(ends)] if pieces else []
        if not any(w for w, _ in inner):
            literal = "".join(t for _, t in inner)
            if not starts and not ends:
                return LikePattern("exact", literal, runs=runs)
            if ends and not starts:
                return LikePattern("prefix", literal, runs=runs)
            if starts and not ends:
                return LikePattern("suffix", literal, runs=runs)
            return LikePattern("infix", literal, runs=runs)
    parts = []
    for is_wild, text in pieces:
        if is_wild:
            parts.append(".*" if text == "%" else ".")
        else:
            parts.append(re.escape(text))
    return LikePattern("regex", pattern, re.compile("".join(parts), re.DOTALL), runs)


def _prefix_mask(values: np.ndarray, prefix: str) -> np.ndarray:
    """s starts with p  <=>  p <= s < successor(p): two vectorised comparisons."""
    upper = prefix.rstrip(_MAX_CHAR)
    if not upper:
        return np.asarray(values >= prefix, dtype=bool)
    upper = upper[:-1] + chr(ord(upper[-1]) + 1)
    return np.asarray((values >= prefix) & (values < upper), dtype=bool)
