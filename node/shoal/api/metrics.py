"""Prometheus metrics of one server, and the gRPC interceptor that records them.

Each server owns its own `CollectorRegistry`, so several embedded servers can live in
one process. `/metrics` (`shoal.api.http`) renders the registry. The engine's own
numbers (segments, rows, collections) are read through `engine.stats()` at scrape time
when the engine offers that method.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from shoal.api.milvus_metrics import MilvusMetrics
from shoal.logs import REQUEST_ID

log = logging.getLogger("shoal.api.metrics")


class EngineStats(Collector):
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
        ProcessCollector(registry=self.registry)  # process_resident_memory_bytes etc., for the memory alert
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
            self.registry.register(EngineStats(engine))
        self.milvus = MilvusMetrics(engine)

    def render(self) -> bytes:
        """The `/metrics` text: Shoal's own families, then Milvus's (`milvus_metrics`)."""
        return generate_latest(self.registry) + self.milvus.render()


def _request_id(context: grpc.ServicerContext) -> str:
    """The client's `x-request-id` when it sends one, else a fresh id (for the logs, `shoal.logs`)."""
    for key, value in context.invocation_metadata() or ():
        if key == "x-request-id" and isinstance(value, str) and value:
            return value[:128]
    # only log lines read it: 64 random bits, not uuid4's urandom read and UUID object per call
    return f"{random.getrandbits(64):016x}"


def _status_code(response: Any) -> int:
    status = getattr(response, "status", response)
    code = getattr(status, "code", 0)
    return int(code) if isinstance(code, int) else 0


class MetricsInterceptor(grpc.ServerInterceptor):
    """Counts every unary RPC by method and the Milvus status code it answered, under Shoal's
    and Milvus's names, logs the calls that fail, and gives each call a request id for the logs."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics
        # (method, code) -> its latency and request-count children: `labels()` takes a lock and
        # builds its key on every call; a dict read does not
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}
        self._wrapped: dict[str, tuple[Any, Any]] = {}  # full method -> (inner handler, its wrapper)

    def _record(self, method: str, code: int, seconds: float) -> None:
        children = self._children.get((method, code))
        if children is None:
            children = (self._m.latency.labels(method, str(code)), self._m.requests.labels(method, str(code)))
            self._children[(method, code)] = children
        children[0].observe(seconds)
        children[1].inc()

    def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Any], details: grpc.HandlerCallDetails
    ) -> Any:
        handler = continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        # gRPC asks on every call; the servicer answers a method with the same handler each
        # time (the auth and quota interceptors build new ones), so its wrapper is reused
        cached = self._wrapped.get(details.method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(details.method, handler)
        self._wrapped[details.method] = (handler, wrapped)
        return wrapped

    def _wrap(self, full_method: str, handler: Any) -> Any:
        method = full_method.rsplit("/", 1)[-1]
        inner = handler.unary_unary
        m = self._m

        def timed(request: Any, context: grpc.ServicerContext) -> Any:
            start = time.perf_counter()
            code = -1
            response = None
            token = REQUEST_ID.set(_request_id(context))
            try:
                response = inner(request, context)
                code = _status_code(response)
                if code != 0:
                    log.info("%s answered code %d: %s", method, code, getattr(getattr(response, "status", None),
                                                                              "reason", ""))
                return response
            finally:
                REQUEST_ID.reset(token)
                seconds = time.perf_counter() - start
                self._record(method, code, seconds)
                try:
                    m.milvus.observe(method, request, response, code, seconds)
                except Exception:  # a metric must never fail the call it measures
                    log.exception("recording Milvus metrics of %s failed", method)

        return grpc.unary_unary_rpc_method_handler(
            timed,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
