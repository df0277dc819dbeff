"""The protocol floor: a bare gRPC unary echo (generic handler, bytes in/out) on loopback.

``python -m bench.echo --port P`` serves; :func:`measure_echo` starts that as its own
process, times round trips of a search-sized payload with a plain grpcio client, and
stops it. floor latency = faiss serial latency + this round trip.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from concurrent import futures

import grpc

from bench.systems.servers import free_port

METHOD = "/bench.Echo/Echo"


def _echo(request: bytes, context: grpc.ServicerContext) -> bytes:
    return request


def serve(port: int) -> None:
    handler = grpc.method_handlers_generic_handler(
        "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(_echo)}
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=10))
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print(f"echo serving on {port}", flush=True)
    server.wait_for_termination()


def measure_echo(payload_bytes: int, rounds: int) -> dict[str, float]:
    """Round-trip latency (ms) of ``rounds`` echoes of ``payload_bytes`` through a real process."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.echo", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=60)
            call = channel.unary_unary(METHOD)
            payload = bytes(payload_bytes)
            for _ in range(min(50, rounds)):
                call(payload)  # warm-up: connection, thread pool
            lat = []
            for _ in range(rounds):
                t0 = time.perf_counter()
                call(payload)
                lat.append((time.perf_counter() - t0) * 1e3)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    lat.sort()
    return {"echo_p50_ms": statistics.median(lat), "echo_p99_ms": lat[int(0.99 * (len(lat) - 1))],
            "echo_mean_ms": statistics.fmean(lat), "echo_payload_bytes": float(payload_bytes),
            "echo_qps": 1e3 / statistics.fmean(lat)}


def main() -> None:
    parser = argparse.ArgumentParser(description="bare gRPC echo server (the protocol floor)")
    parser.add_argument("--port", type=int, required=True)
    serve(parser.parse_args().port)


if __name__ == "__main__":
    main()
