"""Milvus 2.6 features as its user guide shows them: full-text search (BM25, text_match,
phrase_match, run_analyzer, the icu and lindera analyzers, the synonym filter, the
language_identifier tokenizer, multi-analyzer fields), TIMESTAMPTZ and GEOMETRY fields, nullable vectors, IVF_RABITQ,
JSON-path, ARRAY and NGRAM indexes, boost rankers and query ORDER BY.

Plain pymilvus code; a client without a feature's API (older pymilvus) skips that test.
"""

from __future__ import annotations

import numpy as np
import pytest
from pymilvus import DataType, MilvusClient

feature = pytest.mark.feature

DOCS = [
    "Vector databases store embeddings for similarity search",
    "Full text search ranks documents with BM25",
    "The quick brown fox jumps over the lazy dog",
    "Milvus supports dense and sparse vectors",
    "BM25 scores depend on term frequency and document length",
]


def _needs(*names: str) -> None:
    import pymilvus

    for name in names:
        if not (hasattr(DataType, name) or hasattr(pymilvus, name)):
            pytest.skip(f"this pymilvus has no {name}")


def _fulltext(client: MilvusClient, name: str, match: bool = False) -> None:
    from pymilvus import Function, FunctionType

    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("text", DataType.VARCHAR, max_length=1000, enable_analyzer=True, enable_match=match)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(Function(name="text_bm25", function_type=FunctionType.BM25,
                                 input_field_names=["text"], output_field_names=["sparse"]))
    index = client.prepare_index_params()
    index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                    params={"inverted_index_algo": "DAAT_MAXSCORE", "bm25_k1": 1.2, "bm25_b": 0.75})
    client.create_collection(name, schema=schema, index_params=index)
    client.insert(name, [{"id": i, "text": t} for i, t in enumerate(DOCS)])


@feature("fulltext.bm25")
def test_full_text_search(client: MilvusClient, name: str) -> None:
    _needs("Function", "FunctionType")
    _fulltext(client, name)
    hits = client.search(name, data=["BM25 term frequency"], anns_field="sparse", limit=3, output_fields=["text"])[0]
    assert hits[0]["id"] == 4 and {h["id"] for h in hits} <= {1, 4}


@feature("fulltext.text_match")
def test_text_match(client: MilvusClient, name: str) -> None:
    _needs("Function", "FunctionType")
    _fulltext(client, name, match=True)
    rows = client.query(name, filter="TEXT_MATCH(text, 'fox vectors')", output_fields=["id"])
    assert sorted(r["id"] for r in rows) == [2, 3]


@feature("fulltext.phrase_match")
def test_phrase_match(client: MilvusClient, name: str) -> None:
    _needs("Function", "FunctionType")
    _fulltext(client, name, match=True)
    rows = client.query(name, filter="PHRASE_MATCH(text, 'brown fox')", output_fields=["id"])
    assert [r["id"] for r in rows] == [2]


@feature("fulltext.run_analyzer")
def test_run_analyzer(client: MilvusClient) -> None:
    if not hasattr(client, "run_analyzer"):
        pytest.skip("this pymilvus has no run_analyzer")
    out = client.run_analyzer("The Quick Brown Fox", analyzer_params={"type": "standard"})
    assert list(out.tokens) == ["the", "quick", "brown", "fox"]


@feature("fulltext.icu_lindera")
def test_icu_and_lindera_analyzers(client: MilvusClient, name: str) -> None:
    """The guide's Japanese (lindera ipadic) analyzer on a BM25 field, and its ICU tokenizer."""
    _needs("Function", "FunctionType")
    from pymilvus import Function, FunctionType

    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("text", DataType.VARCHAR, max_length=1000, enable_analyzer=True, enable_match=True,
                     analyzer_params={"tokenizer": {"type": "lindera", "dict_kind": "ipadic"}, "filter": ["removepunct"]})
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(Function(name="text_bm25", function_type=FunctionType.BM25,
                                 input_field_names=["text"], output_field_names=["sparse"]))
    index = client.prepare_index_params()
    index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    client.create_collection(name, schema=schema, index_params=index)
    docs = ["東京スカイツリーは東京の新しい電波塔です。", "京都の寺はとても古い。", "東京駅から京都駅まで新幹線で行きます。"]
    client.insert(name, [{"id": i, "text": t} for i, t in enumerate(docs)])
    hits = client.search(name, data=["新幹線"], anns_field="sparse", limit=3)[0]
    assert [h["id"] for h in hits] == [2]
    rows = client.query(name, filter="TEXT_MATCH(text, '京都')", output_fields=["id"])
    assert sorted(r["id"] for r in rows) == [1, 2]
    if hasattr(client, "run_analyzer"):
        out = client.run_analyzer("Привет! Как дела?", analyzer_params={"tokenizer": "icu", "filter": ["removepunct"]})
        assert list(out.tokens) == ["Привет", "Как", "дела"]


def _bm25_collection(client: MilvusClient, name: str, **text_params: object) -> None:
    from pymilvus import Function, FunctionType

    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("language", DataType.VARCHAR, max_length=16, nullable=True)
    schema.add_field("text", DataType.VARCHAR, max_length=1000, enable_analyzer=True, **text_params)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(Function(name="text_bm25", function_type=FunctionType.BM25,
                                 input_field_names=["text"], output_field_names=["sparse"]))
    index = client.prepare_index_params()
    index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    client.create_collection(name, schema=schema, index_params=index)


@feature("fulltext.synonym")
def test_synonym_filter(client: MilvusClient, name: str) -> None:
    """The guide's synonym filter: a mapping rule and an equivalence group, expanded."""
    _needs("Function", "FunctionType")
    analyzer = {"tokenizer": "standard", "filter": ["lowercase", {
        "type": "synonym", "synonyms": ["fast, quick => speedy", "happy, joyful, cheerful"], "expand": True}]}
    _bm25_collection(client, name, enable_match=True, analyzer_params=analyzer)
    docs = ["a speedy train", "a slow boat", "a joyful crowd"]
    client.insert(name, [{"id": i, "text": t} for i, t in enumerate(docs)])
    assert [h["id"] for h in client.search(name, data=["fast"], anns_field="sparse", limit=3)[0]] == [0]
    rows = client.query(name, filter="TEXT_MATCH(text, 'cheerful')", output_fields=["id"])
    assert [r["id"] for r in rows] == [2]


@feature("fulltext.language_identifier")
def test_language_identifier_tokenizer(client: MilvusClient, name: str) -> None:
    """The guide's language_identifier tokenizer: English text stemmed, Chinese cut by jieba."""
    _needs("Function", "FunctionType")
    analyzer = {"tokenizer": {"type": "language_identifier", "identifier": "whatlang", "analyzers": {
        "English": {"type": "english"}, "Mandarin": {"type": "chinese"}, "default": {"tokenizer": "icu"}}}}
    _bm25_collection(client, name, analyzer_params=analyzer)
    docs = ["The cats are running in the garden", "向量数据库支持全文检索", "Where are the running dogs"]
    client.insert(name, [{"id": i, "text": t} for i, t in enumerate(docs)])
    hits = client.search(name, data=["the cats and the dogs are running"], anns_field="sparse", limit=3)[0]
    assert sorted(h["id"] for h in hits) == [0, 2]
    assert [h["id"] for h in client.search(name, data=["数据库"], anns_field="sparse", limit=3)[0]] == [1]


@feature("fulltext.multi_analyzer")
def test_multi_language_analyzers(client: MilvusClient, name: str) -> None:
    """The guide's multi-language analyzers: a row's `language` picks its analyzer, a search names
    the query's with `analyzer_name`."""
    _needs("Function", "FunctionType")
    multi = {"by_field": "language", "alias": {"en": "english"}, "analyzers": {
        "english": {"type": "english"}, "chinese": {"type": "chinese"}, "default": {"tokenizer": "icu"}}}
    _bm25_collection(client, name, multi_analyzer_params=multi)
    rows = [("The cats are running", "english"), ("向量数据库支持全文检索", "chinese"),
            ("running dogs", "en"), ("runs", None)]
    client.insert(name, [{"id": i, "text": t, "language": lang} for i, (t, lang) in enumerate(rows)])
    hits = client.search(name, data=["running"], anns_field="sparse", limit=4,
                         search_params={"metric_type": "BM25", "analyzer_name": "english"})[0]
    assert sorted(h["id"] for h in hits) == [0, 2]  # "run"; row 3 went through icu: "runs"
    hits = client.search(name, data=["数据库"], anns_field="sparse", limit=4,
                         search_params={"metric_type": "BM25", "analyzer_name": "chinese"})[0]
    assert [h["id"] for h in hits] == [1]


@feature("type.timestamptz")
def test_timestamptz(client: MilvusClient, name: str) -> None:
    _needs("TIMESTAMPTZ")
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("ts", DataType.TIMESTAMPTZ)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    index = client.prepare_index_params()
    index.add_index("v", index_type="AUTOINDEX", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index)
    client.insert(name, [{"id": 1, "ts": "2025-01-01T00:00:00Z", "v": [0.0, 0.0]},
                         {"id": 2, "ts": "2025-06-01T12:00:00+08:00", "v": [1.0, 0.0]}])
    rows = client.query(name, filter="ts > ISO '2025-03-01T00:00:00Z'", output_fields=["ts"])
    assert [r["id"] for r in rows] == [2]


@feature("type.geometry")
def test_geometry(client: MilvusClient, name: str) -> None:
    _needs("GEOMETRY")
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("geo", DataType.GEOMETRY)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    index = client.prepare_index_params()
    index.add_index("v", index_type="AUTOINDEX", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index)
    client.insert(name, [{"id": 1, "geo": "POINT (1 1)", "v": [0.0, 0.0]},
                         {"id": 2, "geo": "POINT (9 9)", "v": [1.0, 0.0]}])
    rows = client.query(name, filter="ST_WITHIN(geo, 'POLYGON ((0 0, 5 0, 5 5, 0 5, 0 0))')", output_fields=["geo"])
    assert [r["id"] for r in rows] == [1]


@feature("index.RTREE")
def test_rtree_index(client: MilvusClient, name: str) -> None:
    """The guide's GEOMETRY field with an RTREE index, filtered after a flush (an indexed segment)."""
    _needs("GEOMETRY")
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("geo", DataType.GEOMETRY)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    index = client.prepare_index_params()
    index.add_index("v", index_type="AUTOINDEX", metric_type="L2")
    index.add_index("geo", index_type="RTREE")
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
    client.insert(name, [{"id": i, "geo": f"POINT ({i} {i})", "v": [0.0, 0.0]} for i in range(20)])
    client.flush(name)
    rows = client.query(name, filter="ST_WITHIN(geo, 'POLYGON ((2.5 0, 6 0, 6 6, 2.5 6, 2.5 0))')", output_fields=["id"])
    assert sorted(r["id"] for r in rows) == [3, 4, 5]
    rows = client.query(name, filter="ST_DWITHIN(geo, 'POINT (10 10)', 1.5)", output_fields=["id"])
    assert sorted(r["id"] for r in rows) == [9, 10, 11]


@feature("type.nullable_vector")
def test_nullable_vector(client: MilvusClient, name: str) -> None:
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2, nullable=True)
    index = client.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index)
    client.insert(name, [{"id": 1, "v": [0.0, 0.0]}, {"id": 2, "v": None}])
    assert [h["id"] for h in client.search(name, data=[[0.0, 0.0]], limit=5)[0]] == [1]


@feature("index.IVF_RABITQ")
def test_ivf_rabitq(client: MilvusClient, name: str) -> None:
    data = np.random.default_rng(1).random((500, 32), dtype=np.float32)
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=32)
    index = client.prepare_index_params()
    index.add_index("v", index_type="IVF_RABITQ", metric_type="L2", params={"nlist": 16, "refine": True, "refine_type": "FP32"})
    client.create_collection(name, schema=schema, index_params=index)
    client.insert(name, [{"id": i, "v": data[i].tolist()} for i in range(len(data))])
    hits = client.search(name, data=[data[7].tolist()], limit=5, search_params={"params": {"nprobe": 16, "refine_k": 4}})[0]
    assert hits[0]["id"] == 7


def _json_array(client: MilvusClient, name: str) -> None:
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("meta", DataType.JSON)
    schema.add_field("tags", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=4, max_length=16)
    schema.add_field("title", DataType.VARCHAR, max_length=64)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    index = client.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index)
    client.insert(name, [{"id": i, "meta": {"price": i * 10, "color": "red" if i % 2 else "blue"},
                          "tags": [f"t{i % 3}"], "title": f"title-{i}-{'sale' if i % 4 == 0 else 'new'}",
                          "v": [float(i), 0.0]} for i in range(20)])
    client.release_collection(name)


@feature("index.json_path")
def test_json_path_index(client: MilvusClient, name: str) -> None:
    _json_array(client, name)
    index = client.prepare_index_params()
    index.add_index("meta", index_name="price_idx", index_type="INVERTED",
                    params={"json_path": "meta[\"price\"]", "json_cast_type": "double"})
    client.create_index(name, index)
    client.load_collection(name)
    rows = client.query(name, filter='meta["price"] >= 150', output_fields=["id"])
    assert sorted(r["id"] for r in rows) == [15, 16, 17, 18, 19]


@feature("index.array")
def test_array_index(client: MilvusClient, name: str) -> None:
    _json_array(client, name)
    index = client.prepare_index_params()
    index.add_index("tags", index_type="INVERTED")
    client.create_index(name, index)
    client.load_collection(name)
    rows = client.query(name, filter='array_contains(tags, "t1")', output_fields=["id"])
    assert sorted(r["id"] for r in rows) == [i for i in range(20) if i % 3 == 1]


@feature("index.ngram")
def test_ngram_index(client: MilvusClient, name: str) -> None:
    _json_array(client, name)
    index = client.prepare_index_params()
    index.add_index("title", index_type="NGRAM", params={"min_gram": 2, "max_gram": 3})
    client.create_index(name, index)
    client.load_collection(name)
    rows = client.query(name, filter='title like "%sale%"', output_fields=["id"])
    assert sorted(r["id"] for r in rows) == [0, 4, 8, 12, 16]


@feature("search.boost_ranker")
def test_boost_ranker(client: MilvusClient, name: str) -> None:
    _needs("Function", "FunctionType")
    from pymilvus import Function, FunctionType

    _json_array(client, name)
    client.load_collection(name)
    boost = Function(name="boost", input_field_names=[], function_type=FunctionType.RERANK,
                     params={"reranker": "boost", "filter": "id == 3", "weight": 0.001})
    hits = client.search(name, data=[[5.2, 0.0]], limit=3, ranker=boost)[0]
    assert hits[0]["id"] == 3  # L2 distance 4.84 scaled to 0.00484, ahead of id 5's 0.04


@feature("query.order_by")
def test_query_order_by(client: MilvusClient, name: str) -> None:
    import pymilvus

    if pymilvus.__version__.startswith("2."):
        pytest.skip("pymilvus 2.x does not send order_by_fields")
    _json_array(client, name)
    client.load_collection(name)
    rows = client.query(name, filter="id < 10", output_fields=["id"], limit=3,
                        order_by_fields=[{"field": "id", "order": "desc"}])
    assert [r["id"] for r in rows] == [9, 8, 7]


@feature("search.group_by_json")
def test_group_by_json_path(client: MilvusClient, name: str) -> None:
    from tests.compat.helpers import create_products, l2

    rows = create_products(client, name)
    query = rows[3]["embedding"]
    hits = client.search(name, data=[query], limit=3, group_by_field="metadata['brand']",
                         search_params={"metric_type": "L2"}, output_fields=["metadata"])[0]
    brands = [h["entity"]["metadata"]["brand"] for h in hits]
    assert len(hits) == 3 and len(set(brands)) == 3 and hits[0]["id"] == 3
    best: dict[str, int] = {}
    for r in sorted(rows, key=lambda r: l2(r["embedding"], query)):
        best.setdefault(r["metadata"]["brand"], r["id"])
    assert [h["id"] for h in hits] == list(best.values())[:3]


@feature("type.entity_ttl")
def test_entity_ttl(client: MilvusClient, name: str) -> None:
    _needs("TIMESTAMPTZ")
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("expire_at", DataType.TIMESTAMPTZ, nullable=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    index = client.prepare_index_params()
    index.add_index("v", index_type="AUTOINDEX", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index, properties={"ttl_field": "expire_at"},
                             consistency_level="Strong")
    client.insert(name, [{"id": 1, "expire_at": "2020-01-01T00:00:00Z", "v": [0.0, 0.0]},
                         {"id": 2, "expire_at": "2999-01-01T00:00:00Z", "v": [1.0, 0.0]},
                         {"id": 3, "expire_at": None, "v": [2.0, 0.0]}])
    assert sorted(r["id"] for r in client.query(name, filter="id > 0", output_fields=["id"])) == [2, 3]
    hits = client.search(name, data=[[0.0, 0.0]], limit=3)[0]
    assert sorted(h["id"] for h in hits) == [2, 3]


@feature("type.array_of_structs")
def test_array_of_structs(client: MilvusClient, name: str) -> None:
    """The guide's Array of Structs: chunks with text, a vector and a chapter; HNSW with
    MAX_SIM_COSINE on `chunks[text_vector]`, searched with an EmbeddingList."""
    _needs("STRUCT")
    from pymilvus.client.embedding_list import EmbeddingList

    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("title_vector", DataType.FLOAT_VECTOR, dim=4)
    chunk = client.create_struct_field_schema()
    chunk.add_field("text", DataType.VARCHAR, max_length=100)
    chunk.add_field("text_vector", DataType.FLOAT_VECTOR, dim=4)
    chunk.add_field("chapter", DataType.VARCHAR, max_length=50)
    schema.add_field("chunks", DataType.ARRAY, element_type=DataType.STRUCT, struct_schema=chunk, max_capacity=10)
    index = client.prepare_index_params()
    index.add_index("title_vector", index_type="AUTOINDEX", metric_type="L2")
    index.add_index("chunks[text_vector]", index_type="HNSW", metric_type="MAX_SIM_COSINE",
                    params={"M": 16, "efConstruction": 200})
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
    rows = [
        {"id": 0, "title_vector": [0.1, 0.2, 0.3, 0.4], "chunks": [
            {"text": "economy", "text_vector": [1.0, 0.0, 0.0, 0.0], "chapter": "Economy"},
            {"text": "reading", "text_vector": [0.0, 1.0, 0.0, 0.0], "chapter": "Reading"}]},
        {"id": 1, "title_vector": [0.4, 0.3, 0.2, 0.1], "chunks": [
            {"text": "sounds", "text_vector": [0.0, 0.0, 1.0, 0.0], "chapter": "Sounds"}]},
    ]
    client.insert(name, rows)
    got = client.query(name, filter="id == 0", output_fields=["chunks"])[0]["chunks"]
    assert [c["chapter"] for c in got] == ["Economy", "Reading"]
    query = EmbeddingList()
    query.add([1.0, 0.0, 0.0, 0.0])
    query.add([0.0, 1.0, 0.0, 0.0])
    hits = client.search(name, data=[query], anns_field="chunks[text_vector]", limit=2,
                         search_params={"metric_type": "MAX_SIM_COSINE"})[0]
    assert [h["id"] for h in hits] == [0, 1]
    assert abs(hits[0]["distance"] - 2.0) < 1e-4 and abs(hits[1]["distance"]) < 1e-4


@feature("search.struct_element_level")
def test_struct_element_level_search(client: MilvusClient, name: str) -> None:
    """The guide's element-level search: a plain vector against `chunks[emb]` indexed with
    COSINE; each hit is a Struct element with its zero-based offset; grouped by the primary key."""
    _needs("STRUCT")
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("title_vector", DataType.FLOAT_VECTOR, dim=4)
    chunk = client.create_struct_field_schema()
    chunk.add_field("section", DataType.VARCHAR, max_length=50)
    chunk.add_field("emb", DataType.FLOAT_VECTOR, dim=4)
    schema.add_field("chunks", DataType.ARRAY, element_type=DataType.STRUCT, struct_schema=chunk, max_capacity=10)
    index = client.prepare_index_params()
    index.add_index("title_vector", index_type="AUTOINDEX", metric_type="L2")
    index.add_index("chunks[emb]", index_type="HNSW", metric_type="COSINE", params={"M": 16, "efConstruction": 200})
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
    client.insert(name, [
        {"id": 0, "title_vector": [0.1, 0.2, 0.3, 0.4], "chunks": [
            {"section": "intro", "emb": [0.0, 1.0, 0.0, 0.0]}, {"section": "index", "emb": [1.0, 0.1, 0.0, 0.0]}]},
        {"id": 1, "title_vector": [0.4, 0.3, 0.2, 0.1], "chunks": [
            {"section": "index", "emb": [1.0, 0.0, 0.0, 0.0]}, {"section": "intro", "emb": [0.9, 0.3, 0.0, 0.0]}]},
    ])
    hits = client.search(name, data=[[1.0, 0.0, 0.0, 0.0]], anns_field="chunks[emb]", limit=3,
                         search_params={"metric_type": "COSINE"})[0]
    assert [(h["id"], h.get("offset")) for h in hits] == [(1, 0), (0, 1), (1, 1)]
    hits = client.search(name, data=[[1.0, 0.0, 0.0, 0.0]], anns_field="chunks[emb]", limit=2,
                         filter='element_filter(chunks, $[section] == "intro")', search_params={"metric_type": "COSINE"})[0]
    assert [(h["id"], h.get("offset")) for h in hits] == [(1, 1), (0, 0)]
    hits = client.search(name, data=[[1.0, 0.0, 0.0, 0.0]], anns_field="chunks[emb]", limit=2, group_by_field="id",
                         search_params={"metric_type": "COSINE"})[0]
    assert [(h["id"], h.get("offset")) for h in hits] == [(1, 0), (0, 1)]
