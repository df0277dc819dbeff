"""Cases from Milvus's suite files index, query and hybrid_search that Shoal answered differently.

Through pymilvus against the session server; each pins the code and the wording Milvus's
code gives (the suite checks the message as a substring).
"""

from __future__ import annotations

import pytest
from milvus_errors import fails
from pymilvus import DataType, MilvusClient


@pytest.fixture()
def released(client: MilvusClient, name: str):
    """A quick-setup collection (dynamic field on), released and without its vector index."""
    client.create_collection(name, dimension=4, consistency_level="Strong")
    client.release_collection(name)
    client.drop_index(name, "vector")
    yield name
    client.drop_collection(name)


def _index(field: str, **kwargs) -> object:
    params = MilvusClient.prepare_index_params()
    params.add_index(field_name=field, **kwargs)
    return params


def test_create_index_looks_the_collection_up_before_checking_its_name(client: MilvusClient) -> None:
    # Milvus's create-index task resolves the name first: a malformed name is simply not found
    for bad in ("12-s", "(mn)"):
        fails(lambda bad=bad: client.create_index(bad, _index("vector")), 100,
               f"collection not found[database=default][collection={bad}]")


def test_a_loaded_vector_index_cannot_be_dropped(client: MilvusClient, name: str) -> None:
    client.create_collection(name, dimension=4, consistency_level="Strong")
    try:
        message = fails(lambda: client.drop_index(name, "vector"), 1100,
                         "vector index cannot be dropped on loaded collection: ")
        assert message.endswith(": invalid parameter")
    finally:
        client.drop_collection(name)


def test_an_unknown_index_type_is_invalid_in_milvus_form(client: MilvusClient, released: str) -> None:
    expected = "invalid parameter[expected=valid index][actual=invalid index type: {}]"
    message = fails(lambda: client.create_index(released, _index("vector", index_type="12-s", metric_type="L2")),
                     1100, expected.format("12-s"))
    assert message == expected.format("12-s")  # the wrapped form carries no ": invalid parameter" tail
    json_path = {"json_cast_type": "double", "json_path": "my_json['a']"}
    fails(lambda: client.create_index(released, _index("my_json", index_type="(mn)", params=json_path)),
           1100, expected.format("(mn)"))


def test_a_json_index_needs_a_cast_type_but_not_a_path(client: MilvusClient, released: str, name: str) -> None:
    missing = "json index must specify cast type: missing parameter"
    fails(lambda: client.create_index(released, _index("my_json", index_type="INVERTED")), 1101, missing)
    fails(lambda: client.create_index(released, _index("my_json", index_type="INVERTED",
                                                          params={"json_path": "my_json['a']"})), 1101, missing)
    fails(lambda: client.create_index(released, _index("my_json", index_type="TRIE",
                                                          params={"json_cast_type": "DOUBLE", "json_path": "my_json['a']"})),
           1100, "TRIE are only supported on varchar field")
    client.create_index(released, _index("my_json", index_type="INVERTED", params={"json_cast_type": "varchar"}))

    schema = MilvusClient.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=4)
    schema.add_field("doc", DataType.JSON)
    other = f"{name}_j"
    client.create_collection(other, schema=schema)
    try:
        fails(lambda: client.create_index(other, _index("doc", index_type="INVERTED")), 1101, missing)
        # without a path the index covers the whole field
        client.create_index(other, _index("doc", index_type="INVERTED", params={"json_cast_type": "double"}))
    finally:
        client.drop_collection(other)


def test_paths_under_a_dynamic_key_are_named_and_described_as_milvus(client: MilvusClient, released: str) -> None:
    params = MilvusClient.prepare_index_params()
    for path in ("my_json['a']['b']", "my_json['a']", "my_json"):
        params.add_index(field_name="my_json", index_type="INVERTED", params={"json_cast_type": "DOUBLE", "json_path": path})
    client.create_index(released, params)
    assert {"$meta/my_json/a/b", "$meta/my_json/a", "$meta/my_json"} <= set(client.list_indexes(released))
    info = client.describe_index(released, "$meta/my_json/a/b")
    assert (info["field_name"], info["json_path"], info["json_cast_type"]) == ("my_json", "my_json['a']['b']", "DOUBLE")
    client.create_index(released, params)  # the same indexes again: nothing to do


def test_query_and_hybrid_windows_and_counts_answer_as_milvus(client: MilvusClient, name: str) -> None:
    from pymilvus import AnnSearchRequest, RRFRanker

    client.create_collection(name, dimension=4, consistency_level="Strong")
    try:
        client.insert(name, [{"id": i, "vector": [0.1 * i, 0.2, 0.3, 0.4]} for i in range(5)])
        window = "invalid max query result window, "
        fails(lambda: client.query(name, filter="id >= 0", limit=16384, offset=1), 1100,
               window + "(offset+limit) should be in range [1, 16384], but got 16385")
        fails(lambda: client.query(name, filter="id >= 0", limit=2, offset=-1), 1100,
               window + "offset [-1] is invalid, should be gte than 0")
        fails(lambda: client.query(name, filter="id >= 0", limit=-1), 1100,
               window + "limit [-1] is invalid, should be greater than 0")

        def req(limit: int | None = 3, nq: int = 1) -> AnnSearchRequest:
            return AnnSearchRequest(data=[[0.1, 0.2, 0.3, 0.4]] * nq, anns_field="vector", param={}, limit=limit)

        fails(lambda: client.hybrid_search(name, [req(), req()], RRFRanker(), limit=16385), 1100,
               window + "(offset+limit) should be in range [1, 16384], but got 16385")
        fails(lambda: client.hybrid_search(name, [req(16385)], RRFRanker(), limit=3), 1100,
               "topk [16385] is invalid, it should be in range [1, 16384], but got 16385")
        fails(lambda: client.hybrid_search(name, [req(nq=16385)], RRFRanker(), limit=3), 1100,
               "nq [16385] is invalid, nq (number of search vector per search request) should be in range "
               "[1, 16384], but got 16385")
        fails(lambda: client.hybrid_search(name, [req()] * 1025, RRFRanker(), limit=3), 1100,
               "maximum of ann search requests is 1024")
        fails(lambda: client.hybrid_search(name, [], RRFRanker(), limit=3), 1100,
               "nq [0] is invalid, nq (number of search vector per search request) should be in range [1, 16384], but got 0")
        assert len(client.hybrid_search(name, [req(), req()], RRFRanker(), limit=3)[0]) == 3
        # a sub-request without a usable limit takes the outer limit + offset, as in Milvus's proxy
        assert len(client.hybrid_search(name, [req(None), req()], RRFRanker(), limit=4)[0]) == 4
    finally:
        client.drop_collection(name)


def test_a_second_index_on_a_field_or_a_reused_name_answer_as_milvus(client: MilvusClient, released: str) -> None:
    path = {"json_cast_type": "varchar", "json_path": "my_json['a']"}
    client.create_index(released, _index("my_json", index_name="first", index_type="INVERTED", params=path))
    client.create_index(released, _index("my_json", index_name="first", index_type="INVERTED", params=path))
    fails(lambda: client.create_index(released, _index("my_json", index_name="second", index_type="INVERTED",
                                                        params=path)),
          1100, "CreateIndex failed: creating multiple indexes on same field is not supported")
    fails(lambda: client.create_index(released, _index("my_json", index_name="first", index_type="INVERTED",
                                                        params={**path, "json_path": "my_json['b']"})),
          1100, "at most one distinct index is allowed per field")
    client.create_index(released, _index("vector", index_type="FLAT", metric_type="L2"))
    fails(lambda: client.create_index(released, _index("vector", index_name="other", index_type="HNSW", metric_type="L2")),
          1100, "CreateIndex failed: creating multiple indexes on same field is not supported")


def test_index_properties_alter_as_milvus(client: MilvusClient, released: str) -> None:
    # suite index file, `bitmap_alter_offset_cache_param` and the unsupported-property cases
    client.add_collection_field(released, "flag", DataType.BOOL, nullable=True)
    client.create_index(released, _index("flag", index_type="BITMAP", index_name="flag_idx"))
    client.create_index(released, _index("vector", index_type="HNSW", metric_type="L2", params={"M": 8}))
    client.alter_index_properties(released, "flag_idx", properties={"indexoffsetcache.enabled": True})
    assert str(client.describe_index(released, "flag_idx")["indexoffsetcache.enabled"]).lower() == "true"
    client.drop_index_properties(released, "flag_idx", property_keys=["indexoffsetcache.enabled"])
    assert "indexoffsetcache.enabled" not in client.describe_index(released, "flag_idx")
    fails(lambda: client.alter_index_properties(released, "vector", properties={"indexoffsetcache.enabled": True}),
          1100, "invalid offset cache index params: only bitmap index support indexoffsetcache.enabled now")
    fails(lambda: client.alter_index_properties(released, "flag_idx", properties={"indexoffsetcache.enabled": "maybe"}),
          1100, "invalid indexoffsetcache.enabled value: maybe, expected: true, false")
    message = fails(lambda: client.alter_index_properties(released, "vector", properties={"M": 32}),
                    1100, "M is not a configable index proptery")
    assert message.endswith(": invalid parameter")
    client.alter_index_properties(released, "vector", properties={"mmap.enabled": True})
    assert str(client.describe_index(released, "vector")["mmap.enabled"]).lower() == "true"


@pytest.mark.parametrize(("path", "text"), [
    ("1", "cannot parse identifier: 1"), ("1.0", "cannot parse identifier: 1.0"), ("/", "mismatched input '/'"),
])
def test_a_dynamic_keys_json_path_must_be_an_identifier(client: MilvusClient, released: str, path: str, text: str) -> None:
    # the suite's index `json_path_index_invalid_json_path`: Milvus parses the path first (code 65535)
    params = {"json_cast_type": "Double", "json_path": path}
    fails(lambda: client.create_index(released, _index("my_json", index_type="INVERTED", params=params)), 65535, text)
    assert "$meta/my_json" not in client.list_indexes(released)


def test_gpu_index_types_on_int8_vectors_are_unknown_as_in_milvus_cpu_builds(client: MilvusClient, name: str) -> None:
    schema = MilvusClient.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.INT8_VECTOR, dim=8)
    client.create_collection(name, schema=schema)
    for kind in ("GPU_IVF_FLAT", "GPU_IVF_PQ"):
        fails(lambda kind=kind: client.create_index(name, _index("v", index_type=kind, metric_type="L2")),
              1100, f"invalid parameter[expected=valid index][actual=invalid index type: {kind}]")
    client.drop_collection(name)
