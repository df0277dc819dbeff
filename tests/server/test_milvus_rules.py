"""Inputs Milvus refuses, and answers whose shape or wording must be Milvus's, through real pymilvus.

Codes and messages follow Milvus's proxy and its own MilvusClient test suite.
"""

from __future__ import annotations

import pytest
from milvus_errors import fails
from pymilvus import DataType, MilvusClient


@pytest.mark.parametrize("word", ["like", "and", "in", "true", "json_contains", "NULL", "exists"])
def test_a_filter_keyword_is_no_field_name(client: MilvusClient, name: str, word: str) -> None:
    schema = MilvusClient.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field(word, DataType.INT64)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=4)
    fails(lambda: client.create_collection(name, schema=schema), 1701, f"{word} is keyword in milvus")


def test_dimension_one_is_refused(client: MilvusClient, name: str) -> None:
    schema = MilvusClient.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=1)
    fails(
        lambda: client.create_collection(name, schema=schema), 1100,
        "invalid dimension: 1. should be in range 2 ~ 32768",
    )


def test_a_bm25_function_needs_an_analyzed_varchar_input(client: MilvusClient, name: str) -> None:
    from pymilvus import Function, FunctionType

    schema = MilvusClient.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("text", DataType.VARCHAR, max_length=64)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(Function("bm25", FunctionType.BM25, input_field_names=["text"], output_field_names=["sparse"]))
    fails(lambda: client.create_collection(name, schema=schema), 1100, "enable_analyzer")
    assert not client.has_collection(name)


@pytest.mark.parametrize("bad", ["12-s", "a b", "(mn)"])
def test_names_are_checked_on_every_call(client: MilvusClient, made: str, bad: str) -> None:
    invalid = f"Invalid collection name: {bad}"
    for call in (
        lambda: client.has_collection(bad),
        lambda: client.load_collection(bad),
        lambda: client.release_collection(bad),
        lambda: client.insert(bad, [{"id": 1, "vector": [0.0] * 4}]),
        lambda: client.create_alias(bad, "a_valid_alias"),
        lambda: client.describe_collection(bad),
    ):
        assert fails(call, 1100, invalid).endswith(": invalid parameter")
    fails(lambda: client.create_alias(made, bad), 1100, f"Invalid collection alias: {bad}")
    if bad != "12-s":  # Milvus lets a partition name lead with a digit and carry "-"
        fails(lambda: client.create_partition(made, bad), 1100, f"Invalid partition name: {bad}")
    # Milvus's reads look the name up first
    fails(
        lambda: client.search(bad, data=[[0.0] * 4], limit=1), 100,
        f"collection not found[database=default][collection={bad}]",
    )
    fails(lambda: client.query(bad, filter="id > 0"), 100, "collection not found[database=default]")


def test_describe_counts_the_default_partition_and_has_an_update_timestamp(client: MilvusClient, made: str) -> None:
    info = client.describe_collection(made)
    assert info["num_partitions"] == 1
    before = info["update_timestamp"]
    assert before >= info["created_timestamp"] > 0
    client.alter_collection_properties(made, properties={"collection.ttl.seconds": 60})
    assert client.describe_collection(made)["update_timestamp"] > before
    client.create_partition(made, "p1")
    assert client.describe_collection(made)["num_partitions"] == 2


def test_create_partition_twice_and_drop_of_a_missing_alias_succeed(client: MilvusClient, made: str) -> None:
    client.create_partition(made, "p1")
    client.create_partition(made, "p1")
    assert client.list_partitions(made) == ["_default", "p1"]
    client.drop_alias("no_such_alias")


def test_default_resource_group_users_and_roles_answer(client: MilvusClient, made: str) -> None:
    assert client.list_resource_groups() == ["__default_resource_group"]
    group = client.describe_resource_group("__default_resource_group")
    assert group.name == "__default_resource_group" and group.capacity > 0
    fails(lambda: client.describe_resource_group("rg_missing"), 300, "resource group not found")
    assert sorted(client.list_roles()) == ["admin", "public"]
    assert client.list_users() == ["root"]
    assert client.describe_user("root")["roles"] == ("admin",)


def test_an_unknown_or_misconfigured_reranker_is_refused(client: MilvusClient, made: str) -> None:
    from pymilvus import AnnSearchRequest, RRFRanker, WeightedRanker

    client.insert(made, [{"id": i, "vector": [float(i)] * 4} for i in range(5)])
    reqs = [AnnSearchRequest([[0.0] * 4], "vector", {}, 3), AnnSearchRequest([[1.0] * 4], "vector", {}, 3)]
    fails(lambda: client.hybrid_search(made, reqs, WeightedRanker(0.5, 2.0), limit=3), 1100, "weight")
    fails(lambda: client.hybrid_search(made, reqs, WeightedRanker(0.5), limit=3), 1100, "weights")
    fails(lambda: client.hybrid_search(made, reqs, RRFRanker(k=-1), limit=3), 1100, "k should be in range")
    assert len(client.hybrid_search(made, reqs, RRFRanker(), limit=3)[0]) == 3


def test_a_filter_that_cannot_be_planned_is_worded_as_milvus(client: MilvusClient, made: str) -> None:
    message = fails(lambda: client.query(made, filter="id == "), 1100, "failed to create query plan: ")
    assert message.endswith(": invalid parameter")
    fails(lambda: client.search(made, data=[[0.0] * 4], filter="id in", limit=1), 1100, "failed to create query plan")


def test_search_params_of_the_index_are_type_checked_before_any_segment_is_indexed(
    client: MilvusClient, made: str
) -> None:
    client.insert(made, [{"id": i, "vector": [float(i)] * 4} for i in range(5)])  # growing: no index built yet
    search = lambda params: client.search(made, data=[[0.0] * 4], limit=3, search_params={"params": params})  # noqa: E731
    fails(lambda: search({"ef": "abc"}), 1100, "param 'ef' (abc) should be an integer")
    fails(lambda: search({"ef": 2}), 1100, "ef(2) should be larger than k(3)")
    assert len(search({"ef": 16})[0]) == 3
