"""The protocol floor: a bare gRPC unary echo (generic handler, bytes in/out) on loopback.

``python -m bench.echo --port P`` serves; :class:`EchoProbe` starts that as its own
process and sends it search-sized payloads with a plain grpcio client, either in a loop of
its own (:func:`measure_echo`) or one beside each query of a system under test (the runner),
so that both see the same machine. floor latency = faiss serial latency + this round trip.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
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


class EchoProbe:
    """An echo server process and a client to it; ``probe(queries)`` is one round trip."""

    def __init__(self, payload_bytes: int) -> None:
        self.payload = bytes(payload_bytes)
        port = free_port()
        self._proc = subprocess.Popen([sys.executable, "-m", "bench.echo", "--port", str(port)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self._channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        try:
            grpc.channel_ready_future(self._channel).result(timeout=60)
        except BaseException:
            self.close()
            raise
        self._call = self._channel.unary_unary(METHOD)

    def __call__(self, queries: object = None) -> None:
        self._call(self.payload)

    def close(self) -> None:
        self._channel.close()
        self._proc.terminate()
        self._proc.wait(timeout=10)


def measure_echo(payload_bytes: int, rounds: int) -> dict[str, float]:
    """Round-trip latency (ms) of ``rounds`` echoes of ``payload_bytes`` through a real process."""
    from bench.measure import round_trips  # the client side only: the echo server stays bare

    probe = EchoProbe(payload_bytes)
    try:
        stats = round_trips(lambda _: probe(), rounds)
    finally:
        probe.close()
    return {"echo_p50_ms": stats["p50_ms"], "echo_p99_ms": stats["p99_ms"], "echo_mean_ms": stats["mean_ms"],
            "echo_payload_bytes": float(payload_bytes), "echo_qps": 1e3 / stats["mean_ms"]}


def main() -> None:
    parser = argparse.ArgumentParser(description="bare gRPC echo server (the protocol floor)")
    parser.add_argument("--port", type=int, required=True)
    serve(parser.parse_args().port)


if __name__ == "__main__":
    main()
