"""LlamaIndex's Milvus vector store (llama-index-vector-stores-milvus 1.2.0) against
`shoal run`: dense search with metadata filters, get/delete by node and by source document,
and BM25 full-text and hybrid queries through its query modes. Embeddings are given on the
nodes (a hash of the text), so no model is loaded."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from corpus import TEXTS, TOPICS
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)
from llama_index.vector_stores.milvus import MilvusVectorStore
from llama_index.vector_stores.milvus.utils import BM25BuiltInFunction

DIM = 16


def embed(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [b / 255.0 for b in digest[:DIM]]


def texts(nodes: list) -> list[str]:  # type: ignore[type-arg]
    return [n.get_content() for n in nodes]


@pytest.fixture()
def store(uri: str) -> MilvusVectorStore:
    vs = MilvusVectorStore(
        uri=uri, collection_name=f"li_{uuid.uuid4().hex[:8]}", dim=DIM, overwrite=True,
        similarity_metric="L2", consistency_level="Strong", use_async_client=False,
        enable_sparse=True, sparse_embedding_function=BM25BuiltInFunction(),
        hybrid_ranker="RRFRanker", hybrid_ranker_params={"k": 60},
    )
    vs.add([
        TextNode(id_=f"n{i}", text=t, embedding=embed(t), metadata={"topic": TOPICS[i], "n": i},
                 relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=f"doc{i}")})
        for i, t in enumerate(TEXTS)
    ])
    return vs


def test_dense_query_with_filters_get_and_delete(store: MilvusVectorStore) -> None:
    res = store.query(VectorStoreQuery(query_embedding=embed(TEXTS[3]), similarity_top_k=1))
    assert texts(res.nodes) == [TEXTS[3]] and res.ids == ["n3"]

    only_db = MetadataFilters(filters=[MetadataFilter(key="topic", value="databases")])
    res = store.query(VectorStoreQuery(query_embedding=embed(TEXTS[1]), similarity_top_k=5, filters=only_db))
    assert texts(res.nodes)[0] == TEXTS[1] and sorted(res.ids) == ["n1", "n2", "n7"]

    assert sorted(texts(store.get_nodes(node_ids=["n1", "n2"]))) == sorted([TEXTS[1], TEXTS[2]])
    assert sorted(n.node_id for n in store.get_nodes(filters=only_db)) == ["n1", "n2", "n7"]

    store.delete("doc0")  # by source document
    store.delete_nodes(node_ids=["n7"])
    assert store.get_nodes(node_ids=["n0", "n7"]) == []
    res = store.query(VectorStoreQuery(query_embedding=embed(TEXTS[0]), similarity_top_k=8))
    assert "n0" not in res.ids and "n7" not in res.ids and len(res.ids) == 6


def test_full_text_and_hybrid_queries(store: MilvusVectorStore) -> None:
    res = store.query(VectorStoreQuery(query_str="fox", mode=VectorStoreQueryMode.TEXT_SEARCH, similarity_top_k=2))
    assert sorted(res.ids) == ["n0", "n5"]
    res = store.query(VectorStoreQuery(query_str="fox", query_embedding=embed(TEXTS[5]),
                                       mode=VectorStoreQueryMode.HYBRID, similarity_top_k=3))
    assert res.ids[0] == "n5"  # first by both the text and the vector
    assert "n0" in res.ids
