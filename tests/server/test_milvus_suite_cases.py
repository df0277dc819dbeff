"""Cases from Milvus's own MilvusClient test suite that Shoal answered differently, through pymilvus.

Each test pins the code and wording Milvus's code gives (the suite checks the message as a
substring), so the suite's expectation holds here without the suite.
"""

from __future__ import annotations

from milvus_errors import fails
from pymilvus import MilvusClient


def test_alias_names_are_checked_with_milvus_wording(client: MilvusClient, made: str) -> None:
    fails(lambda: client.create_alias(made, "12-s"), 1100,
           "Invalid collection alias: 12-s. the first character of a collection alias must be an underscore or letter")
    fails(lambda: client.create_alias(made, "a" * 256), 1100,
           "the length of a collection alias must be less than 255 characters")
    fails(lambda: client.alter_alias(made, "n-ame"), 1100,
           "Invalid collection alias: n-ame. collection alias can only contain numbers, letters and underscores")


def test_alias_conflicts_and_duplicates_answer_as_milvus(client: MilvusClient, made: str, name: str) -> None:
    other = f"{name}_o"
    alias = f"{name}_a"
    client.create_collection(other, dimension=4)
    try:
        # an alias named like a collection: 1601, on create, alter and rename
        conflict = f"alias and collection name conflict[database=default][alias={other}]"
        fails(lambda: client.create_alias(made, other), 1601, conflict)
        fails(lambda: client.alter_alias(made, other), 1601, conflict)
        client.create_alias(made, alias)
        client.create_alias(made, alias)  # the same alias of the same collection again succeeds
        fails(lambda: client.create_alias(other, alias), 1602,
               f"{alias} is alias to another collection: {made}")
        fails(lambda: client.rename_collection(other, alias), 1601,
               f"alias and collection name conflict[database=default][alias={alias}]")
        fails(lambda: client.alter_alias("missing_coll", alias), 100, "collection not found[collection=missing_coll]")
        fails(lambda: client.create_collection(alias, dimension=4), 1601,
               f"alias and collection name conflict[database=default][alias={alias}]")
        client.drop_alias(alias)
    finally:
        client.drop_collection(other)


def test_describe_of_a_missing_collection_says_cant_find(client: MilvusClient, name: str) -> None:
    fails(lambda: client.describe_collection(name), 100,
           f"can't find collection[database=default][collection={name}]")
    assert client.has_collection(name) is False


def test_database_rules_answer_as_milvus(client: MilvusClient, uri: str, name: str) -> None:
    for bad in ("12-s", "(mn)", " "):
        fails(lambda bad=bad: client.create_database(bad), 802,
               f"the first character of a database name must be an underscore or letter: "
               f"invalid database name[database={bad}]")
        fails(lambda bad=bad: client.drop_database(bad), 802, f"invalid database name[database={bad}]")
    db = f"d_{name}"
    client.create_database(db)
    try:
        fails(lambda: client.drop_database_properties(db, property_keys=[]), 1100,
               "alter database with empty properties and delete keys, expected to set either properties or delete keys")
        in_db = MilvusClient(uri=uri, db_name=db)
        in_db.create_collection(name, dimension=4)
        fails(lambda: client.drop_database(db), 1100,
               f"database:{db} not empty, must drop all collections before drop database")
        in_db.drop_collection(name)
        in_db.close()
    finally:
        client.drop_database(db)


def test_partition_names_follow_milvus_rule_and_wording(client: MilvusClient, made: str) -> None:
    client.create_partition(made, "1st-part")  # a leading digit and "-" are allowed
    assert client.has_partition(made, "1st-part")
    fails(lambda: client.create_partition(made, "(mn)"), 1100,
           "Invalid partition name: (mn). The first character of a partition name must be an underscore or letter.")
    fails(lambda: client.create_partition(made, "a b"), 1100,
           "Invalid partition name: a b. Partition name can only contain numbers, letters and underscores.")
    fails(lambda: client.create_partition(made, "p" * 256), 1100,
           "The length of a partition name must be less than 255 characters.")


def test_partition_list_limits_and_vector_checks_answer_as_milvus(client: MilvusClient, made: str) -> None:
    fails(lambda: client.release_partitions(made, []), 1100,
           "invalid parameter[expected=any partition][actual=empty partition list]")
    fails(lambda: client.insert(made, [{"id": 1, "vector": [0.0] * 3}]), 1100,
           "of float data should divide the dim(4)")
    index_params = client.prepare_index_params()
    index_params.add_index("vector", index_type="FLAT", metric_type="JACCARD")
    client.release_collection(made)
    client.drop_index(made, "vector")
    fails(lambda: client.create_index(made, index_params), 1100,
           "metric type JACCARD not found or not supported, supported: [")


def test_binary_vector_of_the_wrong_dim_is_refused_with_milvus_wording(client: MilvusClient, name: str) -> None:
    from pymilvus import DataType

    schema = MilvusClient.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("bits", DataType.BINARY_VECTOR, dim=16)
    client.create_collection(name, schema=schema)
    try:
        fails(lambda: client.insert(name, [{"id": 1, "bits": b"\x01"}]), 1100,
               "the num(8) of all bits should divide the dim(16)")
    finally:
        client.drop_collection(name)


def test_reads_word_a_missing_partition_or_vector_field_as_milvus(client: MilvusClient, made: str) -> None:
    client.insert(made, [{"id": 1, "vector": [0.1, 0.2, 0.3, 0.4]}])
    fails(lambda: client.query(made, filter="id > 0", partition_names=["nope"]), 1100,
           "partition name nope not found")
    fails(lambda: client.search(made, data=[[0.1, 0.2, 0.3, 0.4]], limit=1, partition_names=["nope"]), 1100,
           "partition name nope not found")
    fails(lambda: client.search(made, data=[[0.1, 0.2, 0.3, 0.4]], limit=1, anns_field="nonexistent"), 1100,
           "failed to create query plan: failed to get field schema by name: fieldName(nonexistent) not found")


def test_insert_checks_answer_with_milvus_wording(client: MilvusClient, name: str) -> None:
    from pymilvus import DataType

    schema = client.create_schema(auto_id=True)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    schema.add_field("s", DataType.VARCHAR, max_length=3)
    schema.add_field("a", DataType.ARRAY, element_type=DataType.INT64, max_capacity=2)
    client.create_collection(name, schema=schema)
    good = {"v": [0.1, 0.2], "s": "abc", "a": [1]}
    try:
        fails(lambda: client.insert(name, [good, {**good, "v": [float("nan"), 0.0]}]), 1100,
               "value 'NaN' is not a number or infinity")
        fails(lambda: client.insert(name, [good, {**good, "s": "abcd"}]), 1100,
               "length of varchar field s exceeds max length, row number: 1, length: 4, max length: 3")
        fails(lambda: client.insert(name, [good, {**good, "a": [1, 2, 3]}]), 1100,
               "the length (3) of 1th array exceeds max capacity (2)")
        fails(lambda: client.insert(name, [{**good, "id": 7}]), 1100, "more fieldData has pass in")
        assert client.insert(name, [good])["insert_count"] == 1
    finally:
        client.drop_collection(name)


def test_an_empty_or_blank_varchar_key_is_a_key_like_any_other(client: MilvusClient, name: str) -> None:
    from pymilvus import DataType

    schema = client.create_schema()
    schema.add_field("pk", DataType.VARCHAR, max_length=8, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    index = client.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
    try:
        assert client.insert(name, [{"pk": "", "v": [0.1, 0.2]}, {"pk": "  ", "v": [0.3, 0.4]}])["insert_count"] == 2
        assert sorted(r["pk"] for r in client.query(name, filter='pk in ["", "  "]')) == ["", "  "]
    finally:
        client.drop_collection(name)
