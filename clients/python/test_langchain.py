"""LangChain's Milvus vector store (langchain-milvus 0.4.0) against `shoal run`, as its users
write it: dense and hybrid (BM25 built-in function) stores, filtered search, metadata
queries, upsert, delete and a retriever. Deterministic fake embeddings: no model download."""

from __future__ import annotations

import uuid

import pytest
from corpus import TEXTS, TOPICS
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_milvus import BM25BuiltInFunction, Milvus


@pytest.fixture()
def store(uri: str) -> Milvus:
    vs = Milvus(
        embedding_function=DeterministicFakeEmbedding(size=16),
        collection_name=f"lc_{uuid.uuid4().hex[:8]}",
        connection_args={"uri": uri},
        consistency_level="Strong",
        index_params={"index_type": "HNSW", "metric_type": "L2", "params": {"M": 8, "efConstruction": 64}},
        drop_old=True,
    )
    vs.add_texts(TEXTS, metadatas=[{"topic": t, "n": i} for i, t in enumerate(TOPICS)],
                 ids=[f"d{i}" for i in range(len(TEXTS))])
    return vs


def test_dense_search_with_filter_metadata_query_upsert_delete_and_retriever(store: Milvus) -> None:
    assert store.similarity_search(TEXTS[3], k=1)[0].page_content == TEXTS[3]
    hits = store.similarity_search_with_score(TEXTS[1], k=3, expr='topic == "databases"')
    assert [d.page_content for d, _ in hits][0] == TEXTS[1]
    assert all(d.metadata["topic"] == "databases" for d, _ in hits) and len(hits) == 3

    found = store.search_by_metadata('topic == "animals"', limit=10)
    assert sorted(d.page_content for d in found) == sorted([TEXTS[0], TEXTS[5]])

    store.upsert(ids=["d4"], documents=[Document("sourdough needs a starter", metadata={"topic": "food", "n": 4})])
    assert store.similarity_search("sourdough needs a starter", k=1)[0].page_content == "sourdough needs a starter"
    assert store.get_pks("n == 4") == ["d4"]

    store.delete(ids=["d0"])
    assert store.get_pks("n == 0") == []
    assert all(d.page_content != TEXTS[0] for d in store.similarity_search(TEXTS[0], k=8))

    retriever = store.as_retriever(search_kwargs={"k": 2, "expr": "n >= 6"})
    docs = retriever.invoke(TEXTS[6])
    assert docs[0].page_content == TEXTS[6] and all(d.metadata["n"] >= 6 for d in docs)


def test_hybrid_dense_and_bm25_search(uri: str) -> None:
    vs = Milvus(
        embedding_function=DeterministicFakeEmbedding(size=16),
        builtin_function=BM25BuiltInFunction(),
        vector_field=["dense", "sparse"],
        collection_name=f"lc_{uuid.uuid4().hex[:8]}",
        connection_args={"uri": uri},
        consistency_level="Strong",
        drop_old=True,
    )
    vs.add_texts(TEXTS, metadatas=[{"topic": t} for t in TOPICS])
    # weights 0/1: the BM25 side alone decides, so the two fox documents come first
    hits = vs.similarity_search("fox", k=2, ranker_type="weighted", ranker_params={"weights": [0.0, 1.0]})
    assert sorted(d.page_content for d in hits) == sorted([TEXTS[0], TEXTS[5]])
    rrf = vs.similarity_search("protocol", k=3, ranker_type="rrf", ranker_params={"k": 60},
                               expr='topic == "databases"')
    assert rrf and all(d.metadata["topic"] == "databases" for d in rrf)
