"""Partitions (manual and partition key) and aliases."""

from __future__ import annotations

import pytest
from pymilvus import MilvusClient, MilvusException

from tests.compat.helpers import create_products, exact_top, product_rows, vectors

feature = pytest.mark.feature


@feature("partition")
def test_partitions_insert_search_load_drop(client: MilvusClient, name: str) -> None:
    create_products(client, name, rows=[])
    client.create_partition(name, "month_2024_01")
    client.create_partition(name, "month_2024_02")
    assert client.has_partition(name, "month_2024_01")
    assert set(client.list_partitions(name)) == {"_default", "month_2024_01", "month_2024_02"}
    jan, feb = product_rows(100), product_rows(100, start=100, seed=1)
    client.insert(name, jan, partition_name="month_2024_01")
    client.insert(name, feb, partition_name="month_2024_02")
    q = vectors(1, seed=8)[0]
    res = client.search(name, data=[q], limit=10, partition_names=["month_2024_02"])
    assert [h["id"] for h in res[0]] == exact_top(feb, q, 10)
    got = client.query(name, filter="id < 300", partition_names=["month_2024_01"], output_fields=["count(*)"])
    assert got[0]["count(*)"] == 100
    client.release_collection(name)
    client.load_partitions(name, ["month_2024_01"])
    res = client.search(name, data=[q], limit=5, partition_names=["month_2024_01"])
    assert all(h["id"] < 100 for h in res[0])
    client.release_partitions(name, ["month_2024_01"])
    client.drop_partition(name, "month_2024_02")
    assert not client.has_partition(name, "month_2024_02")


@feature("partition")
def test_partition_names_follow_milvus_rules(client: MilvusClient, name: str) -> None:
    create_products(client, name)
    # Milvus's validatePartitionTag: the first character a letter, digit or underscore, then
    # letters, digits, underscores or dashes
    with pytest.raises(MilvusException):
        client.create_partition(name, "-2024_01")
    with pytest.raises(MilvusException):
        client.create_partition(name, "2024.01")
    client.create_partition(name, "_2024_01")
    client.create_partition(name, "2024-01")
    assert client.has_partition(name, "_2024_01") and client.has_partition(name, "2024-01")


@feature("partition")
def test_missing_partition_is_an_error(client: MilvusClient, name: str) -> None:
    create_products(client, name)
    with pytest.raises(MilvusException):
        client.search(name, data=[vectors(1)[0]], limit=1, partition_names=["nope"])


@feature("partition_key")
def test_partition_key_routes_and_filters(client: MilvusClient, name: str) -> None:
    rows = create_products(client, name, partition_key=True, num_partitions=16)
    desc = client.describe_collection(name)
    assert any(f.get("is_partition_key") for f in desc["fields"] if f["name"] == "category")
    q = vectors(1, seed=9)[0]
    res = client.search(name, data=[q], limit=5, filter='category == "tools"', output_fields=["category"])
    assert [h["id"] for h in res[0]] == exact_top(rows, q, 5, lambda r: r["category"] == "tools")
    with pytest.raises(MilvusException):
        client.create_partition(name, "manual")


@feature("alias")
def test_alias_lifecycle(client: MilvusClient, name: str) -> None:
    create_products(client, name)
    other = name + "_v2"
    create_products(client, other, product_rows(10, start=1000))
    alias = name + "_alias"
    try:
        client.create_alias(name, alias)
        assert alias in client.list_aliases(name)["aliases"]
        assert client.describe_alias(alias)["collection_name"] == name
        assert client.query(alias, filter="", output_fields=["count(*)"])[0]["count(*)"] == 200
        client.alter_alias(other, alias)
        assert client.query(alias, filter="", output_fields=["count(*)"])[0]["count(*)"] == 10
        client.drop_alias(alias)
        with pytest.raises(MilvusException):
            client.describe_alias(alias)
    finally:
        client.drop_collection(other)
