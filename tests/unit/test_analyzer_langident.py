"""The `language_identifier` tokenizer: whatlang detection, routing to sub-analyzers, params."""

from __future__ import annotations

import pytest

from shoal.errors import ShoalError
from shoal.text.analyzer import build_analyzer

ANALYZERS = {"English": {"type": "english"}, "Mandarin": {"type": "chinese"}, "default": {"tokenizer": "whitespace"}}


def langid(**extra: object) -> object:
    return build_analyzer({"tokenizer": {"type": "language_identifier", "analyzers": ANALYZERS, **extra}})


def test_each_text_goes_to_its_languages_analyzer() -> None:
    a = langid()
    assert a.tokens("The cats are running in the garden") == ["cat", "run", "garden"]  # English: stop words, stems
    assert a.tokens("今天天气很好") == ["今天天气", "很", "好"]  # Mandarin: jieba
    assert a.tokens("Привет Мир") == ["Привет", "Мир"]  # no Russian analyzer: the default
    assert a.tokens("1234 5678") == ["1234", "5678"]  # nothing to detect: the default
    assert a.detailed("The cats") == [("cat", 4, 8, 1)]  # the English analyzer's own positions


def test_mapping_and_confidence() -> None:
    mapped = build_analyzer({"tokenizer": {"type": "language_identifier", "mapping": {"English": "en"},
                                           "analyzers": {"en": {"type": "english"}, "default": {"tokenizer": "whitespace"}}}})
    assert mapped.tokens("The cats are running in the garden") == ["cat", "run", "garden"]
    # whatlang is 0.55 sure of this sentence: above 0.9 only, it goes to the default
    strict = langid(identifier={"type": "whatlang", "confidence": 0.9})
    assert strict.tokens("The cats are running in the garden") == "The cats are running in the garden".split()
    assert langid(identifier="whatlang").tokens("The cats are running in the garden") == ["cat", "run", "garden"]


def test_outer_filters_apply_after_the_sub_analyzer() -> None:
    a = build_analyzer({"tokenizer": {"type": "language_identifier", "analyzers": ANALYZERS}, "filter": ["lowercase"]})
    assert a.tokens("Привет Мир") == ["привет", "мир"]


@pytest.mark.parametrize(
    ("tokenizer", "message", "code"),
    [
        ({}, "analyzers must be set", 1100),
        ({"analyzers": []}, "analyzers must be dict", 1100),
        ({"analyzers": {"default": "standard"}}, 'sub analyzer "default" params must be dict', 1100),
        ({"analyzers": {"English": {"type": "english"}}}, "default sub analyzer", 1100),
        ({"analyzers": {"default": {"tokenizer": "nope"}}}, "unknown tokenizer", 1100),
        ({"analyzers": ANALYZERS, "mapping": ["x"]}, "mapping must be dict", 1100),
        ({"analyzers": ANALYZERS, "identifier": "cld3"}, "unknown identifier name: cld3", 1100),
        ({"analyzers": ANALYZERS, "identifier": {"confidence": 0.5}}, "identifier type must be set", 1100),
        ({"analyzers": ANALYZERS, "identifier": {"type": "whatlang", "confidence": "high"}}, "confidence must be float", 1100),
        ({"analyzers": ANALYZERS, "identifier": 3}, "must be string or dict", 1100),
        ({"analyzers": ANALYZERS, "analyser": {}}, "unknown params", 1100),
        ({"analyzers": ANALYZERS, "identifier": "lingua"}, "lingua", 10),
    ],
)
def test_bad_params(tokenizer: dict, message: str, code: int) -> None:
    with pytest.raises(ShoalError, match=message) as err:
        build_analyzer({"tokenizer": {"type": "language_identifier", **tokenizer}})
    assert err.value.code == code
