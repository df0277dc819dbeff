"""Connecting, health, metrics, databases and RPCs Shoal does not implement."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request

import grpc
import pytest
from conftest import ROOT, Target
from pymilvus import MilvusClient, MilvusException, connections, db, utility
from pymilvus.grpc_gen import milvus_pb2, milvus_pb2_grpc


def test_connect_version_and_health(uri: str) -> None:
    client = MilvusClient(uri=uri)
    assert client.get_server_version()
    connections.connect(alias="basics", uri=uri)
    try:
        assert utility.get_server_version(using="basics")
        assert isinstance(utility.list_collections(using="basics"), list)
    finally:
        connections.disconnect("basics")
    client.close()


def test_connect_with_host_and_port(target_server: Target) -> None:
    connections.connect(alias="hp", host="127.0.0.1", port=str(target_server.port))
    try:
        assert utility.get_server_version(using="hp")
    finally:
        connections.disconnect("hp")


def test_healthz_and_metrics_over_http(target_server: Target, client: MilvusClient, name: str) -> None:
    with urllib.request.urlopen(f"{target_server.http}/healthz", timeout=5) as r:
        assert r.status == 200 and r.read() == b"OK"
    client.create_collection(name, dimension=2)
    client.insert(name, [{"id": 1, "vector": [0.0, 1.0]}, {"id": 2, "vector": [1.0, 0.0]}])
    client.search(name, data=[[0.0, 1.0]], limit=1)
    with pytest.raises(MilvusException):
        client.describe_collection("missing_" + name)
    with urllib.request.urlopen(f"{target_server.http}/metrics", timeout=5) as r:  # the proxy's own, in a cluster
        text = r.read().decode()
    assert 'shoal_grpc_requests_total{code="0",method="Insert"}' in text
    assert 'shoal_grpc_requests_total{code="100",method="DescribeCollection"}' in text
    assert 'shoal_grpc_request_seconds_bucket{code="0",le="0.5",method="Search"}' in text
    assert "shoal_inserted_rows_total" in text and "shoal_search_requests_total" in text
    inserted = [line for line in text.splitlines() if line.startswith("shoal_inserted_rows_total")]
    assert float(inserted[0].split()[-1]) >= 2


def test_databases(uri: str, name: str) -> None:
    client = MilvusClient(uri=uri)
    dbname = "db_" + name
    client.create_database(dbname)
    assert dbname in client.list_databases()
    assert client.describe_database(dbname)["name"] == dbname
    other = MilvusClient(uri=uri, db_name=dbname)
    other.create_collection(name, dimension=3)
    assert other.list_collections() == [name]
    assert name not in client.list_collections()
    client.use_database(dbname)
    assert client.has_collection(name)
    client.use_database("default")
    with pytest.raises(MilvusException):
        client.drop_database(dbname)  # not empty
    other.drop_collection(name)
    client.drop_database(dbname)
    assert dbname not in client.list_databases()
    with pytest.raises(MilvusException) as e:
        MilvusClient(uri=uri, db_name=dbname).list_collections()
    assert e.value.code == 800
    other.close()
    client.close()


def test_orm_database_api(uri: str, name: str) -> None:
    connections.connect(alias="orm_db", uri=uri)
    try:
        db.create_database("orm_" + name, using="orm_db")
        assert "orm_" + name in db.list_database(using="orm_db")
        db.drop_database("orm_" + name, using="orm_db")
    finally:
        connections.disconnect("orm_db")


def test_unimplemented_rpcs_answer_code_10(target_server: Target) -> None:
    import grpc

    with grpc.insecure_channel(f"127.0.0.1:{target_server.port}") as ch:
        stub = milvus_pb2_grpc.MilvusServiceStub(ch)
        reply = stub.CreateResourceGroup(milvus_pb2.CreateResourceGroupRequest(resource_group="rg"))
        assert reply.code == 10 and "not supported" in reply.reason
        reply = stub.GetReplicas(milvus_pb2.GetReplicasRequest(collectionID=1))
        assert reply.status.code == 100  # answered now (tests/server/test_replicas.py): no such collection
        assert [r.status.code for r in stub.DumpMessages(milvus_pb2.DumpMessagesRequest())] == [10]
        with pytest.raises(grpc.RpcError) as e:  # its reply type has no Status to carry code 10
            list(stub.CreateReplicateStream(iter([milvus_pb2.ReplicateRequest()])))
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
        health = stub.CheckHealth(milvus_pb2.CheckHealthRequest())
        assert health.isHealthy
        states = stub.GetComponentStates(milvus_pb2.GetComponentStatesRequest())
        assert states.state.state_code == 1
        metrics = stub.GetMetrics(milvus_pb2.GetMetricsRequest(request='{"metric_type": "system_info"}'))
        assert metrics.status.code == 0 and json.loads(metrics.response)["name"] == "shoal"


def test_cluster_roles_without_etcd_exit_with_status_2(tmp_path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "shoal.cli", "run", "--role", "query", "--data", str(tmp_path)],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env={"PYTHONPATH": str(ROOT / "node")},
    )
    assert out.returncode == 2
    assert "role query needs --etcd and --kafka" in out.stderr


def test_async_client(uri: str, name: str) -> None:
    import asyncio

    from pymilvus import AsyncMilvusClient

    async def script() -> tuple[list, list]:
        client = AsyncMilvusClient(uri=uri)
        await client.create_collection(name, dimension=2, consistency_level="Strong")
        await client.insert(name, [{"id": 1, "vector": [0.0, 1.0]}, {"id": 2, "vector": [1.0, 0.0]}])
        hits = await client.search(name, data=[[0.0, 1.0]], limit=1)
        rows = await client.query(name, filter="id > 1")
        await client.close()
        return hits, rows

    hits, rows = asyncio.run(script())
    assert hits[0][0]["id"] == 1 and [r["id"] for r in rows] == [2]


def test_idle_client_keepalive_pings_are_accepted(uri: str) -> None:
    """pymilvus pings every 10 s while idle; a gRPC server with default settings answers
    the third such ping with GOAWAY "too_many_pings" and drops the connection. Shoal must
    keep an idle, pinging connection open (here at a faster cadence, so the test is short)."""
    target = uri.removeprefix("http://")
    options = [("grpc.keepalive_time_ms", 1500), ("grpc.keepalive_timeout_ms", 1000),
               ("grpc.keepalive_permit_without_calls", 1), ("grpc.http2.max_pings_without_data", 0)]
    states: list[grpc.ChannelConnectivity] = []
    with grpc.insecure_channel(target, options=options) as channel:
        grpc.channel_ready_future(channel).result(timeout=10)
        channel.subscribe(states.append, try_to_connect=False)
        time.sleep(8)  # five pings, no calls
        channel.unsubscribe(states.append)
    assert states and all(s is grpc.ChannelConnectivity.READY for s in states), states
