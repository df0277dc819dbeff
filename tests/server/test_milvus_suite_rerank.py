"""Rerank functions and search by primary key, as Milvus's own MilvusClient suite expects them.

The model ranker's params are checked as Milvus checks them before it calls the rerank
service (the suite's `TestMilvusClientSearchModelRerankNegative`); only a request that
passes every check needs the service, which no Shoal node reaches (code 10 naming the
provider). Milvus's rerank layer answers code 65535; the suite checks the message as a
substring. A search by primary keys leaves out the keys whose vectors are null.
"""

from __future__ import annotations

import math

import pytest
from milvus_errors import fails
from pymilvus import AnnSearchRequest, DataType, Function, FunctionType, MilvusClient

_ENDPOINT = "http://127.0.0.1:8080"
_TEI = {"reranker": "model", "provider": "tei", "queries": ["test query"], "endpoint": _ENDPOINT}


@pytest.fixture()
def docs(client: MilvusClient, name: str):
    """The suite's model-rerank collection: VarChar documents, an INT64 key, a TIMESTAMPTZ."""
    schema = client.create_schema(enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("doc_id", DataType.VARCHAR, max_length=100)
    schema.add_field("document", DataType.VARCHAR, max_length=1000)
    schema.add_field("event_time", DataType.TIMESTAMPTZ, nullable=True)
    schema.add_field("dense", DataType.FLOAT_VECTOR, dim=4)
    index = client.prepare_index_params()
    index.add_index("dense", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index)
    client.insert(name, [{"id": i, "doc_id": str(i), "document": f"document {i}", "event_time": "2025-01-01T00:00:00",
                          "dense": [0.1 * i, 0.2, 0.3, 0.4]} for i in range(10)])
    yield name
    client.drop_collection(name)


def _search(client: MilvusClient, name: str, params: dict, inputs: tuple[str, ...] = ("document",), nq: int = 1):
    ranker = Function(name="rerank_model", input_field_names=list(inputs), function_type=FunctionType.RERANK,
                      params=params)
    return lambda: client.search(name, [[0.1, 0.2, 0.3, 0.4]] * nq, anns_field="dense", limit=5, ranker=ranker)


def test_a_model_ranker_names_its_first_bad_param_before_the_service(client: MilvusClient, docs: str) -> None:
    for provider in ("invalid_provider", "openai", "huggingface", "", None, 123):
        fails(_search(client, docs, {**_TEI, "provider": provider}), 65535,
              f"rerank_builder: unknown rerank model provider:{provider if provider is not None else 'None'}")
    for endpoint in ("", "invalid_url", "ftp://invalid.com", "localhost", None):
        fails(_search(client, docs, {**_TEI, "endpoint": endpoint}), 65535, "is not a valid http/https link")
    fails(_search(client, docs, {k: v for k, v in _TEI.items() if k != "endpoint"}), 65535,
          "rerank_builder: endpoint: [] is not a valid http/https link")
    for queries in (None, "", 123, {"key": "value"}):
        fails(_search(client, docs, {**_TEI, "queries": queries}), 65535,
              "rerank_builder: parse rerank params [queries] failed")
    fails(_search(client, docs, {**_TEI, "queries": []}), 65535, "rerank_builder: rerank queries must not be empty")
    fails(_search(client, docs, {k: v for k, v in _TEI.items() if k != "queries"}), 65535,
          "rerank_builder: rerank function missing required param: queries")
    fails(_search(client, docs, {**_TEI, "queries": ["query1", "query2", "query3"]}), 65535,
          "model: queries count (3) != nq count (1)")
    fails(_search(client, docs, _TEI, inputs=("id",)), 65535, "model input field id must be VarChar, got Int64")
    fails(_search(client, docs, _TEI, inputs=("nonexistent_field",)), 65535,
          "Function input field not found: nonexistent_field")
    fails(_search(client, docs, _TEI, inputs=("document", "doc_id")), 65535,
          "model reranker requires exactly 1 input field, got 2")


def test_a_model_ranker_that_passes_every_check_names_its_unreachable_provider(
    client: MilvusClient, docs: str
) -> None:
    message = fails(_search(client, docs, {**_TEI, "queries": ["a", "b"]}, nq=2), 10, "its provider 'tei'")
    assert "cannot be reached" in message
    fails(_search(client, docs, {**_TEI, "provider": "cohere"}), 10, "its provider 'cohere'")
    reqs = [AnnSearchRequest([[0.1, 0.2, 0.3, 0.4]], "dense", {}, 3) for _ in range(2)]
    model = Function(name="m", input_field_names=["document"], function_type=FunctionType.RERANK,
                     params={**_TEI, "queries": ["a", "b"]})
    fails(lambda: client.hybrid_search(docs, reqs, model, limit=3), 65535, "model: queries count (2) != nq count (1)")


def test_the_reranker_name_is_checked_first(client: MilvusClient, docs: str) -> None:
    fails(_search(client, docs, {**_TEI, "reranker": ""}), 65535, "rerank_builder: reranker name not specified")
    for kind, said in (("invalid", "invalid"), (None, "none"), (123, "123")):
        fails(_search(client, docs, {**_TEI, "reranker": kind, "provider": "no_such"}), 65535,
              f"rerank_builder: unsupported reranker {said}")


def test_a_decay_ranker_refuses_a_timestamptz_input(client: MilvusClient, docs: str) -> None:
    decay = {"reranker": "decay", "function": "gauss", "origin": 0, "scale": 100, "decay": 0.5}
    fails(_search(client, docs, decay, inputs=("event_time",)), 65535,
          "rerank_builder: decay input field event_time must be numeric, got Timestamptz")
    fails(_search(client, docs, decay, inputs=("document",)), 65535,
          "decay input field document must be numeric, got VarChar")
    fails(_search(client, docs, decay, inputs=("dense",)), 65535, "unsupported field type: FloatVector")


def test_search_by_keys_answers_no_hits_for_the_keys_whose_vectors_are_null(client: MilvusClient, name: str) -> None:
    """The suite's collection `null_vector_field_search` (Milvus master): each null key keeps its
    place in the answer with no hits, also when every key is null."""
    schema = client.create_schema(enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=4, nullable=True)
    schema.add_field("sp", DataType.SPARSE_FLOAT_VECTOR, nullable=True)
    index = client.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    index.add_index("sp", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    client.create_collection(name, schema=schema, index_params=index)
    client.insert(name, [{"id": i, "v": [float(i)] * 4 if i % 2 else None, "sp": {1: 1.0 + i} if i % 2 else None}
                         for i in range(10)])
    for field, best in (("v", [1, 3]), ("sp", [9, 7])):
        hits = client.search(name, ids=[0, 1, 2, 3], anns_field=field, limit=2)
        assert [len(row) for row in hits] == [0, 2, 0, 2]  # keys 0 and 2 have null vectors
        assert [h["id"] for h in hits[1]] == best
        assert [len(row) for row in client.search(name, ids=[0, 2, 4], anns_field=field, limit=2)] == [0, 0, 0]
    client.drop_collection(name)


def test_rrf_and_weighted_rankers_given_as_functions_fuse_a_hybrid_search_as_the_classic_rankers(
    client: MilvusClient, name: str
) -> None:
    from pymilvus import RRFRanker, WeightedRanker

    schema = client.create_schema(enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("a", DataType.FLOAT_VECTOR, dim=4)
    schema.add_field("b", DataType.FLOAT_VECTOR, dim=4)
    index = client.prepare_index_params()
    index.add_index("a", index_type="FLAT", metric_type="COSINE")
    index.add_index("b", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index)
    client.insert(name, [{"id": i, "a": [1.0, i * 0.1, 0.3, 0.2], "b": [i * 0.2, 0.5, 1.0, 0.1]} for i in range(40)])
    reqs = [AnnSearchRequest([[1.0, 0.5, 0.3, 0.2], [0.2, 0.1, 0.9, 0.4]], "a", {}, 12),
            AnnSearchRequest([[2.0, 0.5, 1.0, 0.1], [0.4, 0.5, 1.0, 0.1]], "b", {}, 12)]

    def function(**params: object) -> Function:
        return Function(name="fuse", input_field_names=[], function_type=FunctionType.RERANK, params=params)

    for ranker, classic in (
        (function(reranker="rrf", k=100), RRFRanker(k=100)),
        (function(reranker="rrf"), RRFRanker()),
        (function(reranker="weighted", weights=[0.1, 0.9], norm_score=True), WeightedRanker(0.1, 0.9, norm_score=True)),
        (function(reranker="weighted", weights=[0.7, 0.3]), WeightedRanker(0.7, 0.3, norm_score=False)),
    ):
        got = client.hybrid_search(name, reqs, ranker, limit=8)
        want = client.hybrid_search(name, reqs, classic, limit=8)
        assert [[(h["id"], round(h["distance"], 6)) for h in q] for q in got] == \
            [[(h["id"], round(h["distance"], 6)) for h in q] for q in want]
        assert len(got[0]) == 8
    fails(lambda: client.hybrid_search(name, reqs, function(reranker="weighted"), limit=3), 65535,
          "rerank_builder: weighted reranker requires weights parameter")
    fails(lambda: client.hybrid_search(name, reqs, function(reranker="rrf", k="x"), limit=3), 65535, "x is not a number")
    fails(lambda: client.hybrid_search(name, reqs, function(reranker="weighted", weights=[0.5]), limit=3), 1100,
          "the length of weights param mismatch with ann search requests")
    client.drop_collection(name)


def test_rrf_and_weighted_function_rankers_rescore_a_single_search(client: MilvusClient, name: str) -> None:
    """Milvus's rerank builder takes them for any search: one result list, its order kept."""
    schema = client.create_schema(enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("a", DataType.FLOAT_VECTOR, dim=2)
    index = client.prepare_index_params()
    index.add_index("a", index_type="FLAT", metric_type="COSINE")
    client.create_collection(name, schema=schema, index_params=index)
    client.insert(name, [{"id": i, "a": [1.0, i * 0.1]} for i in range(20)])
    q = [[1.0, 0.0]]

    def fn(**params: object) -> Function:
        return Function(name="fuse", input_field_names=[], function_type=FunctionType.RERANK, params=params)

    plain = client.search(name, q, limit=6)[0]
    rrf = client.search(name, q, limit=6, ranker=fn(reranker="rrf", k=10))[0]
    assert [h["id"] for h in rrf] == [h["id"] for h in plain]
    assert [h["distance"] for h in rrf] == pytest.approx([1 / (10 + r) for r in range(1, 7)])
    paged = client.search(name, q, limit=3, offset=2, ranker=fn(reranker="rrf"))[0]
    assert [h["id"] for h in paged] == [h["id"] for h in plain[2:5]]
    assert [h["distance"] for h in paged] == pytest.approx([1 / 61, 1 / 62, 1 / 63])  # ranks start at the page
    weighted = client.search(name, q, limit=6, ranker=fn(reranker="weighted", weights=[0.5], norm_score=True))[0]
    assert [h["id"] for h in weighted] == [h["id"] for h in plain]
    assert [h["distance"] for h in weighted] == pytest.approx([0.5 * (1 + h["distance"]) / 2 for h in plain], rel=1e-5)
    fails(lambda: client.search(name, q, limit=3, ranker=fn(reranker="weighted", weights=[0.5, 0.5])), 1100,
          "invalid parameter[expected=1][actual=2]")
    client.drop_collection(name)


def test_a_decay_ranker_reorders_only_the_page_after_the_offset(client: MilvusClient, name: str) -> None:
    """Milvus's proxy reduces with the offset first (the search's own order), then reranks the
    `limit` hits left: a decay ranker never pulls a hit of the skipped offset into the page."""
    schema = client.create_schema(enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("t", DataType.INT64)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    index = client.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index)
    client.insert(name, [{"id": i, "t": i, "v": [0.1 * i, 0.0]} for i in range(12)])
    q = [[0.0, 0.0]]
    origin, scale = 10.0, 3.0  # far hits (larger t) decay least
    decay = Function(name="near_ten", input_field_names=["t"], function_type=FunctionType.RERANK,
                     params={"reranker": "decay", "function": "gauss", "origin": origin, "scale": scale})
    plain = client.search(name, q, limit=8, output_fields=["t"])[0]

    def milvus_rule(page: list[dict]) -> list[tuple[int, float]]:
        def score(h: dict) -> float:
            factor = math.exp((h["entity"]["t"] - origin) ** 2 / (scale**2 / math.log(0.5)))
            return factor * (1 - 2 * math.atan(h["distance"]) / math.pi)
        return sorted(((h["id"], score(h)) for h in page), key=lambda p: -p[1])

    for offset, limit in ((0, 5), (2, 3), (3, 5)):
        got = client.search(name, q, limit=limit, offset=offset, ranker=decay)[0]
        want = milvus_rule(plain[offset:offset + limit])
        assert [h["id"] for h in got] == [i for i, _ in want]
        assert [h["distance"] for h in got] == pytest.approx([s for _, s in want], rel=1e-5)
    assert [h["id"] for h in client.search(name, q, limit=3, offset=2, ranker=decay)[0]] == [4, 3, 2]
    client.drop_collection(name)
