"""Full-text search through real pymilvus: a BM25 function, raw-text search, analyzers,
run_analyzer, text_match and phrase_match.

BM25 scores are checked against a reference computed here in plain Python over the same
small corpus (Lucene's idf, k1 and b from the index), with the rows spread over a sealed,
indexed segment and a growing one: the statistics must be the collection's, not a segment's.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from conftest import Target
from pymilvus import DataType, Function, FunctionType, MilvusClient, MilvusException

CORPUS = [
    "The cat sat on the mat",
    "A dog sat on the log",
    "Cats and dogs are friends",
    "The quick brown fox jumps over the lazy dog",
    "A cat and a cat and a cat",
    "Nothing here matches",
    "the mat was red and the cat was black",
    "dogs chase cats; cats chase mice",
]
K1, B = 1.5, 0.6


def tokens(text: str) -> list[str]:
    """The standard analyzer as documented: words, lower-cased."""
    return [w.lower() for w in re.findall(r"\w+", text)]


def bm25_reference(
    query: str, docs: list[str], k1: float, b: float, tokenize: Callable[[str], list[str]] = tokens
) -> list[float]:
    toks = [tokenize(d) for d in docs]
    n = len(docs)
    avgdl = sum(len(t) for t in toks) / n
    scores = []
    for t in toks:
        tf = Counter(t)
        score = 0.0
        for term in tokenize(query):
            df = sum(1 for other in toks if term in other)
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            f = tf.get(term, 0)
            score += idf * f * (k1 + 1) / (f + k1 * (1 - b + b * len(t) / avgdl))
        scores.append(score)
    return scores


def bm25_schema(client: MilvusClient, analyzer: dict | None = None) -> object:
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    kwargs = {"analyzer_params": analyzer} if analyzer else {}
    schema.add_field("text", DataType.VARCHAR, max_length=1000, enable_analyzer=True, enable_match=True, **kwargs)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(
        Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["text"], output_field_names=["sparse"])
    )
    return schema


@pytest.fixture(scope="module")
def corpus(uri: str) -> Iterator[tuple[MilvusClient, str]]:
    client = MilvusClient(uri=uri)
    name = "fulltext_corpus"
    client.drop_collection(name)
    index = client.prepare_index_params()
    index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25", params={"bm25_k1": K1, "bm25_b": B})
    client.create_collection(name, schema=bm25_schema(client), index_params=index)
    rows = [{"id": i, "text": t} for i, t in enumerate(CORPUS)]
    client.insert(name, rows[:5])
    client.flush(name)  # a sealed, indexed segment...
    client.insert(name, rows[5:])  # ...and a growing one
    yield client, name
    client.drop_collection(name)
    client.close()


@pytest.fixture(scope="module")
def uri(target_server: Target) -> str:
    return target_server.uri


@pytest.mark.parametrize("query", ["cat sat", "dogs chase the cat", "mat", "zebra"])
def test_bm25_scores_match_a_hand_computed_reference(corpus: tuple[MilvusClient, str], query: str) -> None:
    client, name = corpus
    ref = bm25_reference(query, CORPUS, K1, B)
    res = client.search(name, data=[query], anns_field="sparse", limit=len(CORPUS), output_fields=["text"])[0]
    got = {hit["id"]: hit["distance"] for hit in res}
    want = {i: s for i, s in enumerate(ref) if s > 0}
    assert set(got) == set(want)
    for i, s in want.items():
        assert got[i] == pytest.approx(s, rel=1e-4), (i, got[i], s)
    assert [h["distance"] for h in res] == sorted(got.values(), reverse=True)
    assert all(h["entity"]["text"] == CORPUS[h["id"]] for h in res)


def test_bm25_search_with_a_filter_and_outputs(corpus: tuple[MilvusClient, str]) -> None:
    client, name = corpus
    ref = bm25_reference("cat", CORPUS, K1, B)
    res = client.search(name, data=["cat"], anns_field="sparse", limit=2, filter="id >= 4")[0]
    want = sorted((i for i in range(4, len(CORPUS)) if ref[i] > 0), key=lambda i: -ref[i])[:2]
    assert [h["id"] for h in res] == want
    rows = client.query(name, filter="id == 0", output_fields=["*"])
    assert "sparse" not in rows[0] and rows[0]["text"] == CORPUS[0]


def test_text_match_and_phrase_match(corpus: tuple[MilvusClient, str]) -> None:
    client, name = corpus

    def ids(expr: str) -> list[int]:
        return sorted(r["id"] for r in client.query(name, filter=expr, output_fields=["id"]))

    def any_token(query: str) -> list[int]:
        q = set(tokens(query))
        return [i for i, d in enumerate(CORPUS) if q & set(tokens(d))]

    assert ids('text_match(text, "mat fox")') == any_token("mat fox") == [0, 3, 6]
    assert ids('text_match(text, "CAT") and id > 3') == [4, 6]
    assert ids('phrase_match(text, "the cat")') == [0, 6]
    assert ids('phrase_match(text, "cat mat")') == []
    assert ids('phrase_match(text, "cat mat", 3)') == [0]  # cat sat on the mat: 3 tokens between
    with pytest.raises(MilvusException):
        client.query(name, filter='text_match(id, "cat")')


def test_run_analyzer(corpus: tuple[MilvusClient, str]) -> None:
    client, name = corpus
    out = client.run_analyzer(["The Running dogs, and the cats!"], analyzer_params={"type": "english"})
    assert list(out[0].tokens) == ["run", "dog", "cat"]
    custom = {"tokenizer": "whitespace", "filter": ["lowercase", {"type": "length", "max": 4}, {"type": "stop", "stop_words": ["the"]}]}
    out = client.run_analyzer("The Quick brown FOX", analyzer_params=custom)
    assert list(out.tokens) == ["fox"]
    out = client.run_analyzer("Cats sat", collection_name=name, field_name="text")
    assert list(out.tokens) == ["cats", "sat"]


def test_icu_lindera_and_decompounder_run_analyzer(corpus: tuple[MilvusClient, str]) -> None:
    """The outputs Milvus's tokenizer and filter pages show for the same params and text."""
    client, _ = corpus
    out = client.run_analyzer("Привет! Как дела?", analyzer_params={"tokenizer": "icu"})
    assert list(out.tokens) == ["Привет", "!", " ", "Как", " ", "дела", "?"]
    out = client.run_analyzer("Привет! Как дела?", analyzer_params={"tokenizer": "icu", "filter": ["removepunct"]})
    assert list(out.tokens) == ["Привет", "Как", "дела"]
    words = ["dampf", "schiff", "fahrt", "brot", "backen", "automat"]
    out = client.run_analyzer("dampfschifffahrt brotbackautomat",
                              analyzer_params={"tokenizer": "standard", "filter": [{"type": "decompounder", "word_list": words}]})
    assert list(out.tokens) == ["dampf", "schiff", "fahrt", "brotbackautomat"]
    ipadic = {"tokenizer": {"type": "lindera", "dict_kind": "ipadic"}}
    out = client.run_analyzer("東京スカイツリーの最寄り駅はとうきょうスカイツリー駅で", analyzer_params=ipadic, with_detail=True)
    assert [t["token"] for t in out.tokens] == ["東京", "スカイ", "ツリー", "の", "最寄り駅", "は", "とう", "きょう", "スカイ", "ツリー", "駅", "で"]
    assert [t["position"] for t in out.tokens] == list(range(12))


# one collection per language: (analyzer_params, documents, query, a word for text_match)
CJK = {
    "japanese": (
        {"tokenizer": {"type": "lindera", "dict_kind": "ipadic"}, "filter": ["removepunct"]},
        ["東京スカイツリーは東京の新しい電波塔です。", "京都の寺はとても古い。", "東京駅から京都駅まで新幹線で行きます。"],
        "東京の新幹線", "京都",
    ),
    "korean": (
        {"tokenizer": {"type": "lindera", "dict_kind": "ko-dic", "filter": [{"kind": "korean_stop_tags", "tags": ["JX", "JKS", "JKB", "JKO", "SF", "SC", "EF"]}]}},
        ["서울은 한국의 수도입니다.", "부산에는 바다가 있습니다.", "서울에서 부산까지 기차를 탑니다."],
        "서울 기차", "부산",
    ),
    "thai": (
        {"tokenizer": "icu", "filter": ["removepunct"]},
        ["ฉันชอบกินข้าวผัด", "แมวนอนบนเสื่อ", "ข้าวผัดกุ้งอร่อยมาก"],
        "ข้าวผัดกุ้ง", "แมว",
    ),
}


@pytest.mark.parametrize("language", sorted(CJK))
def test_bm25_and_text_match_through_icu_and_lindera(client: MilvusClient, name: str, language: str) -> None:
    """BM25 scores against the reference over the analyzer's own tokens (as run_analyzer gives them)."""
    analyzer, docs, query, word = CJK[language]
    client.create_collection(name, schema=bm25_schema(client, analyzer), index_params=bm25_index(client))
    client.insert(name, [{"id": i, "text": d} for i, d in enumerate(docs)])

    def analyze(text: str) -> list[str]:
        return list(client.run_analyzer(text, collection_name=name, field_name="text").tokens)

    assert analyze(docs[0]) == list(client.run_analyzer(docs[0], analyzer_params=analyzer).tokens)
    ref = bm25_reference(query, docs, 1.2, 0.75, analyze)
    hits = client.search(name, data=[query], anns_field="sparse", limit=len(docs))[0]
    want = {i: s for i, s in enumerate(ref) if s > 0}
    assert {h["id"]: h["distance"] for h in hits} == pytest.approx(want, rel=1e-4)
    assert hits[0]["id"] == max(want, key=want.__getitem__)
    matched = sorted(r["id"] for r in client.query(name, filter=f'text_match(text, "{word}")', output_fields=["id"]))
    assert matched == [i for i, d in enumerate(docs) if word in analyze(d)] != []
    client.drop_collection(name)


def bm25_index(client: MilvusClient) -> object:
    index = client.prepare_index_params()
    index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    return index


def test_chinese_analyzer(client: MilvusClient, name: str) -> None:
    import rjieba

    text = "Milvus 是一个向量数据库，支持全文检索！"
    out = client.run_analyzer(text, analyzer_params={"type": "chinese"})
    want = [t for t in rjieba.cut(text) if t.strip() and all(c.isalnum() for c in t)]
    assert list(out.tokens) == want
    client.create_collection(name, schema=bm25_schema(client, {"type": "chinese"}), index_params=bm25_index(client))
    client.insert(name, [{"id": 1, "text": "向量数据库支持全文检索"}, {"id": 2, "text": "今天天气很好"}])
    assert [h["id"] for h in client.search(name, data=["数据库"], anns_field="sparse", limit=5)[0]] == [1]
    client.drop_collection(name)


def test_english_analyzer_stems_queries_and_documents(client: MilvusClient, name: str) -> None:
    client.create_collection(name, schema=bm25_schema(client, {"type": "english"}), index_params=bm25_index(client))
    client.insert(name, [{"id": 1, "text": "running runners run"}, {"id": 2, "text": "a walk in the park"}])
    hits = client.search(name, data=["runs"], anns_field="sparse", limit=5)[0]
    assert [h["id"] for h in hits] == [1]
    client.drop_collection(name)


def test_partial_upsert_keeps_the_bm25_output(client: MilvusClient, name: str) -> None:
    schema = bm25_schema(client)
    schema.add_field("tag", DataType.VARCHAR, max_length=16, nullable=True)
    client.create_collection(name, schema=schema, index_params=bm25_index(client))
    client.insert(name, [{"id": 1, "text": "red apples", "tag": None}, {"id": 2, "text": "green pears", "tag": None}])
    before = client.search(name, data=["apples"], anns_field="sparse", limit=2)[0]
    client.upsert(name, [{"id": 1, "tag": "fruit"}], partial_update=True)
    after = client.search(name, data=["apples"], anns_field="sparse", limit=2, output_fields=["text", "tag"])[0]
    assert [(h["id"], h["distance"]) for h in after] == [(h["id"], h["distance"]) for h in before]
    assert after[0]["entity"] == {"text": "red apples", "tag": "fruit"}
    client.upsert(name, [{"id": 2, "text": "apples and pears"}], partial_update=True)
    assert [h["id"] for h in client.search(name, data=["apples"], anns_field="sparse", limit=2)[0]] == [1, 2]
    client.drop_collection(name)


def test_bad_full_text_requests(client: MilvusClient, name: str) -> None:
    schema = bm25_schema(client)
    client.create_collection(name, schema=schema)
    with pytest.raises(MilvusException, match="output"):
        client.insert(name, [{"id": 1, "text": "x", "sparse": {1: 1.0}}])
    with pytest.raises(MilvusException, match="BM25"):
        index = client.prepare_index_params()
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
        client.create_index(name, index)
    client.drop_collection(name)
    bad = client.create_schema()
    bad.add_field("id", DataType.INT64, is_primary=True)
    bad.add_field("text", DataType.VARCHAR, max_length=100)  # no enable_analyzer
    bad.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    bad.add_function(Function(name="f", function_type=FunctionType.BM25, input_field_names=["text"], output_field_names=["sparse"]))
    with pytest.raises(MilvusException, match="enable_analyzer"):
        client.create_collection(name, schema=bad)
    with pytest.raises(MilvusException, match="dict_kind") as err:
        client.create_collection(name, schema=bm25_schema(client, {"tokenizer": "lindera"}))
    assert err.value.code == 1100


def test_embedding_function_names_the_unreachable_provider(client: MilvusClient, name: str) -> None:
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("text", DataType.VARCHAR, max_length=100)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=4)
    schema.add_function(
        Function(
            name="embed", function_type=FunctionType.TEXTEMBEDDING, input_field_names=["text"],
            output_field_names=["vec"], params={"provider": "openai", "model_name": "text-embedding-3-small"},
        )
    )
    client.create_collection(name, schema=schema)
    with pytest.raises(MilvusException, match="openai") as err:
        client.insert(name, [{"id": 1, "text": "hello"}])
    assert err.value.code == 10
    client.drop_collection(name)
