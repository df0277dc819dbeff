"""Requests no well-behaved client sends: empty, malformed, contradictory. The server
answers each with a status (never a dropped call) and keeps serving."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from conftest import Target
from google.protobuf import symbol_database
from pymilvus import MilvusClient
from pymilvus.grpc_gen import common_pb2, milvus_pb2, milvus_pb2_grpc, schema_pb2

SERVICE = milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"]


@pytest.fixture()
def stub(target_server: Target) -> Iterator[milvus_pb2_grpc.MilvusServiceStub]:
    with grpc.insecure_channel(f"127.0.0.1:{target_server.port}") as ch:
        yield milvus_pb2_grpc.MilvusServiceStub(ch)


def _status(reply: object) -> common_pb2.Status:
    if isinstance(reply, common_pb2.Status):
        return reply
    for f in reply.DESCRIPTOR.fields:
        if f.message_type is not None and f.message_type.full_name == common_pb2.Status.DESCRIPTOR.full_name:
            return getattr(reply, f.name)
    raise AssertionError(f"{type(reply).__name__} has no status")


def test_every_unary_rpc_answers_an_empty_request(stub: milvus_pb2_grpc.MilvusServiceStub, uri: str) -> None:
    answered = 0
    for method in SERVICE.methods:
        if method.client_streaming or method.server_streaming:
            continue
        request = symbol_database.Default().GetSymbol(method.input_type.full_name)()
        try:
            reply = getattr(stub, method.name)(request, timeout=20)
        except grpc.RpcError as e:
            # only replies that have no Status field may say "unimplemented" the gRPC way
            assert e.code() == grpc.StatusCode.UNIMPLEMENTED, (method.name, e)
            continue
        if method.name in ("Connect", "GetVersion", "CheckHealth", "AllocTimestamp", "GetComponentStates",
                           "ListDatabases", "ShowCollections", "GetMetrics", "DescribeDatabase", "ListAliases"):
            assert _status(reply).code == 0, method.name
        answered += 1
    assert answered > 130
    client = MilvusClient(uri=uri)
    assert client.get_server_version()
    client.close()


def test_malformed_writes_and_reads(stub: milvus_pb2_grpc.MilvusServiceStub, client: MilvusClient, name: str) -> None:
    client.create_collection(name, dimension=2, consistency_level="Strong")
    client.create_collection(name + "_s", schema=_varchar_schema(client), index_params=_flat(client, "v"))

    def insert(*fields: schema_pb2.FieldData, rows: int = 1, coll: str = name) -> common_pb2.Status:
        return stub.Insert(milvus_pb2.InsertRequest(collection_name=coll, fields_data=fields, num_rows=rows)).status

    pk = schema_pb2.FieldData(type=5, field_name="id")
    pk.scalars.long_data.data.append(1)
    vec = schema_pb2.FieldData(type=101, field_name="vector")
    vec.vectors.dim = 2
    vec.vectors.float_vector.data.extend([0.0, 1.0])
    assert insert(pk, vec, rows=0).code == 1100
    assert insert(pk, vec, rows=3).code == 1100
    zero_dim = schema_pb2.FieldData(type=101, field_name="vector")
    zero_dim.vectors.float_vector.data.extend([0.0, 1.0])
    assert insert(pk, zero_dim).code == 1100
    wrong_type = schema_pb2.FieldData(type=21, field_name="id")
    wrong_type.scalars.string_data.data.append("one")
    assert insert(wrong_type, vec).code == 1100
    bad_json = schema_pb2.FieldData(type=23, field_name="$meta", is_dynamic=True)
    bad_json.scalars.json_data.data.append(b"{not json")
    assert insert(pk, vec, bad_json).code == 1100
    assert insert(pk, vec, pk).code == 1100  # the same field twice

    search = milvus_pb2.SearchRequest(collection_name=name, placeholder_group=b"\x0a\x03abc", nq=1)
    search.search_params.append(common_pb2.KeyValuePair(key="topk", value="3"))
    assert stub.Search(search).status.code == 1100
    group = common_pb2.PlaceholderGroup(placeholders=[common_pb2.PlaceholderValue(
        tag="$0", type=common_pb2.PlaceholderType.FloatVector, values=[b"\x00\x00\x80\x3f" * 2])])
    search.placeholder_group = group.SerializeToString()
    search.search_params.append(common_pb2.KeyValuePair(key="params", value="{nope"))
    assert stub.Search(search).status.code == 1100
    del search.search_params[1:]
    search.search_params.append(common_pb2.KeyValuePair(key="topk", value="many"))
    assert stub.Search(search).status.code == 1100

    assert stub.CreateCollection(milvus_pb2.CreateCollectionRequest(collection_name="junk", schema=b"\xff\xfe")).code == 1100
    query = milvus_pb2.QueryRequest(collection_name=name + "_s", expr='pk > ""', output_fields=["nope"])
    assert stub.Query(query).status.code != 0
    assert stub.Delete(milvus_pb2.DeleteRequest(collection_name=name, expr="  ")).status.code == 1100
    # With the dynamic field on, an unknown field is a dynamic key: a JSON index, which needs a
    # cast type (Milvus: 1101 "json index must specify cast type").
    assert stub.CreateIndex(milvus_pb2.CreateIndexRequest(collection_name=name, field_name="nope")).code == 1101
    assert client.insert(name, [{"id": 1, "vector": [0.0, 1.0]}])["insert_count"] == 1


def _varchar_schema(client: MilvusClient):  # noqa: ANN202
    from pymilvus import DataType

    schema = client.create_schema()
    schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=8)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    return schema


def _flat(client: MilvusClient, field: str):  # noqa: ANN202
    index = client.prepare_index_params()
    index.add_index(field, index_type="FLAT", metric_type="L2")
    return index


def test_varchar_primary_keys(client: MilvusClient, name: str) -> None:
    client.create_collection(name, schema=_varchar_schema(client), index_params=_flat(client, "v"),
                             consistency_level="Strong")
    res = client.insert(name, [{"pk": "a", "v": [0.0, 1.0]}, {"pk": "b", "v": [1.0, 0.0]}])
    assert res["ids"] == ["a", "b"]
    assert client.get(name, ids=["b"])[0]["pk"] == "b"
    hits = client.search(name, data=[[1.0, 0.0]], limit=1)
    assert hits[0][0]["pk"] == "b"  # hits are keyed by the primary field's name
    client.delete(name, ids=["a"])
    assert [r["pk"] for r in client.query(name, filter='pk >= ""')] == ["b"]


def test_request_over_64_mb_is_refused_not_fatal(stub: milvus_pb2_grpc.MilvusServiceStub, client: MilvusClient,
                                                  name: str) -> None:
    client.create_collection(name, dimension=2)
    big = schema_pb2.FieldData(type=21, field_name="title")
    big.scalars.string_data.data.append("x" * (65 * 1024 * 1024))
    with pytest.raises(grpc.RpcError) as e:
        stub.Insert(milvus_pb2.InsertRequest(collection_name=name, fields_data=[big], num_rows=1), timeout=60)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert client.insert(name, [{"id": 1, "vector": [0.0, 1.0]}])["insert_count"] == 1
