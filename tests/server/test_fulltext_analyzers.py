"""Analyzers that choose tokens beyond one tokenizer and filter chain, through real pymilvus:
the `synonym` filter, the `language_identifier` tokenizer and multi-analyzer fields.

Expected tokens and hits are computed here independently (hand-written synonym tables, the
documented analyzers), and BM25 scores against the plain-Python reference of test_fulltext.
"""

from __future__ import annotations

import re

import pytest
from pymilvus import (
    AnnSearchRequest,
    DataType,
    Function,
    FunctionType,
    MilvusClient,
    MilvusException,
    RRFRanker,
)
from test_fulltext import bm25_index, bm25_reference, bm25_schema

SYNONYMS = ["fast, quick => speedy", "happy, joyful, cheerful"]
# what the rules above give each word with expand on (hand-written, not from the server)
EXPANDED = {
    "fast": ["fast", "speedy"],
    "quick": ["quick", "speedy"],
    "happy": ["happy", "joyful", "cheerful"],
    "joyful": ["happy", "joyful", "cheerful"],
    "cheerful": ["happy", "joyful", "cheerful"],
}
DOCS = ["a fast car", "a speedy train", "the joyful crowd", "a slow quick boat", "cheerful and happy"]


def words(text: str) -> list[str]:
    return [w.lower() for w in re.findall(r"\w+", text)]


def expanded(text: str) -> list[str]:
    return [s for w in words(text) for s in EXPANDED.get(w, [w])]


def test_synonym_filter_in_insert_search_and_text_match(client: MilvusClient, name: str) -> None:
    analyzer = {"tokenizer": "standard", "filter": ["lowercase", {"type": "synonym", "synonyms": SYNONYMS}]}
    client.create_collection(name, schema=bm25_schema(client, analyzer), index_params=bm25_index(client))
    client.insert(name, [{"id": i, "text": d} for i, d in enumerate(DOCS)])

    out = client.run_analyzer("Quick happy", collection_name=name, field_name="text")
    assert sorted(out.tokens) == sorted(expanded("Quick happy"))
    for query in ("speedy", "quick", "happy crowd"):
        ref = bm25_reference(query, DOCS, 1.2, 0.75, expanded)
        hits = client.search(name, data=[query], anns_field="sparse", limit=len(DOCS))[0]
        want = {i: s for i, s in enumerate(ref) if s > 0}
        assert {h["id"]: h["distance"] for h in hits} == pytest.approx(want, rel=1e-4), query

    def ids(expr: str) -> list[int]:
        return sorted(r["id"] for r in client.query(name, filter=expr, output_fields=["id"]))

    assert ids('text_match(text, "speedy")') == [0, 1, 3]
    assert ids('text_match(text, "cheerful")') == [2, 4]
    # a word and its synonyms share one position: "quick boat" and "speedy boat" are phrases of doc 3
    assert ids('phrase_match(text, "speedy boat")') == [3]
    assert ids('phrase_match(text, "fast car")') == [0]
    assert ids('phrase_match(text, "quick car")') == [0]
    client.drop_collection(name)

    normalize = {"tokenizer": "standard", "filter": ["lowercase", {"type": "synonym", "synonyms": SYNONYMS, "expand": False}]}
    assert list(client.run_analyzer("joyful quick", analyzer_params=normalize).tokens) == ["happy", "speedy"]
    with pytest.raises(MilvusException, match="space between words") as err:
        client.create_collection(name, schema=bm25_schema(client, {"filter": [{"type": "synonym", "synonyms": ["a b, c"]}]}))
    assert err.value.code == 1100


# language_identifier: each document with the language a reader gives it (not the server's guess)
LANGID_DOCS = [
    ("The cats are running in the garden", "English"),
    ("Where are the running dogs", "English"),
    ("向量数据库支持全文检索", "Mandarin"),
    ("今天天气很好", "Mandarin"),
    ("Привет мир", "default"),
]
SUB_ANALYZERS = {"English": {"type": "english"}, "Mandarin": {"type": "chinese"}, "default": {"tokenizer": "standard", "filter": ["lowercase"]}}


def test_language_identifier_routes_each_text_to_its_analyzer(client: MilvusClient, name: str) -> None:
    analyzer = {"tokenizer": {"type": "language_identifier", "analyzers": SUB_ANALYZERS}}
    client.create_collection(name, schema=bm25_schema(client, analyzer), index_params=bm25_index(client))
    docs = [d for d, _ in LANGID_DOCS]
    client.insert(name, [{"id": i, "text": d} for i, d in enumerate(docs)])
    labels = dict(LANGID_DOCS)

    def by_label(text: str) -> list[str]:
        return list(client.run_analyzer(text, analyzer_params=SUB_ANALYZERS[labels[text]]).tokens)

    def field_tokens(text: str) -> list[str]:
        return list(client.run_analyzer(text, collection_name=name, field_name="text").tokens)

    assert field_tokens(docs[0]) == ["cat", "run", "garden"]  # the English analyzer: stop words out, stems
    assert field_tokens(docs[4]) == ["привет", "мир"]
    assert [field_tokens(d) for d in docs] == [by_label(d) for d in docs]
    # the query goes through detection too: an English sentence is stemmed, a Chinese one cut by jieba
    for query, label in (("the cats and the dogs are running", "English"), ("数据库", "Mandarin")):
        labels[query] = label
        ref = bm25_reference(query, docs, 1.2, 0.75, by_label)
        hits = client.search(name, data=[query], anns_field="sparse", limit=len(docs))[0]
        want = {i: s for i, s in enumerate(ref) if s > 0}
        assert want and {h["id"]: h["distance"] for h in hits} == pytest.approx(want, rel=1e-4), query
    matched = client.query(name, filter='text_match(text, "Where are the running dogs")', output_fields=["id"])
    assert sorted(r["id"] for r in matched) == [0, 1]  # "run" and "dog", after the English analyzer
    client.drop_collection(name)
    with pytest.raises(MilvusException, match="default sub analyzer") as err:
        bad = {"tokenizer": {"type": "language_identifier", "analyzers": {"English": {"type": "english"}}}}
        client.create_collection(name, schema=bm25_schema(client, bad))
    assert err.value.code == 1100


MULTI = {
    "by_field": "language",
    "analyzers": {"english": {"type": "english"}, "chinese": {"type": "chinese"}, "default": {"tokenizer": "whitespace"}},
    "alias": {"en": "english", "cn": "chinese"},
}
# (text, language field, its tokens under the analyzer that language selects: written by hand)
MULTI_DOCS = [
    ("The cats are running", "english", ["cat", "run"]),
    ("Running cats", "en", ["run", "cat"]),  # an alias
    ("向量数据库支持全文检索", "cn", ["向量", "数据库", "支持", "全文检索"]),
    ("running Cats", None, ["running", "Cats"]),  # null: the default analyzer
    ("cats running", "klingon", ["cats", "running"]),  # no such analyzer: the default
]


def multi_schema(client: MilvusClient, multi: dict, **text_params: object) -> object:
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("language", DataType.VARCHAR, max_length=16, nullable=True)
    schema.add_field("text", DataType.VARCHAR, max_length=200, enable_analyzer=True, multi_analyzer_params=multi, **text_params)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(
        Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["text"], output_field_names=["sparse"])
    )
    return schema


def test_multi_analyzer_field_picks_each_rows_analyzer(client: MilvusClient, name: str) -> None:
    client.create_collection(name, schema=multi_schema(client, MULTI), index_params=bm25_index(client))
    rows = [{"id": i, "text": t, "language": lang} for i, (t, lang, _) in enumerate(MULTI_DOCS)]
    client.insert(name, rows[:2])
    client.flush(name)  # statistics over a sealed segment and a growing one: the collection's
    client.insert(name, rows[2:])
    docs = [t for t, _, _ in MULTI_DOCS]
    by_doc = {i: toks for i, (_, _, toks) in enumerate(MULTI_DOCS)}

    def check(query: str, query_tokens: list[str], **search_params: str) -> list[int]:
        tokenized = {**{d: by_doc[i] for i, d in enumerate(docs)}, query: query_tokens}
        ref = bm25_reference(query, docs, 1.2, 0.75, tokenized.__getitem__)
        hits = client.search(name, data=[query], anns_field="sparse", limit=len(docs),
                             search_params={"metric_type": "BM25", **search_params})[0]
        want = {i: s for i, s in enumerate(ref) if s > 0}
        assert {h["id"]: h["distance"] for h in hits} == pytest.approx(want, rel=1e-4), (query, search_params)
        return sorted(want)

    assert check("running cat", ["run", "cat"], analyzer_name="english") == [0, 1]
    assert check("running cat", ["run", "cat"], analyzer_name="en") == [0, 1]
    assert check("running cats", ["running", "cats"]) == [3, 4]  # no analyzer_name: the default
    assert check("数据库", ["数据库"], analyzer_name="chinese") == [2]

    # a hybrid search's sub-request names its analyzer the same way
    sub = AnnSearchRequest(data=["running cat"], anns_field="sparse", param={"analyzer_name": "english"}, limit=5)
    hybrid = client.hybrid_search(name, [sub], RRFRanker(), limit=5)[0]
    assert sorted(h["id"] for h in hybrid) == [0, 1]

    def analyzed(texts: list[str], names: list[str] | None) -> list[list[str]]:
        out = client.run_analyzer(texts, collection_name=name, field_name="text", analyzer_names=names)
        return [list(r.tokens) for r in out]

    assert analyzed(["The cats are running"], ["english"]) == [["cat", "run"]]
    assert analyzed(["running cats", "running cats"], ["en", "default"]) == [["run", "cat"], ["running", "cats"]]
    assert analyzed(["running cats"], None) == [["running", "cats"]]
    with pytest.raises(MilvusException, match="give both") as err:
        client.upsert(name, [{"id": 0, "text": "dogs"}], partial_update=True)
    assert err.value.code == 10
    client.upsert(name, [{"id": 0, "text": "The dogs", "language": "english"}], partial_update=True)
    assert [h["id"] for h in client.search(name, data=["dog"], anns_field="sparse", limit=5,
                                           search_params={"analyzer_name": "english"})[0]] == [0]
    client.drop_collection(name)


@pytest.mark.parametrize(
    ("multi", "text_params", "message"),
    [
        ({"analyzers": MULTI["analyzers"]}, {}, "must set by_field"),
        ({**MULTI, "by_field": "missing"}, {}, "dependent field missing not exist"),
        ({**MULTI, "by_field": "id"}, {}, "only support by string field"),
        ({"by_field": "language"}, {}, "must set analyzers"),
        ({"by_field": "language", "analyzers": {"english": {"type": "english"}}}, {}, "must set default analyzer"),
        ({**MULTI, "alias": {"en": 1}}, {}, "alias must be string map"),
        ({**MULTI, "analyzers": {"default": {"tokenizer": "nope"}}}, {}, "unknown tokenizer"),
        ({**MULTI, "by": "language"}, {}, "unknown keys"),
        (MULTI, {"enable_match": True}, "only support for bm25"),
        (MULTI, {"analyzer_params": {"type": "english"}}, "analyzer params should be none"),
    ],
)
def test_bad_multi_analyzer_params(client: MilvusClient, name: str, multi: dict, text_params: dict, message: str) -> None:
    with pytest.raises(MilvusException, match=message) as err:
        client.create_collection(name, schema=multi_schema(client, multi, **text_params))
    assert err.value.code == 1100
