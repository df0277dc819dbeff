"""One generic gRPC method, `/shoal.internal.Node/Call`, between the roles of one cluster.

A request is ``pickle((version, method, args, kwargs))``; the answer is
``pickle((True, result))`` or ``pickle((False, ShoalError))``. Arguments and results are the
engine's own request/response dataclasses, so no second schema has to be kept in step with
them. Pickle is only acceptable because the port is internal to the cluster (roles trust each
other; the Milvus port faces users and speaks protobuf).

Mixed versions during a rolling upgrade: every request names `PROTOCOL_VERSION`. A server
accepts any version in [MIN_VERSION, PROTOCOL_VERSION]; a method it does not know answers
NOT_SUPPORTED (code 10) instead of failing the connection, so a newer caller can fall back.
A change that alters the meaning of an existing method must add a new method name instead.
"""

from __future__ import annotations

import logging
import pickle
import threading
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc

from shoal.errors import Code, ShoalError

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
MIN_VERSION = 1
_METHOD = "/shoal.internal.Node/Call"
_OPTIONS = [
    ("grpc.max_send_message_length", 256 << 20),
    ("grpc.max_receive_message_length", 256 << 20),
    ("grpc.so_reuseport", 0),
]


class Unavailable(ShoalError):
    """The peer cannot be reached, or is not (or no longer) the node for this request."""

    def __init__(self, message: str) -> None:
        super().__init__(Code.UNEXPECTED, message)


def _identity(b: bytes) -> bytes:
    return b


class RpcServer:
    """Serves `handlers[name](*args, **kwargs)` for every name in `handlers`."""

    def __init__(self, host: str, port: int, handlers: dict[str, Callable[..., Any]], workers: int = 16) -> None:
        self.handlers = handlers
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="shoal-rpc"), options=_OPTIONS
        )
        handler = grpc.unary_unary_rpc_method_handler(
            self._call, request_deserializer=_identity, response_serializer=_identity
        )
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("shoal.internal.Node", {"Call": handler}),)
        )
        bind = "[::]" if host in ("0.0.0.0", "::") else host
        self.port = self._server.add_insecure_port(f"{bind}:{port}")
        if self.port == 0:
            raise OSError(f"cannot listen on {host}:{port}")

    def start(self) -> None:
        self._server.start()

    def stop(self, grace: float = 2.0) -> None:
        self._server.stop(grace).wait(grace + 1)

    def _call(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        try:
            version, method, args, kwargs = pickle.loads(request)
            if not MIN_VERSION <= int(version) <= PROTOCOL_VERSION:
                raise ShoalError(Code.NOT_SUPPORTED, f"internal protocol version {version} is not supported")
            fn = self.handlers.get(method)
            if fn is None:
                raise ShoalError(Code.NOT_SUPPORTED, f"internal method {method} is not supported by this node")
            return pickle.dumps((True, fn(*args, **kwargs)), protocol=pickle.HIGHEST_PROTOCOL)
        except ShoalError as e:  # sent as plain values: ShoalError's constructor does not unpickle
            return pickle.dumps((False, (e.code, e.message, isinstance(e, Unavailable))))
        except Exception as e:
            log.exception("internal call failed")
            return pickle.dumps((False, (int(Code.UNEXPECTED), f"internal error: {e!r}", False)))


class RpcClient:
    """A channel to one role; `call` raises the peer's ShoalError, or Unavailable."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._channel = grpc.insecure_channel(address, options=_OPTIONS)
        self._stub = self._channel.unary_unary(_METHOD, request_serializer=_identity, response_deserializer=_identity)
        self._lock = threading.Lock()

    def call(self, method: str, *args: Any, timeout: float = 120.0, **kwargs: Any) -> Any:
        payload = pickle.dumps((PROTOCOL_VERSION, method, args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            answer = self._stub(payload, timeout=timeout)
        except grpc.RpcError as e:
            raise Unavailable(f"{self.address} did not answer {method}: {e.code().name}") from None
        except ValueError as e:  # another thread closed this client (its peer failed): look the peer up again
            raise Unavailable(f"{self.address}: {e}") from None
        ok, value = pickle.loads(answer)
        if ok:
            return value
        code, message, unavailable = value
        raise Unavailable(message) if unavailable else ShoalError(code, message)

    def close(self) -> None:
        self._channel.close()
