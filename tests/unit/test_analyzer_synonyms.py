"""The `synonym` filter: Milvus's rule format, `expand`, escapes and bad params."""

from __future__ import annotations

import pytest

from shoal.errors import ShoalError
from shoal.text.analyzer import build_analyzer
from shoal.text.synonyms import parse_rule

RULES = ["fast, quick => speedy", "happy, joyful, cheerful", "small, little => tiny, compact"]


def synonyms(expand: bool, rules: list[str] = RULES) -> object:
    return build_analyzer({"tokenizer": "standard", "filter": ["lowercase", {"type": "synonym", "synonyms": rules, "expand": expand}]})


def test_the_documented_examples() -> None:
    """Milvus's synonym-filter page: mapping rules and equivalence groups, with and without expand."""
    on, off = synonyms(True), synonyms(False)
    assert set(on.tokens("fast")) == {"fast", "speedy"}
    assert off.tokens("fast") == ["speedy"]
    assert set(on.tokens("happy")) == {"happy", "joyful", "cheerful"}
    assert off.tokens("joyful") == ["happy"] and off.tokens("happy") == ["happy"]
    assert set(on.tokens("little")) == {"little", "tiny", "compact"}
    assert set(off.tokens("little")) == {"tiny", "compact"}
    assert off.tokens("a slow dog") == ["a", "slow", "dog"]
    assert build_analyzer({"filter": [{"type": "synonym", "synonyms": RULES}]}).tokens("fast") == ["fast", "speedy"]  # expand by default


def test_outputs_share_the_position_and_offsets_of_their_word() -> None:
    on = synonyms(True)
    assert on.positions("the fast car") == [("the", 0), ("fast", 1), ("speedy", 1), ("car", 2)]
    assert on.detailed("fast car") == [("fast", 0, 4, 0), ("speedy", 0, 4, 0), ("car", 5, 8, 1)]


def test_escapes_and_rule_syntax() -> None:
    # Milvus's own unit case: escaped `=>` and backslash, expand false
    a = build_analyzer({"tokenizer": "standard", "filter": [
        {"type": "synonym", "expand": False, "synonyms": ["trans => translate, \\=>", "\\\\test, test, tests"]}]})
    assert set(a.tokens("test trans synonym")) == {"\\test", "translate", "=>", "synonym"}
    assert parse_rule("a\\ b, c\\,d") == (["a b", "c,d"], None)
    assert parse_rule("  x ,y=>  z ") == (["x", "y"], ["z"])
    assert parse_rule("a, b, a") == (["a", "b", "a"], None)


@pytest.mark.parametrize(
    ("spec", "message", "code"),
    [
        ({"synonyms": ["a b, c"]}, "space between words", 1100),
        ({"synonyms": ["a => b => c"]}, 'more than one "=>"', 1100),
        ({"synonyms": ["a\\"]}, "escaped in the end", 1100),
        ({"synonyms": ["a\\x"]}, "invalid synonym escaped", 1100),
        ({"synonyms": "a, b"}, "must be array", 1100),
        ({"synonyms": [1]}, "must be string", 1100),
        ({"synonyms": [], "expand": "yes"}, "must be bool", 1100),
        ({"synonyms": [], "expnad": True}, "unknown params", 1100),
        ({"synonyms_file": {"type": "remote", "resource_name": "r", "file_name": "s.txt"}}, "synonyms_file", 10),
    ],
)
def test_bad_params(spec: dict, message: str, code: int) -> None:
    with pytest.raises(ShoalError, match=message) as err:
        build_analyzer({"tokenizer": "standard", "filter": [{"type": "synonym", **spec}]})
    assert err.value.code == code
