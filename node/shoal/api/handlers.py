"""Error handling and stubs for every MilvusService RPC, generated from the descriptor.

`install_handlers(cls)` wraps each handler a servicer class defines so that a
`ShoalError` becomes a `Status` with its code, a RecursionError (a request nested deeper
than any rule reads) code 1100, and anything else code 65535 (logged with its
traceback), and answers every RPC the class does not define with
code 10 "not supported" instead of gRPC UNIMPLEMENTED. Neighbours: `servicer` (the
handlers), `translate.status`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import symbol_database
from google.protobuf.message import Message
from pymilvus.grpc_gen import common_pb2, milvus_pb2, milvus_pb2_grpc

from shoal.api.translate import status as st
from shoal.api.validate import check_request_names
from shoal.errors import ShoalError, invalid, not_supported

log = logging.getLogger("shoal.api")

SERVICE = milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"]
_BASE = milvus_pb2_grpc.MilvusServiceServicer


def response_class(method_name: str) -> type[Message]:
    out = SERVICE.methods_by_name[method_name].output_type
    return symbol_database.Default().GetSymbol(out.full_name)


def error_response(method_name: str, status: common_pb2.Status) -> Message:
    cls = response_class(method_name)
    if cls is common_pb2.Status:
        return status
    # the status field is not always called `status` (e.g. `alter_status`); an error must
    # never travel in a reply whose status pymilvus cannot see, or it reads as success
    for f in cls.DESCRIPTOR.fields:
        if f.message_type is not None and f.message_type.full_name == common_pb2.Status.DESCRIPTOR.full_name:
            return cls(**{f.name: status})
    return cls()


def _wrap(name: str, fn: Callable[..., Message]) -> Callable[..., Message]:
    @functools.wraps(fn)
    def handler(self: Any, request: Message, context: grpc.ServicerContext) -> Message:
        try:
            check_request_names(name, request)
            return fn(self, request, context)
        except ShoalError as e:
            log.debug("%s failed: %s", name, e.message)
            return error_response(name, st.from_error(e))
        except RecursionError:  # a request nested deeper than any rule reads: the client's mistake
            return error_response(name, st.from_error(invalid(f"{name}: the request is nested too deeply")))
        except Exception as e:  # a bug must not kill the server; the client gets the message
            log.exception("%s raised an unexpected error", name)
            return error_response(name, st.unexpected(e))

    return handler


def _unsupported(name: str) -> Callable[..., Any]:
    method = SERVICE.methods_by_name[name]
    if method.server_streaming:
        # streams answer one message carrying the status when the message has one
        def stream(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
            reply = error_response(name, st.from_error(not_supported(name)))
            if reply.ListFields():
                yield reply
            else:
                context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{name} is not supported by Shoal")

        stream.__name__ = name
        return stream

    def handler(self: Any, request: Message, context: grpc.ServicerContext) -> Message:
        reply = error_response(name, st.from_error(not_supported(name)))
        if not reply.ListFields():  # a reply type without a Status (e.g. Dummy) cannot say "no"
            context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{name} is not supported by Shoal")
        return reply

    handler.__name__ = name
    return handler


def install_handlers(cls: type) -> type:
    """Class decorator: wrap defined handlers, answer undefined ones with code 10."""
    for method in SERVICE.methods:
        name = method.name
        impl = getattr(cls, name, None)
        defined = impl is not None and impl is not getattr(_BASE, name, None)
        setattr(cls, name, _wrap(name, impl) if defined else _unsupported(name))
    return cls
