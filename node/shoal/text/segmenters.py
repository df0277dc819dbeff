"""Dictionary and rule based word segmenters: Milvus's `icu` and `lindera` tokenizers.

`icu` is ICU's word break iterator (the PyICU binding of the pyicu-wheels package, which
bundles ICU 77): every segment between two word boundaries is a token, the spaces and
punctuation between words included, as Milvus's tokenizer gives them (pair it with the
`removepunct` filter to keep words only). `lindera` is the morphological analyser of the
same name (the lindera-python-cjk package, whose wheel embeds the IPADIC, ko-dic and
CC-CEDICT dictionaries: nothing is downloaded at run time), in its normal mode, with the
part-of-speech filters Milvus lets a `lindera` tokenizer carry in its own `filter` list.

Both packages are optional (`pip install shoal[cjk]`): without them the analyzer answers
code 10 naming the tokenizer and the package to install.
Neighbours: `text.analyzer` (the analyzer built around a tokenizer).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from shoal.errors import invalid, not_supported

Spans = list[tuple[str, int, int]]

LINDERA_DICTS = ("ipadic", "ko-dic", "cc-cedict")
# the part-of-speech filters a lindera tokenizer carries in its own `filter` list
LINDERA_FILTERS = ("japanese_compound_word", "japanese_keep_tags", "japanese_stop_tags", "korean_keep_tags", "korean_stop_tags")


def _missing(tokenizer: str, package: str) -> Exception:
    return not_supported(
        f"the {tokenizer} tokenizer (the {package} package is not installed: pip install 'shoal[cjk]')"
    )


def icu_spans() -> Callable[[str], Spans]:
    """Text → (segment, start, end) in characters, for every ICU word-break segment."""
    try:
        import icu
    except ImportError:
        raise _missing("icu", "pyicu-wheels") from None
    local = threading.local()  # a break iterator holds its text: one per thread

    def spans(text: str) -> Spans:
        it = getattr(local, "it", None)
        if it is None:
            it = local.it = icu.BreakIterator.createWordInstance(icu.Locale.getRoot())
        it.setText(text)
        # ICU counts UTF-16 code units; map them back to Python characters
        units = text.encode("utf-16-le")
        out: Spans = []
        start16, start = it.first(), 0
        for end16 in it:
            piece = units[2 * start16 : 2 * end16].decode("utf-16-le")
            out.append((piece, start, start + len(piece)))
            start16, start = end16, start + len(piece)
        return out

    return spans


def _tags(name: str, spec: Mapping[str, Any]) -> list[str]:
    tags = spec.get("tags")
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise invalid(f"lindera {name} filter: tags must be set to a list of strings")
    return tags


def _lindera_filter(spec: Any, dict_kind: str) -> tuple[str, dict[str, Any]]:
    if isinstance(spec, str):
        name, params = spec, {}
    elif isinstance(spec, Mapping) and isinstance(spec.get("kind"), str):
        name, params = spec["kind"], dict(spec)
    else:
        raise invalid(f"lindera tokenizer filter must be a name or an object with a string kind, got {spec!r}")
    if name not in LINDERA_FILTERS:
        raise invalid(f"unknown lindera filter type {name!r}, expected one of {list(LINDERA_FILTERS)}")
    args: dict[str, Any] = {"tags": _tags(name, params)}
    if name == "japanese_compound_word":
        args["kind"] = dict_kind
        new_tag = params.get("new_tag")
        if new_tag is not None and not isinstance(new_tag, str):
            raise invalid("lindera japanese_compound_word filter: new_tag must be a string")
        if new_tag is not None:
            args["new_tag"] = new_tag
    return name, args


def lindera_spans(spec: Mapping[str, Any]) -> Callable[[str], Spans]:
    """Text → (morpheme, start, end) in characters through lindera with `dict_kind`."""
    dict_kind = spec.get("dict_kind")
    if dict_kind is None:
        raise invalid("lindera tokenizer dict_kind must be set")
    if not isinstance(dict_kind, str):
        raise invalid("lindera tokenizer dict_kind should be a string")
    if dict_kind not in LINDERA_DICTS:
        raise invalid(f"unsupported lindera dict type: {dict_kind} (expected one of {list(LINDERA_DICTS)})")
    raw_filters = spec.get("filter", [])
    if not isinstance(raw_filters, list):
        raise invalid("lindera filters should be an array")
    filters = tuple((name, tuple(sorted((k, _freeze(v)) for k, v in args.items())))
                    for name, args in (_lindera_filter(f, dict_kind) for f in raw_filters))
    tokenizer = _lindera_tokenizer(dict_kind, filters)

    def spans(text: str) -> Spans:
        data = text.encode("utf-8")
        out: Spans = []
        byte, char = 0, 0  # lindera counts bytes: walk them forward to characters
        for tok in tokenizer.tokenize(text):
            char += len(data[byte : tok.byte_start].decode("utf-8"))
            byte = tok.byte_start
            out.append((tok.surface, char, char + len(tok.surface)))
        return out

    return spans


def _freeze(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


@lru_cache(maxsize=16)
def _lindera_tokenizer(dict_kind: str, filters: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]) -> Any:
    """One built tokenizer per dictionary and filter chain (loading a dictionary takes ~1 s)."""
    try:
        import lindera
    except ImportError:
        raise _missing("lindera", "lindera-python-cjk") from None
    builder = lindera.TokenizerBuilder()
    builder.set_mode("normal")
    builder.set_dictionary(f"embedded://{dict_kind}")
    for name, args in filters:
        builder.append_token_filter(name, {k: list(v) if isinstance(v, tuple) else v for k, v in args})
    try:
        return builder.build()
    except ValueError as e:
        raise invalid(f"lindera tokenizer: {e}") from None
