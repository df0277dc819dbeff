"""The client floor: a Milvus-protocol server that answers every search at once.

``python -m bench.instant --port P`` serves Connect and Search over plain grpcio; each
Search is answered with ``limit`` made-up hits per query vector (ids 0..limit-1) without
looking at the vectors. :class:`InstantProbe` starts it as its own process and calls it with
the unchanged pymilvus ``MilvusClient.search``, exactly as the bench calls Shoal and
milvus-lite: in a loop of its own (:func:`measure_instant`) or beside each query of a system
under test (the runner). That figure is what pymilvus (request building, result parsing)
plus gRPC cost, the part of a server's latency that no server can remove.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent import futures
from typing import Any

import grpc
import numpy as np
from pymilvus import MilvusClient
from pymilvus.grpc_gen import common_pb2, milvus_pb2, schema_pb2

from bench.config import TOP_K
from bench.systems.servers import free_port
from shoal.server import KEEPALIVE_POLICY

SERVICE = "milvus.proto.milvus.MilvusService"


def _limit(request: milvus_pb2.SearchRequest) -> int:
    params = {kv.key: kv.value for kv in request.search_params}
    raw = params.get("topk") or params.get("limit") or json.loads(params.get("params") or "{}").get("topk", TOP_K)
    return int(raw)


def _search(request: milvus_pb2.SearchRequest, context: grpc.ServicerContext) -> milvus_pb2.SearchResults:
    nq, k = max(1, int(request.nq)), _limit(request)
    data = schema_pb2.SearchResultData(num_queries=nq, top_k=k, topks=[k] * nq, primary_field_name="id")
    data.ids.int_id.data.extend(list(range(k)) * nq)
    data.scores.extend([0.5] * (nq * k))
    return milvus_pb2.SearchResults(status=common_pb2.Status(), results=data)


def _connect(request: milvus_pb2.ConnectRequest, context: grpc.ServicerContext) -> milvus_pb2.ConnectResponse:
    return milvus_pb2.ConnectResponse(status=common_pb2.Status(), identifier=1)


def milvus_handlers(search: Any = _search, connect: Any = _connect) -> grpc.GenericRpcHandler:
    """Search and Connect of MilvusService served by `search` and `connect` (plain or async
    functions: the instant answers by default)."""
    methods = {
        "Search": grpc.unary_unary_rpc_method_handler(
            search, milvus_pb2.SearchRequest.FromString, milvus_pb2.SearchResults.SerializeToString
        ),
        "Connect": grpc.unary_unary_rpc_method_handler(
            connect, milvus_pb2.ConnectRequest.FromString, milvus_pb2.ConnectResponse.SerializeToString
        ),
    }
    return grpc.method_handlers_generic_handler(SERVICE, methods)


def serve(port: int) -> None:
    # pymilvus pings every 10 s while idle: accept those pings as Shoal does (else GOAWAY).
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=10), options=KEEPALIVE_POLICY)
    server.add_generic_rpc_handlers((milvus_handlers(),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print(f"instant Milvus serving on {port}", flush=True)
    server.wait_for_termination()


class InstantProbe:
    """The instant server process and a pymilvus client; ``probe(queries)`` is one search."""

    def __init__(self) -> None:
        port = free_port()
        self._proc = subprocess.Popen([sys.executable, "-m", "bench.instant", "--port", str(port)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            self._client = _client_for(f"http://127.0.0.1:{port}", self._proc)
        except BaseException:
            self._stop()
            raise

    def __call__(self, queries: np.ndarray) -> list[list[int]]:
        res = self._client.search("bench", data=[v for v in queries], limit=TOP_K, anns_field="vec",
                                  search_params=_PARAMS, filter="", output_fields=[])
        return [[int(hit["id"]) for hit in hits] for hits in res]

    def close(self) -> None:
        self._client.close()
        self._stop()

    def _stop(self) -> None:
        self._proc.terminate()
        self._proc.wait(timeout=10)


_PARAMS = {"metric_type": "L2", "params": {}}


def _client_for(uri: str, proc: subprocess.Popen | None = None) -> MilvusClient:
    # Generous: on a loaded 2-core machine the server's imports alone can take a minute.
    deadline = time.monotonic() + 300
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the instant server exited with {proc.returncode} before serving {uri}")
        try:
            return MilvusClient(uri=uri, timeout=30)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def measure_instant(dim: int, rounds: int, batch: int = 100) -> dict[str, float]:
    """pymilvus search latency (nq=1, ms) and throughput (nq=``batch``, q/s) against the instant server."""
    from bench.measure import round_trips  # the client side only: the instant server stays bare

    rng = np.random.default_rng(0)
    queries = rng.standard_normal((max(rounds, batch), dim)).astype(np.float32)
    probe = InstantProbe()
    try:
        stats = round_trips(lambda i: probe(queries[i : i + 1]), rounds)
        batches = max(5, rounds // 20)
        t0 = time.perf_counter()
        for _ in range(batches):
            probe(queries[:batch])
        batch_qps = batches * batch / (time.perf_counter() - t0)
    finally:
        probe.close()
    return {"instant_p50_ms": stats["p50_ms"], "instant_p99_ms": stats["p99_ms"],
            "instant_mean_ms": stats["mean_ms"], "instant_batch_qps": batch_qps}


def main() -> None:
    parser = argparse.ArgumentParser(description="a Milvus-protocol server that answers searches at once")
    parser.add_argument("--port", type=int, required=True)
    serve(parser.parse_args().port)


if __name__ == "__main__":
    main()
