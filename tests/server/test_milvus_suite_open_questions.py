"""Cases of Milvus's MilvusClient suite (insert, partition, collection, index files) that were
open questions: Shoal now answers as Milvus's code does.

- statistics count written rows (Milvus sums its segments' rows; a deleted or overwritten
  row counts until a compaction rewrites its segment), while reads see one row per key;
- a default value must come in the proto kind of its field (pymilvus sends a plain int as an
  INT64 default, which Milvus's rootcoord refuses for INT8/16/32 and FLOAT fields);
- a new FLAT index on an INT8 vector is refused (Milvus builds INT8 vectors with HNSW only);
- an upsert into an auto_id collection deletes the given keys and writes the rows under new
  auto ids (Milvus's proxy, checkUpsertPrimaryFieldData), answering the new ids.
"""

from __future__ import annotations

import numpy as np
from milvus_errors import fails
from pymilvus import DataType, MilvusClient


def test_row_count_counts_written_rows(client: MilvusClient, made: str) -> None:
    rows = [{"id": i, "vector": [float(i), 0.0, 0.0, 1.0]} for i in range(10)]
    client.insert(made, rows)
    client.insert(made, rows)  # the same keys again
    # no flush: the rows stay in the growing segment, which no automatic compaction rewrites
    assert client.get_collection_stats(made)["row_count"] == 20
    assert client.get_partition_stats(made, "_default")["row_count"] == 20
    # reads see the last write of each key once
    assert client.query(made, filter="", output_fields=["count(*)"])[0]["count(*)"] == 10
    client.delete(made, ids=[0, 1])
    assert client.get_collection_stats(made)["row_count"] == 20  # until a compaction
    assert client.query(made, filter="", output_fields=["count(*)"])[0]["count(*)"] == 8


def test_a_key_repeated_within_one_insert_counts_every_written_row(client: MilvusClient, made: str) -> None:
    # the suite's insert `string_field_is_pk_and_empty` (100 rows with one key): Milvus 100
    rows = [{"id": 7, "vector": [float(i), 0.0, 0.0, 1.0]} for i in range(5)]
    client.insert(made, rows)
    assert client.get_collection_stats(made)["row_count"] == 5
    hits = client.query(made, filter="id == 7", output_fields=["vector"])
    assert [h["vector"][0] for h in hits] == [4.0]  # the last row of the batch
    client.flush(made)  # an automatic compaction may drop the 4 stored-deleted rows from here on
    assert client.query(made, filter="", output_fields=["count(*)"])[0]["count(*)"] == 1


def _with(field: str, dtype: DataType, default: object) -> object:
    schema = MilvusClient.create_schema(enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=4)
    schema.add_field(field, dtype, default_value=default)
    return schema


def test_default_value_kind_must_fit_the_field(client: MilvusClient, name: str) -> None:
    fails(lambda: client.create_collection(name, schema=_with("f", DataType.INT8, 1)), 1100,
          "type (Int8) of field (f) is not equal to the type(DataType_Int64) of default_value")
    fails(lambda: client.create_collection(name, schema=_with("f", DataType.FLOAT, 1)), 1100,
          "type (Float) of field (f) is not equal to the type(DataType_Int64) of default_value")
    fails(lambda: client.create_collection(name, schema=_with("f", DataType.INT8, np.int32(200))), 1100,
          "default value out of range: invalid parameter[200 out of range -128 <= value <= 127]")
    client.create_collection(name, schema=_with("f", DataType.INT16, np.int16(-4)))
    try:
        client.add_collection_field(name, "g", DataType.FLOAT, nullable=True, default_value=0.5)
        fails(lambda: client.add_collection_field(name, "h", DataType.INT32, nullable=True, default_value=5),
              1100, "type (Int32) of field (h) is not equal to the type(DataType_Int64) of default_value")
        got = {f["name"]: f for f in client.describe_collection(name)["fields"]}
        assert got["f"]["default_value"].int_data == -4 and got["g"]["default_value"].float_data == 0.5
    finally:
        client.drop_collection(name)


def test_flat_on_int8_vectors_is_refused(client: MilvusClient, name: str) -> None:
    schema = MilvusClient.create_schema(enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.INT8_VECTOR, dim=4)
    client.create_collection(name, schema=schema)
    try:
        flat = client.prepare_index_params()
        flat.add_index("v", index_type="FLAT", metric_type="L2")
        fails(lambda: client.create_index(name, flat), 1100, "data type Int8Vector can't build with this index FLAT")
        hnsw = client.prepare_index_params()
        hnsw.add_index("v", index_type="HNSW", metric_type="L2", params={"M": 8, "efConstruction": 32})
        client.create_index(name, hnsw)
        client.insert(name, [{"id": i, "v": np.array([i, 0, 0, 1], dtype=np.int8)} for i in range(5)])
        client.load_collection(name)
        hits = client.search(name, data=[np.array([3, 0, 0, 1], dtype=np.int8)], anns_field="v", limit=1)
        assert hits[0][0]["id"] == 3
    finally:
        client.drop_collection(name)


def test_upsert_of_an_auto_id_collection_gives_new_keys(client: MilvusClient, name: str) -> None:
    client.create_collection(name, dimension=4, auto_id=True)
    try:
        old = list(client.insert(name, [{"vector": [1.0, 0.0, 0.0, 0.0]}, {"vector": [0.0, 1.0, 0.0, 0.0]}])["ids"])
        res = client.upsert(name, [{"id": old[0], "vector": [0.0, 0.0, 1.0, 0.0]}, {"id": 12345, "vector": [0.0] * 3 + [1.0]}])
        new = list(res["ids"])
        assert res["upsert_count"] == 2 and len(new) == 2 and not set(new) & {old[0], 12345}
        assert sorted(r["id"] for r in client.query(name, filter="id > 0")) == sorted([old[1], *new])
        assert client.get_collection_stats(name)["row_count"] == 4  # written rows: 2 + 2
    finally:
        client.drop_collection(name)
