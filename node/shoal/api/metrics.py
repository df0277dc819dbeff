"""Prometheus metrics of one server, and the gRPC interceptor that records them.

Each server owns its own `CollectorRegistry`, so several embedded servers can live in
one process. `/metrics` (`shoal.api.http`) renders the registry. The engine's own
numbers (segments, rows, collections) are read through `engine.stats()` at scrape time
when the engine offers that method.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class _EngineStats(Collector):
    def __init__(self, engine: Any) -> None:
        self._engine = engine

    def collect(self) -> Any:
        stats_fn = getattr(self._engine, "stats", None)
        if stats_fn is None:
            return
        try:
            stats = stats_fn()
        except Exception:  # a scrape must not fail because the engine is busy closing
            return
        for key, value in sorted(stats.items()):
            name = "shoal_engine_" + "".join(c if c.isalnum() else "_" for c in key)
            yield GaugeMetricFamily(name, f"engine statistic {key}", value=float(value))


class Metrics:
    def __init__(self, engine: Any = None) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "shoal_grpc_requests", "gRPC requests by method and Milvus status code",
            ["method", "code"], registry=self.registry,
        )
        self.latency = Histogram(
            "shoal_grpc_request_seconds", "gRPC request latency by method and Milvus status code",
            ["method", "code"], registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.inserted_rows = Counter(
            "shoal_inserted_rows", "rows acknowledged by Insert and Upsert", registry=self.registry
        )
        self.searches = Counter("shoal_search_requests", "Search and HybridSearch requests", registry=self.registry)
        self.search_nq = Counter("shoal_search_queries", "query vectors searched", registry=self.registry)
        self.queries = Counter("shoal_query_requests", "Query requests", registry=self.registry)
        if engine is not None:
            self.registry.register(_EngineStats(engine))


def _status_code(response: Any) -> int:
    status = getattr(response, "status", response)
    code = getattr(status, "code", 0)
    return int(code) if isinstance(code, int) else 0


class MetricsInterceptor(grpc.ServerInterceptor):
    """Counts every unary RPC by method and the Milvus status code it answered."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Any], details: grpc.HandlerCallDetails
    ) -> Any:
        handler = continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = details.method.rsplit("/", 1)[-1]
        inner = handler.unary_unary
        m = self._m

        def timed(request: Any, context: grpc.ServicerContext) -> Any:
            start = time.perf_counter()
            code = -1
            try:
                response = inner(request, context)
                code = _status_code(response)
                return response
            finally:
                m.latency.labels(method, str(code)).observe(time.perf_counter() - start)
                m.requests.labels(method, str(code)).inc()

        return grpc.unary_unary_rpc_method_handler(
            timed,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
