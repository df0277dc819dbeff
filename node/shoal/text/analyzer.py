"""Milvus text analyzers: `analyzer_params` → a function from text to tokens.

Built-in analyzers `standard` (standard tokenizer + lowercase), `english` (+ English
stop words and the Snowball English stemmer) and `chinese` (jieba, via the rjieba package,
+ `cnalphanumonly`); custom analyzers name a `tokenizer` (`standard`, `whitespace`,
`jieba`, `icu`, `lindera`: `text.segmenters`; `language_identifier`: `text.langident`) and a `filter` list (`lowercase`,
`asciifolding`, `alphanumonly`, `cnalphanumonly`, `cncharonly`, `removepunct`, `stop`,
`stemmer`, `length`, `regex`, `decompounder`, `synonym`: `text.synonyms`). What Shoal does
not do answers code 10 when the analyzer is built, i.e. at create_collection.

A token's term id in the BM25 sparse vectors is a stable 32-bit hash of its text.
Neighbours: `bm25` (term frequencies), the engine (insert, search), `expr` (text_match).
"""

from __future__ import annotations

import json
import re
import unicodedata
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from shoal.errors import invalid, not_supported
from shoal.text.langident import language_identifier
from shoal.text.segmenters import Spans, icu_spans, lindera_spans
from shoal.text.synonyms import synonym_filter

Tokens = list[str]
Filter = Callable[[Tokens], Tokens]

# Lucene's / tantivy's English stop-word list (the `_english_` set).
ENGLISH_STOP_WORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there "
    "these they this to was will with".split()
)
_STANDARD = re.compile(r"\w+", re.UNICODE)
_CJK = re.compile(r"[\u4e00-\u9fff]")
_STEM_LANGUAGES = (
    "arabic", "danish", "dutch", "english", "finnish", "french", "german", "greek", "hungarian",
    "italian", "norwegian", "portuguese", "romanian", "russian", "spanish", "swedish", "tamil", "turkish",
)


def term_id(token: str) -> int:
    """The sparse-vector dimension of a token (stable across processes and restarts)."""
    return zlib.crc32(token.encode("utf-8"))


@dataclass(frozen=True)
class Tokenizer:
    """Text → tokens, and the same tokens with their character offsets (run_analyzer);
    `positioned` where a token's position is not its index (a sub-analyzer's output)."""

    tokens: Callable[[str], Tokens]
    spans: Callable[[str], Spans]
    positioned: Callable[[str], list[tuple[str, int, int, int]]] | None = None


def _regex_tokenizer(pattern: re.Pattern[str]) -> Tokenizer:
    return Tokenizer(pattern.findall, lambda text: [(m.group(0), m.start(), m.end()) for m in pattern.finditer(text)])


def _jieba() -> Tokenizer:
    try:
        import rjieba
    except ImportError:
        raise not_supported("the jieba tokenizer (the rjieba package is not installed)") from None
    return Tokenizer(
        lambda text: [t for t in rjieba.cut(text) if t.strip()],
        lambda text: [(t, a, b) for t, a, b in rjieba.tokenize(text) if t.strip()],
    )


def _language_identifier(spec: Mapping[str, Any]) -> Tokenizer:
    tokens, positioned = language_identifier(spec, build_analyzer)
    return Tokenizer(tokens, lambda text: [(t, a, b) for t, a, b, _ in positioned(text)], positioned)


def _from_spans(spans: Callable[[str], Spans]) -> Tokenizer:
    return Tokenizer(lambda text: [t for t, _, _ in spans(text)], spans)


TOKENIZERS: dict[str, Callable[[Mapping[str, Any]], Tokenizer]] = {
    "standard": lambda spec: _regex_tokenizer(_STANDARD),
    "whitespace": lambda spec: _regex_tokenizer(re.compile(r"\S+")),
    "jieba": lambda spec: _jieba(),
    "icu": lambda spec: _from_spans(icu_spans()),
    "lindera": lambda spec: _from_spans(lindera_spans(spec)),
    "language_identifier": lambda spec: _language_identifier(spec),
}


def _lowercase(tokens: Tokens) -> Tokens:
    return [t.lower() for t in tokens]


def _asciifolding(tokens: Tokens) -> Tokens:
    return [unicodedata.normalize("NFKD", t).encode("ascii", "ignore").decode("ascii") or t for t in tokens]


def _alphanumonly(tokens: Tokens) -> Tokens:
    return [t for t in tokens if t.isascii() and t.isalnum()]


def _cnalphanumonly(tokens: Tokens) -> Tokens:
    return [t for t in tokens if all(c.isascii() and c.isalnum() or _CJK.match(c) for c in t)]


def _cncharonly(tokens: Tokens) -> Tokens:
    return [t for t in tokens if all(_CJK.match(c) for c in t)]


def _removepunct(tokens: Tokens) -> Tokens:
    """Drop every token holding a punctuation mark (Unicode category P*) or a space, as Milvus does."""
    return [t for t in tokens if not any(c.isspace() or unicodedata.category(c)[0] == "P" for c in t)]


SIMPLE_FILTERS: dict[str, Filter] = {
    "lowercase": _lowercase,
    "asciifolding": _asciifolding,
    "alphanumonly": _alphanumonly,
    "cnalphanumonly": _cnalphanumonly,
    "cncharonly": _cncharonly,
    "removepunct": _removepunct,
}


def _stop_filter(words: Any) -> Filter:
    if words is None:
        words = ["_english_"]
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise invalid("stop filter: stop_words should be a list of strings")
    stop: set[str] = set()
    for w in words:
        stop |= ENGLISH_STOP_WORDS if w == "_english_" else {w}
    return lambda tokens: [t for t in tokens if t not in stop]


def _stemmer_filter(language: Any) -> Filter:
    lang = str(language or "").lower()
    if lang not in _STEM_LANGUAGES:
        raise invalid(f"stemmer filter: unsupported language {language!r}, supported: {list(_STEM_LANGUAGES)}")
    import snowballstemmer

    stem = snowballstemmer.stemmer(lang).stemWord
    cache: dict[str, str] = {}

    def run(tokens: Tokens) -> Tokens:
        out = []
        for t in tokens:
            s = cache.get(t)
            if s is None:
                if len(cache) > 1_000_000:
                    cache.clear()
                s = cache[t] = stem(t)
            out.append(s)
        return out

    return run


def _length_filter(max_len: Any) -> Filter:
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
        raise invalid("length filter: max should be a positive integer")
    return lambda tokens: [t for t in tokens if len(t) <= max_len]


def _regex_filter(expr: Any) -> Filter:
    if not isinstance(expr, str):
        raise invalid("regex filter: expr should be a string")
    try:
        pattern = re.compile(expr)
    except re.error as e:
        raise invalid(f"regex filter: invalid expr {expr!r}: {e}") from None
    return lambda tokens: [t for t in tokens if pattern.search(t)]


def _decompounder_filter(words: Any) -> Filter:
    """Split a token wholly made of `word_list` words (longest word first at each point) into
    them; a token with any part outside the list stays whole, as tantivy's splitter does."""
    if not isinstance(words, list) or not words or not all(isinstance(w, str) and w for w in words):
        raise invalid("decompounder filter: word_list should be a non-empty list of strings")
    pattern = re.compile("|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True)))

    def split(token: str) -> Tokens:
        parts, at = [], 0
        for m in pattern.finditer(token):
            if m.start() != at:
                return [token]
            parts.append(m.group(0))
            at = m.end()
        return parts if at == len(token) and parts else [token]

    def run(tokens: Tokens) -> Tokens:
        return [p for t in tokens for p in split(t)]

    run.expands = True  # type: ignore[attr-defined]
    return run


def _filter(spec: Any) -> Filter:
    if isinstance(spec, str):
        if spec in SIMPLE_FILTERS:
            return SIMPLE_FILTERS[spec]
        if spec in ("decompounder", "stop", "stemmer", "length", "regex", "synonym"):
            raise invalid(f"analyzer filter {spec!r} needs its parameters: write it as an object with a type")
        raise invalid(f"unknown analyzer filter {spec!r}")
    if not isinstance(spec, Mapping) or "type" not in spec:
        raise invalid(f"analyzer filter should be a name or an object with a type, got {spec!r}")
    kind = spec["type"]
    if kind in SIMPLE_FILTERS:
        return SIMPLE_FILTERS[kind]
    if kind == "stop":
        return _stop_filter(spec.get("stop_words"))
    if kind == "stemmer":
        return _stemmer_filter(spec.get("language"))
    if kind == "length":
        return _length_filter(spec.get("max"))
    if kind == "regex":
        return _regex_filter(spec.get("expr"))
    if kind == "decompounder":
        return _decompounder_filter(spec.get("word_list"))
    if kind == "synonym":
        return synonym_filter(spec)
    raise invalid(f"unknown analyzer filter type {kind!r}")


class Analyzer:
    """Text → tokens through one tokenizer and a chain of filters."""

    def __init__(self, tokenizer: Tokenizer, filters: list[Filter]) -> None:
        self.tokenizer = tokenizer
        self.filters = filters
        # a filter that turns one token into several (synonyms, compound parts)
        self.expands = any(getattr(f, "expands", False) for f in filters)

    def tokens(self, text: str) -> Tokens:
        out = self.tokenizer.tokens(text)
        for f in self.filters:
            out = f(out)
        return out

    def detailed(self, text: str) -> list[tuple[str, int, int, int]]:
        """(token, start offset, end offset, position) of each token the filters keep.

        Every filter maps, drops or splits single tokens (the decompounder's parts keep their
        compound's offsets and position), so a token's fate does not depend on its neighbours
        and can be decided one token at a time.
        """
        out = []
        if self.tokenizer.positioned is not None:
            items = self.tokenizer.positioned(text)
        else:
            items = [(token, start, end, i) for i, (token, start, end) in enumerate(self.tokenizer.spans(text))]
        for token, start, end, position in items:
            kept = [token]
            for f in self.filters:
                kept = f(kept)
            out.extend((t, start, end, position) for t in kept)
        return out

    def positions(self, text: str) -> list[tuple[str, int]]:
        """(token, position) for phrase matching: the tokens one word became (its synonyms, a
        compound's parts) share its position; words the filters drop leave no gap."""
        if not self.expands:  # one token per kept word: positions are indexes (the fast path)
            return [(t, i) for i, t in enumerate(self.tokens(text))]
        out: list[tuple[str, int]] = []
        position = 0
        for token, _, _ in self.tokenizer.spans(text):
            kept = [token]
            for f in self.filters:
                kept = f(kept)
            if kept:
                out.extend((t, position) for t in kept)
                position += 1
        return out

    @staticmethod
    def hash(token: str) -> int:
        return term_id(token)

    def term_counts(self, text: str) -> dict[int, float]:
        """The BM25 document vector of `text`: term id → occurrences."""
        counts: dict[int, float] = {}
        for t in self.tokens(text):
            tid = term_id(t)
            counts[tid] = counts.get(tid, 0.0) + 1.0
        return counts


def _tokenizer(spec: Any) -> Tokenizer:
    name = spec.get("type") if isinstance(spec, Mapping) else spec
    if name in TOKENIZERS:
        return TOKENIZERS[name](spec if isinstance(spec, Mapping) else {})
    if name in ("char_group", "grpc"):
        raise not_supported(f"the {name} tokenizer")
    raise invalid(f"unknown tokenizer {name!r}")


def parse_params(raw: Any) -> dict[str, Any]:
    """analyzer_params as a dict (clients send a JSON string)."""
    if raw is None or raw == "":
        return {"type": "standard"}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as e:
            raise invalid(f"analyzer_params is not valid JSON: {raw!r}") from e
    if not isinstance(raw, Mapping):
        raise invalid(f"analyzer_params should be a JSON object, got {raw!r}")
    return dict(raw)


def build_analyzer(params: Mapping[str, Any]) -> Analyzer:
    """An analyzer from Milvus `analyzer_params` (1100 for bad ones, 10 for ones Shoal lacks)."""
    kind = params.get("type")
    if kind is not None:
        extra_stop = params.get("stop_words")
        if kind == "standard":
            filters: list[Filter] = [_lowercase]
        elif kind == "english":
            filters = [_lowercase, _stop_filter(["_english_"]), _stemmer_filter("english")]
        elif kind == "chinese":
            filters = [_cnalphanumonly]
            if extra_stop is not None:
                filters.append(_stop_filter(extra_stop))
            return Analyzer(_jieba(), filters)
        else:
            raise invalid(f"unknown analyzer type {kind!r}")
        if extra_stop is not None:
            filters.append(_stop_filter(extra_stop))
        return Analyzer(_regex_tokenizer(_STANDARD), filters)
    return Analyzer(_tokenizer(params.get("tokenizer", "standard")), [_filter(f) for f in params.get("filter", [])])


@lru_cache(maxsize=256)
def _cached(text: str) -> Analyzer:
    return build_analyzer(parse_params(text))


def analyzer_for(raw: Any) -> Analyzer:
    """The (cached) analyzer of a field's `analyzer_params` type param."""
    if isinstance(raw, Mapping):
        raw = json.dumps(raw, sort_keys=True)
    return _cached(raw or "")
