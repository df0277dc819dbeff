"""Search and search-iterator cases from Milvus's own MilvusClient suite that Shoal answered differently.

Each test pins the code and wording of Milvus's filter planner (`planparserv2`), through
pymilvus; the suite checks the message as a substring.
"""

from __future__ import annotations

import pytest
from milvus_errors import fails
from pymilvus import DataType, MilvusClient

_Q = [[0.1, 0.2, 0.3, 0.4]]


@pytest.fixture()
def fixed(client: MilvusClient, name: str):
    """No dynamic field: a vector, a nullable INT64 array, a JSON field and a float."""
    schema = client.create_schema(enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=4)
    schema.add_field("arr", DataType.ARRAY, element_type=DataType.INT64, max_capacity=4, nullable=True)
    schema.add_field("j", DataType.JSON)
    schema.add_field("f", DataType.FLOAT)
    index = client.prepare_index_params()
    index.add_index("vec", metric_type="COSINE")
    client.create_collection(name, schema=schema, index_params=index)
    client.insert(name, [{"id": i, "vec": [0.1 * (i + 1), 0.2, 0.3, 0.4], "arr": [i], "j": {"a": i}, "f": i * 1.0}
                         for i in range(5)])
    yield name
    client.drop_collection(name)


def test_a_filter_that_is_not_boolean_is_refused(client: MilvusClient, fixed: str, name: str) -> None:
    plan = "failed to create query plan: predicate is not a boolean expression"
    fails(lambda: client.search(fixed, _Q, filter="f"), 1100, f"{plan}: f, data type: Float")
    fails(lambda: client.search(fixed, _Q, filter="j['a']"), 1100, f"{plan}: j['a'], data type: JSON")
    fails(lambda: client.query(fixed, filter="f + 1", limit=3), 1100, f"{plan}: f + 1, data type: Double")
    # With the dynamic field on, a bare name is a key of $meta: still not a boolean.
    dyn = f"{name}_d"
    client.create_collection(dyn, dimension=4)
    try:
        client.insert(dyn, [{"id": 1, "vector": [0.1, 0.2, 0.3, 0.4], "flag": True}])
        fails(lambda: client.search(dyn, _Q, filter="invalidexpr"), 1100,
               f"{plan}: invalidexpr, data type: JSON")
        it = client.search_iterator(dyn, _Q, batch_size=10, filter="flag == true")
        assert [hit["id"] for hit in it.next()] == [1]
        it.close()
    finally:
        client.drop_collection(dyn)
    fails(lambda: client.search(fixed, _Q, filter="1.2"), 1100, f"{plan}: 1.2, data type: Double")
    assert len(client.search(fixed, _Q, filter="f >= 0", limit=10)[0]) == 5


def test_too_many_query_vectors_use_milvus_wording(client: MilvusClient, fixed: str) -> None:
    fails(lambda: client.search(fixed, _Q * 16385), 1100,
           "nq (number of search vector per search request) should be in range [1, 16384]")


def test_null_checks_on_vectors_array_elements_and_missing_fields(client: MilvusClient, fixed: str) -> None:
    for op in ("is null", "IS NOT NULL"):
        fails(lambda op=op: client.search(fixed, _Q, filter=f"vec {op}"), 1100,
               "IsNull/IsNotNull operations are not supported on vector fields")
        fails(lambda op=op: client.search(fixed, _Q, filter=f"arr[0] {op}"), 1100,
               "IsNull/IsNotNull operations are not supported on array element access")
        fails(lambda op=op: client.search(fixed, _Q, filter=f"not_exist_field {op}"), 1100,
               "field not_exist_field not exist")
    assert len(client.query(fixed, filter="arr is not null", limit=10)) == 5
    assert len(client.query(fixed, filter="j['b'] is null", limit=10)) == 5
