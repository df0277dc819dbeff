"""Cases of the query file of Milvus's MilvusClient suite that Shoal answered differently.

Wording and codes read from Milvus's proxy (task_query.go, task.go `isIgnoreGrowing`,
util.go output fields) and planner (`VisitTerm`, value casts).
"""

from __future__ import annotations

from milvus_errors import fails
from pymilvus import MilvusClient


def test_query_input_checks_as_milvus(client: MilvusClient, made: str) -> None:
    client.insert(made, [{"id": i, "vector": [float(i), 0.0, 0.0, 1.0], "tag": f"t{i}"} for i in range(5)])
    # an offset without a limit is ignored, so an empty filter still needs a limit
    fails(lambda: client.query(made, filter="", offset=1), 1100, "empty expression should be used with limit")
    assert len(client.query(made, filter="id >= 0", offset=1)) == 5
    fails(lambda: client.query(made, filter="id in 1"), 1100, "the right-hand side of 'in' must be a list, but got: 1")
    fails(lambda: client.query(made, filter="id inn [1, 2]"), 1100, "invalid expression: id inn [1, 2]")
    fails(lambda: client.query(made, filter="id in not [1, 2]"), 1100, "not can only apply on boolean")
    fails(lambda: client.query(made, filter="id >= 0", limit=" "), 1100, "limit [] is invalid")
    fails(lambda: client.query(made, filter="id >= 0", limit=1, offset=" "), 1100, "offset [] is invalid")
    fails(lambda: client.query(made, filter="id in ['a']"), 1100,
          "value 'string_val:\"a\"' in list cannot be casted to Int64")
    # a name on the right-hand side is not a constant (Milvus's VisitTerm names it as written)
    fails(lambda: client.query(made, filter="id in (mn)"), 1100, "value '(mn)' in list cannot be a non-const expression")
    fails(lambda: client.query(made, filter="id in [1.0, 2.0]"), 1100,
          "value 'float_val:1' in list cannot be casted to Int64")
    fails(lambda: client.query(made, filter="id in [1, 2.0]"), 1100,
          "value 'float_val:2' in list cannot be casted to Int64")
    for bad in (["*%"], ["**"], ["*", "@"]):  # the quick-setup collection has the dynamic field on
        fails(lambda bad=bad: client.query(made, filter="id >= 0", output_fields=bad), 1100,
              f"parse output field name failed: {bad[-1]}")
    assert client.query(made, filter="id == 1", output_fields=["tag"])[0]["tag"] == "t1"
    for growing in (2.3, "str"):
        fails(lambda growing=growing: client.query(made, filter="id >= 0", ignore_growing=growing), 1100,
              "parse ignore growing field failed")
        fails(lambda growing=growing: client.search(made, data=[[0.0, 0.0, 0.0, 1.0]], limit=1,
                                                    search_params={"ignore_growing": growing}), 1100,
              "parse ignore growing field failed")
    assert len(client.query(made, filter="id >= 0", ignore_growing=False)) == 5


def test_narrow_int_out_of_range_is_refused_as_milvus(client: MilvusClient, name: str) -> None:
    from pymilvus import DataType

    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    schema.add_field("i8", DataType.INT8)
    schema.add_field("i16", DataType.INT16)
    client.create_collection(name, schema=schema)
    try:
        row = {"id": 1, "v": [0.1, 0.2], "i8": 127, "i16": -32768}
        assert client.insert(name, [row])["insert_count"] == 1
        fails(lambda: client.insert(name, [{**row, "i8": 128}]), 1100, "the 0th element (128) out of range: [-128, 127]")
        fails(lambda: client.insert(name, [row, {**row, "id": 2, "i16": 32768}]), 1100,
              "the 1th element (32768) out of range: [-32768, 32767]")
    finally:
        client.drop_collection(name)


def test_query_rows_come_back_in_primary_key_order(client: MilvusClient, made: str) -> None:
    """Milvus merges its segments' results by primary key (upsert's `same_pk_concurrently` reads
    `res[i]` by position): over sealed and growing segments, partitions and upserts alike."""
    from pymilvus import DataType

    client.create_partition(made, "p1")
    client.insert(made, [{"id": i, "vector": [float(i), 0.0, 0.0, 1.0]} for i in (9, 7, 5)])
    client.flush(made)
    client.insert(made, [{"id": i, "vector": [float(i), 0.0, 0.0, 1.0]} for i in (8, 2)], partition_name="p1")
    client.insert(made, [{"id": i, "vector": [float(i), 0.0, 0.0, 1.0]} for i in (6, 1)])
    client.upsert(made, [{"id": 9, "vector": [0.0, 0.0, 0.0, 1.0], "tag": "new"}])
    rows = client.query(made, filter="id >= 0", output_fields=["tag"])
    assert [r["id"] for r in rows] == [1, 2, 5, 6, 7, 8, 9]
    assert rows[-1]["tag"] == "new"
    assert [r["id"] for r in client.query(made, filter="id > 1", limit=3)] == [2, 5, 6]
    assert [r["id"] for r in client.query(made, filter="id > 1", limit=2, offset=2)] == [6, 7]

    schema = client.create_schema()
    schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=16)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    name = f"{made}_s"
    client.create_collection(name, schema=schema)
    try:
        client.insert(name, [{"pk": k, "v": [0.1, 0.2]} for k in ("b", "é", "a")])
        client.flush(name)
        client.insert(name, [{"pk": k, "v": [0.1, 0.2]} for k in ("B", "ab")])
        index = client.prepare_index_params()
        index.add_index("v", index_type="FLAT", metric_type="L2")
        client.create_index(name, index)
        client.load_collection(name)
        assert [r["pk"] for r in client.query(name, filter="pk != ''")] == ["B", "a", "ab", "b", "é"]
    finally:
        client.drop_collection(name)


def test_a_read_names_a_missing_partition_before_it_checks_the_load(client: MilvusClient, made: str) -> None:
    """The collection suite's `load_collection_after_partition_operations`: Milvus resolves the
    partition names of a read first, then checks what is loaded."""
    client.create_partition(made, "p1")
    client.create_partition(made, "p2")
    client.release_collection(made)
    fails(lambda: client.query(made, filter="id >= 0", partition_names=["p1", "p2"]), 101, "collection not loaded")
    client.drop_partition(made, "p1")
    fails(lambda: client.query(made, filter="id >= 0", partition_names=["p1", "p2"]), 1100,
          "partition name p1 not found")
    fails(lambda: client.search(made, data=[[0.0, 0.0, 0.0, 1.0]], limit=1, partition_names=["p1"]), 1100,
          "partition name p1 not found")
    client.load_collection(made)
    assert client.query(made, filter="id >= 0", partition_names=["p2"]) == []
