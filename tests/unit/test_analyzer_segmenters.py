"""The icu and lindera tokenizers, the removepunct and decompounder filters, without a server.

Expected tokens are the outputs Milvus's documentation shows for the same analyzer_params
and text (the icu tokenizer page, the lindera tokenizer page, the removepunct and
decompounder filter pages, the removepunct jieba example in Milvus's own tests).
"""

from __future__ import annotations

import sys

import pytest

from shoal.errors import ShoalError
from shoal.text import segmenters
from shoal.text.analyzer import build_analyzer

SKYTREE = "東京スカイツリーの最寄り駅はとうきょうスカイツリー駅で"


def test_icu_keeps_spaces_and_punctuation_as_tokens() -> None:
    icu = build_analyzer({"tokenizer": "icu"})
    assert icu.tokens("Привет! Как дела?") == ["Привет", "!", " ", "Как", " ", "дела", "?"]
    clean = build_analyzer({"tokenizer": "icu", "filter": ["removepunct"]})
    assert clean.tokens("Привет! Как дела?") == ["Привет", "Как", "дела"]
    # Thai has no spaces between words: ICU's dictionary finds them
    assert clean.tokens("ฉันชอบกินข้าวผัด") == ["ฉัน", "ชอบ", "กิน", "ข้าว", "ผัด"]


def test_icu_offsets_count_characters_past_astral_ones() -> None:
    # ICU counts UTF-16 units: the emoji is two of them but one Python character
    spans = build_analyzer({"tokenizer": "icu", "filter": ["removepunct"]}).detailed("a 👋 héllo")
    assert [(t, s, e) for t, s, e, _ in spans] == [("a", 0, 1), ("👋", 2, 3), ("héllo", 4, 9)]
    assert [p for *_, p in spans] == [0, 2, 4]


def test_lindera_ipadic_matches_milvus_docs() -> None:
    ja = build_analyzer({"tokenizer": {"type": "lindera", "dict_kind": "ipadic"}})
    assert ja.tokens(SKYTREE) == ["東京", "スカイ", "ツリー", "の", "最寄り駅", "は", "とう", "きょう", "スカイ", "ツリー", "駅", "で"]
    spans = ja.detailed(SKYTREE)
    assert [(s, e) for _, s, e, _ in spans[:3]] == [(0, 2), (2, 5), (5, 8)]  # characters, not UTF-8 bytes


def test_lindera_tag_filters_and_other_dictionaries() -> None:
    stop = {"kind": "japanese_stop_tags", "tags": ["接続詞", "助詞", "助詞,格助詞", "助詞,連体化"]}
    ja = build_analyzer({"tokenizer": {"type": "lindera", "dict_kind": "ipadic", "filter": [stop]}})
    assert "の" not in ja.tokens(SKYTREE) and "東京" in ja.tokens(SKYTREE)
    keep = {"kind": "korean_keep_tags", "tags": ["NNG", "NNP"]}
    ko = build_analyzer({"tokenizer": {"type": "lindera", "dict_kind": "ko-dic", "filter": [keep]}})
    assert ko.tokens("안녕하세요, 저는 학생입니다. 서울에 살아요!") == ["안녕", "학생", "서울"]
    zh = build_analyzer({"tokenizer": {"type": "lindera", "dict_kind": "cc-cedict"}, "filter": ["removepunct"]})
    assert zh.tokens("我喜欢在北京吃烤鸭。") == ["我", "喜欢", "在", "北京", "吃", "烤鸭"]


def test_removepunct_drops_tokens_holding_punctuation_or_spaces() -> None:
    jieba = build_analyzer({"tokenizer": "jieba", "filter": ["removepunct"]})
    assert jieba.tokens('中文，标点。"测试"。\n') == ["中文", "标点", "测试"]
    ws = build_analyzer({"tokenizer": "whitespace", "filter": [{"type": "removepunct"}]})
    assert ws.tokens("keep don't $5 ok.") == ["keep", "$5"]


def test_decompounder_splits_only_wholly_known_compounds() -> None:
    words = ["dampf", "schiff", "fahrt", "brot", "backen", "automat"]
    de = build_analyzer({"tokenizer": "standard", "filter": [{"type": "decompounder", "word_list": words}]})
    assert de.tokens("dampfschifffahrt brotbackautomat") == ["dampf", "schiff", "fahrt", "brotbackautomat"]
    # the parts keep their compound's offsets and position
    assert de.detailed("ein dampfschiff") == [("ein", 0, 3, 0), ("dampf", 4, 15, 1), ("schiff", 4, 15, 1)]
    longest = build_analyzer({"tokenizer": "standard", "filter": [{"type": "decompounder", "word_list": ["ab", "abc", "d"]}]})
    assert longest.tokens("abcd abd abx") == ["abc", "d", "ab", "d", "abx"]
    for bad in ({"type": "decompounder"}, {"type": "decompounder", "word_list": []}, "decompounder"):
        with pytest.raises(ShoalError) as err:
            build_analyzer({"tokenizer": "standard", "filter": [bad]})
        assert err.value.code == 1100


@pytest.mark.parametrize(
    ("tokenizer", "message"),
    [
        ({"type": "lindera"}, "dict_kind must be set"),
        ({"type": "lindera", "dict_kind": "unidic"}, "unsupported lindera dict type"),
        ({"type": "lindera", "dict_kind": "ipadic", "filter": ["bogus"]}, "unknown lindera filter"),
        ({"type": "lindera", "dict_kind": "ipadic", "filter": [{"kind": "japanese_stop_tags"}]}, "tags"),
        ({"type": "lindera", "dict_kind": "ipadic", "filter": "japanese_stop_tags"}, "array"),
    ],
)
def test_bad_lindera_params_answer_1100(tokenizer: dict, message: str) -> None:
    with pytest.raises(ShoalError, match=message) as err:
        build_analyzer({"tokenizer": tokenizer})
    assert err.value.code == 1100


def test_a_missing_package_answers_code_10_naming_the_tokenizer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "icu", None)
    monkeypatch.setitem(sys.modules, "lindera", None)
    segmenters._lindera_tokenizer.cache_clear()
    try:
        with pytest.raises(ShoalError, match="icu tokenizer.*pyicu-wheels") as err:
            build_analyzer({"tokenizer": "icu"})
        assert err.value.code == 10
        with pytest.raises(ShoalError, match="lindera tokenizer.*lindera-python-cjk") as err:
            build_analyzer({"tokenizer": {"type": "lindera", "dict_kind": "ko-dic"}})
        assert err.value.code == 10
    finally:
        segmenters._lindera_tokenizer.cache_clear()
