"""Random protobuf requests for every unary MilvusService RPC, sent raw to `shoal run`.

hypothesis fills each request message field by field from its descriptor: empty, huge
(70 kB strings), deeply nested JSON (5,000 levels), unknown enum values, NaN, names of
real collections so deep code paths run. Every answer must be a Milvus status that is
not 65535 (or gRPC UNIMPLEMENTED / RESOURCE_EXHAUSTED), within 60 s, and afterwards the
server still serves and a collection in a database no request names holds its rows.

CI runs `SHOAL_FUZZ_EXAMPLES` examples (default 300); a long run by hand:
`SHOAL_FUZZ_EXAMPLES=20000 pytest tests/server/test_fuzz_grpc.py`.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from conftest import ShoalProcess
from google.protobuf import symbol_database
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymilvus import MilvusClient
from pymilvus.grpc_gen import common_pb2, milvus_pb2

EXAMPLES = int(os.environ.get("SHOAL_FUZZ_EXAMPLES", "300"))
SERVICE = milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"]
METHODS = sorted(m.name for m in SERVICE.methods if not m.client_streaming and not m.server_streaming)
KEEP_DB, KEEP, VICTIM = "fuzz_keep_db", "fuzz_keep", "fuzz_victim"
# the RPCs users call most get half the draws, so requests reach deep code paths
CORE = ["Search", "HybridSearch", "Query", "Insert", "Upsert", "Delete", "CreateCollection", "DescribeCollection",
        "AlterCollection", "CreateIndex", "DescribeIndex", "DropIndex", "LoadCollection", "GetLoadState",
        "CreatePartition", "ShowPartitions", "Flush", "GetCollectionStatistics", "CreateAlias", "CreateDatabase",
        "ManualCompaction", "CreateCredential", "CreateRole", "OperatePrivilege", "OperatePrivilegeV2",
        "SelectGrant", "CreatePrivilegeGroup", "OperatePrivilegeGroup"]
TARGET_FIELDS = {"collection_name", "collectionName", "db_name", "field_name", "anns_field"}
STRINGS = st.one_of(
    st.text(max_size=20),
    st.sampled_from([
        "", "*", VICTIM, "default", "id", "vector", "meta", "id > 3", "meta['a'] == 1", "id in [1, 2]",
        "FLAT", "HNSW", "IVF_FLAT", "L2", "COSINE", '{"nprobe": 8}', '{"M": 8, "efConstruction": 64}',
        "a" * 70_000, "[" * 5000 + "]" * 5000, '{"a":' * 5000 + "1" + "}" * 5000, "\x00", "💥", "-1", "1e309",
    ]),
)
INTS = {
    FieldDescriptor.TYPE_INT32: st.integers(-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: st.integers(-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: st.integers(-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: st.integers(-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: st.integers(-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: st.integers(-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: st.integers(0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: st.integers(0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: st.integers(0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: st.integers(0, 2**64 - 1),
}
UNSIGNED = {FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32, FieldDescriptor.TYPE_UINT64,
            FieldDescriptor.TYPE_FIXED64}
SMALL_INTS = st.one_of(st.integers(-2, 20), st.sampled_from([128, 1024, 16384, 2**31 - 1, -(2**31)]))


def _scalar(data: st.DataObject, f: FieldDescriptor) -> Any:
    t = f.type
    if t == FieldDescriptor.TYPE_STRING and f.name in TARGET_FIELDS:
        return data.draw(st.one_of(st.sampled_from([VICTIM, "", "default", "vector", "id", "meta"]), STRINGS))
    if t == FieldDescriptor.TYPE_STRING:
        return data.draw(STRINGS)
    if t == FieldDescriptor.TYPE_BYTES:
        return data.draw(st.one_of(st.binary(max_size=64), st.just(b"\x00" * 70_000),
                                   STRINGS.map(lambda s: s.encode("utf-8", "surrogatepass"))))
    if t == FieldDescriptor.TYPE_BOOL:
        return data.draw(st.booleans())
    if t in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return data.draw(st.floats(width=32 if t == FieldDescriptor.TYPE_FLOAT else 64))
    if t == FieldDescriptor.TYPE_ENUM:
        return data.draw(st.one_of(st.sampled_from([v.number for v in f.enum_type.values]), st.integers(-5, 999)))
    value = data.draw(st.one_of(SMALL_INTS, INTS[t]))
    return abs(value) if t in UNSIGNED else value


def _fill(data: st.DataObject, msg: Any, depth: int) -> None:
    desc: Descriptor = msg.DESCRIPTOR
    for f in desc.fields:
        if not data.draw(st.booleans(), label=f.name):
            continue
        is_map = f.message_type is not None and f.message_type.GetOptions().map_entry
        if is_map:
            key_f, value_f = f.message_type.fields_by_name["key"], f.message_type.fields_by_name["value"]
            target = getattr(msg, f.name)
            for _ in range(data.draw(st.integers(0, 3))):
                key = _scalar(data, key_f)
                if value_f.message_type is None:
                    target[key] = _scalar(data, value_f)
                elif depth > 0:
                    _fill(data, target[key], depth - 1)
        elif f.is_repeated:
            target = getattr(msg, f.name)
            for _ in range(data.draw(st.integers(0, 4))):
                if f.message_type is None:
                    target.append(_scalar(data, f))
                elif depth > 0:
                    _fill(data, target.add(), depth - 1)
        elif f.message_type is not None:
            if depth > 0:
                _fill(data, getattr(msg, f.name), depth - 1)
        else:
            setattr(msg, f.name, _scalar(data, f))


def _status(response: Any) -> common_pb2.Status | None:
    if isinstance(response, common_pb2.Status):
        return response
    for f in response.DESCRIPTOR.fields:
        if f.message_type is not None and f.message_type.full_name == common_pb2.Status.DESCRIPTOR.full_name:
            return getattr(response, f.name)
    return None


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShoalProcess]:
    base = tmp_path_factory.mktemp("shoal-fuzz")
    proc = ShoalProcess(base / "data", base / "server.log")
    proc.start()
    c = MilvusClient(uri=proc.uri)
    c.create_collection(VICTIM, dimension=4)
    c.insert(VICTIM, [{"id": i, "vector": [float(i)] * 4, "meta": {"a": i}} for i in range(20)])
    c.create_database(KEEP_DB)
    c.use_database(KEEP_DB)
    c.create_collection(KEEP, dimension=4)
    c.insert(KEEP, [{"id": i, "vector": [float(i)] * 4} for i in range(50)])
    c.close()
    yield proc
    assert proc.stop() == 0, proc.tail()


@pytest.fixture(scope="module")
def channel(server: ShoalProcess) -> Iterator[grpc.Channel]:
    opts = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
    with grpc.insecure_channel(f"127.0.0.1:{server.port}", options=opts) as ch:
        yield ch


def _call(channel: grpc.Channel, name: str, request: Any) -> Any:
    method = SERVICE.methods_by_name[name]
    out = symbol_database.Default().GetSymbol(method.output_type.full_name)
    rpc = channel.unary_unary(f"/{SERVICE.full_name}/{name}", request_serializer=lambda m: m.SerializeToString(),
                              response_deserializer=out.FromString)
    return rpc(request, timeout=60)


def test_random_requests_get_milvus_answers(server: ShoalProcess, channel: grpc.Channel) -> None:
    answers: Counter[str] = Counter()

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def one(data: st.DataObject) -> None:
        name = data.draw(st.one_of(st.sampled_from(CORE), st.sampled_from(METHODS)), label="rpc")
        method = SERVICE.methods_by_name[name]
        request = symbol_database.Default().GetSymbol(method.input_type.full_name)()
        _fill(data, request, depth=3)
        try:
            response = _call(channel, name, request)
        except grpc.RpcError as e:
            assert e.code() in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.RESOURCE_EXHAUSTED), \
                f"{name}: {e.code()} {e.details()}\n{server.tail(20)}"
            answers[f"grpc {e.code().name}"] += 1
            return
        status = _status(response)
        answers[f"code {status.code if status is not None else 'none'}"] += 1
        if status is not None:
            assert status.code != 65535, f"{name} answered 65535: {status.reason[:300]}"

    one()
    print(f"\nfuzz answers ({EXAMPLES} examples): {dict(answers.most_common())}")
    assert server.proc is not None and server.proc.poll() is None, server.tail()
    c = MilvusClient(uri=server.uri, db_name=KEEP_DB)
    rows = c.query(KEEP, filter="id >= 0", output_fields=["id"], limit=100)
    assert sorted(r["id"] for r in rows) == list(range(50))
    c.close()


def test_json_nested_5000_deep_names_the_field(server: ShoalProcess, channel: grpc.Channel) -> None:
    from pymilvus.grpc_gen import schema_pb2

    deep = b'{"meta":' + b"[" * 5000 + b"]" * 5000 + b"}"
    request = milvus_pb2.InsertRequest(collection_name=VICTIM, num_rows=1, fields_data=[
        schema_pb2.FieldData(field_name="id", type=schema_pb2.DataType.Int64,
                             scalars=schema_pb2.ScalarField(long_data=schema_pb2.LongArray(data=[999]))),
        schema_pb2.FieldData(field_name="vector", type=schema_pb2.DataType.FloatVector, vectors=schema_pb2.VectorField(
            dim=4, float_vector=schema_pb2.FloatArray(data=[0.5] * 4))),
        schema_pb2.FieldData(field_name="$meta", type=schema_pb2.DataType.JSON, is_dynamic=True,
                             scalars=schema_pb2.ScalarField(json_data=schema_pb2.JSONArray(data=[deep]))),
    ])
    status = _call(channel, "Insert", request).status
    assert status.code == 1100, status
    assert "$meta" in status.reason and "nested too deeply" in status.reason
