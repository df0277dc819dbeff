"""`shoal run --log-format json`: every line the server writes is one JSON object, a failed call
is logged with the request id the client sent, and `/livez` answers beside `/healthz`."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import grpc
from conftest import ShoalProcess
from pymilvus.grpc_gen import milvus_pb2, milvus_pb2_grpc


def test_json_logs_carry_the_request_id_and_livez_answers(tmp_path: Path) -> None:
    server = ShoalProcess(tmp_path / "data", tmp_path / "server.log", ["--log-format", "json"])
    server.start()  # the harness waits for the stdout announcement, which stays plain text
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
            stub = milvus_pb2_grpc.MilvusServiceStub(ch)
            reply = stub.DescribeCollection(milvus_pb2.DescribeCollectionRequest(collection_name="missing"),
                                            metadata=[("x-request-id", "req-42")], timeout=60)
            assert reply.status.code == 100
            stub.DescribeCollection(milvus_pb2.DescribeCollectionRequest(collection_name="missing2"), timeout=60)
        for path in ("/livez", "/healthz"):
            with urllib.request.urlopen(f"{server.http}{path}", timeout=60) as r:
                assert r.status == 200 and r.read() == b"OK"
    finally:
        assert server.stop() == 0
    lines = [json.loads(ln) for ln in server.log_path.read_text().splitlines()
             if ln.startswith("{")]
    shoal_lines = [ln for ln in lines if ln["logger"].startswith("shoal")]
    assert any("listening" in ln["message"] for ln in shoal_lines)
    failed = [ln for ln in shoal_lines if "DescribeCollection answered code 100" in ln["message"]]
    assert [ln.get("request_id") for ln in failed][0] == "req-42"
    generated = failed[1]["request_id"]
    assert len(generated) == 16 and generated != "req-42"
    assert all({"time", "level", "logger", "message"} <= set(ln) for ln in lines)
