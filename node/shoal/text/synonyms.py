"""Milvus's `synonym` token filter: rules in the Solr-like format Milvus documents.

A rule is one string: `a, b, c` makes its words equivalent, `a, b => c, d` rewrites the words on
the left into those on the right. With `expand` (the default) a token keeps its own text and
gains every equivalent; without it, a group's words become the group's first word and a mapped
word becomes its targets only. A word named by several rules gets the union of their outputs.
Inside a rule, `\\,`, `\\ `, `\\\\` and `\\=>` stand for those characters themselves; a space inside
an unescaped word is refused (Milvus's rule: the filter sees single tokens, never phrases).

Every output token takes the position and offsets of the token it replaces.
Neighbours: `text.analyzer` (the filter chain it joins).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from shoal.errors import invalid, not_supported

Tokens = list[str]
PARAMS = ("type", "synonyms", "expand", "synonyms_file")


def parse_rule(rule: str) -> tuple[list[str], list[str] | None]:
    """(left words, right words) of one rule; right is None for an equivalence group."""
    left: list[str] = []
    right: list[str] | None = None
    word: list[str] = []
    spaced = False  # a space followed the current word: another character would split it
    i = 0

    def flush() -> None:
        nonlocal word, spaced
        if word:
            (left if right is None else right).append("".join(word))
        word, spaced = [], False

    while i < len(rule):
        c = rule[i]
        if c == "\\":
            nxt = rule[i + 1 : i + 2]
            if not nxt:
                raise invalid(f"invalid synonym escaped in the end: {rule}")
            if nxt in (",", "\\", " "):
                word.append(nxt)
                i += 2
                continue
            if rule[i + 1 : i + 3] == "=>":
                word.append("=>")
                i += 3
                continue
            raise invalid(f"invalid synonym escaped: \\{nxt} in {rule}")
        if c == " ":
            spaced = bool(word)
            i += 1
            continue
        if c == ",":
            flush()
            i += 1
            continue
        if rule[i : i + 2] == "=>":
            if right is not None:
                raise invalid(f'read synonym dict failed, has more than one "=>" in {rule}')
            flush()
            right = []
            i += 2
            continue
        if spaced:
            raise invalid(f"read synonym dict failed, has space between words {rule}, please use \\ to escape space")
        word.append(c)
        i += 1
    flush()
    return left, right


def build_dict(rules: list[str], expand: bool) -> dict[str, list[str]]:
    """word → the tokens it becomes (insertion-ordered, no repeats)."""
    table: dict[str, list[str]] = {}

    def add(key: str, words: list[str]) -> None:
        out = table.get(key)
        if out is None:
            out = table[key] = [key] if expand else []
        out.extend(w for w in words if w not in out)

    for rule in rules:
        left, right = parse_rule(rule)
        if right is None:
            for w in left:
                add(w, left if expand else left[:1])
        else:
            for w in left:
                add(w, right)
    return table


def synonym_filter(spec: Mapping[str, Any]) -> Callable[[Tokens], Tokens]:
    unknown = sorted(set(spec) - set(PARAMS))
    if unknown:
        raise invalid(f"create synonym filter failed, unknown params: {unknown} (expected: synonyms, expand, synonyms_file)")
    expand = spec.get("expand", True)
    if not isinstance(expand, bool):
        raise invalid("create synonym filter failed, `expand` must be bool")
    rules = spec.get("synonyms", [])
    if not isinstance(rules, list):
        raise invalid("create synonym filter failed, `synonyms` must be array")
    if not all(isinstance(r, str) for r in rules):
        raise invalid("create synonym filter failed, item in `synonyms` must be string")
    if spec.get("synonyms_file") is not None:
        raise not_supported("the synonym filter's synonyms_file (file resources): give the rules inline in `synonyms`")
    table = build_dict(rules, expand)

    def run(tokens: Tokens) -> Tokens:
        out: Tokens = []
        for t in tokens:
            out.extend(table.get(t) or (t,))
        return out

    run.expands = True  # type: ignore[attr-defined]
    return run
