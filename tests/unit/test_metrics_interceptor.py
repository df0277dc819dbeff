"""The metrics interceptor counts every call, whether gRPC hands it the same handler each time
(the servicer alone) or a new one per call (the auth and quota interceptors)."""

from typing import Any

import grpc
from pymilvus.grpc_gen import common_pb2

from shoal.api.metrics import Metrics, MetricsInterceptor

METHOD = "/milvus.proto.milvus.MilvusService/Flush"


class _Details:
    method = METHOD


class _Context:
    def invocation_metadata(self) -> tuple:
        return ()


def _handler(code: int) -> Any:
    return grpc.unary_unary_rpc_method_handler(lambda request, context: common_pb2.Status(code=code))


def _count(metrics: Metrics, code: str) -> float:
    value = metrics.registry.get_sample_value("shoal_grpc_requests_total", {"method": "Flush", "code": code})
    return value or 0.0


def test_the_same_handler_is_wrapped_once_and_every_call_counts() -> None:
    metrics = Metrics()
    interceptor = MetricsInterceptor(metrics)
    handler = _handler(0)
    first = interceptor.intercept_service(lambda d: handler, _Details())
    for _ in range(3):
        wrapped = interceptor.intercept_service(lambda d: handler, _Details())
        assert wrapped is first
        wrapped.unary_unary(common_pb2.Status(), _Context())
    assert _count(metrics, "0") == 3


def test_a_new_handler_per_call_is_wrapped_anew() -> None:
    metrics = Metrics()
    interceptor = MetricsInterceptor(metrics)
    for code in (0, 5, 5):
        wrapped = interceptor.intercept_service(lambda d, c=code: _handler(c), _Details())
        answer = wrapped.unary_unary(common_pb2.Status(), _Context())
        assert answer.code == code
    assert _count(metrics, "0") == 1
    assert _count(metrics, "5") == 2
