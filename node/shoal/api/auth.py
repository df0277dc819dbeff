"""The gRPC interceptor that enforces authentication and privileges on every RPC.

Installed by `shoal.server` only when `authorization_enabled` is on, so a server without
auth pays nothing. Each call's `authorization` header is checked by
`shoal.security.guard.Guard`, then the request against the RPC's privilege (one table,
`shoal.security.privileges.RPC_NEEDS`). Failures answer as Milvus's proxy does: gRPC
status UNAUTHENTICATED ("auth check failure …") or PERMISSION_DENIED ("PrivilegeX:
permission deny to …"), which pymilvus raises without retrying. The caller's name is
set in `guard.current_user` for the handlers that need it (credential updates).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from shoal.security.guard import AuthError, Guard, current_user

log = logging.getLogger("shoal.auth")
_GRPC_CODE = {"unauthenticated": grpc.StatusCode.UNAUTHENTICATED, "denied": grpc.StatusCode.PERMISSION_DENIED}


def _headers(context: grpc.ServicerContext) -> tuple[str | None, str]:
    auth, db = None, ""
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            auth = value if isinstance(value, str) else value.decode("ascii", "replace")
        elif key == "dbname" and value:
            db = value if isinstance(value, str) else value.decode("utf-8", "replace")
    return auth, db


class AuthInterceptor(grpc.ServerInterceptor):
    def __init__(self, guard: Guard) -> None:
        self._guard = guard

    def _check(self, method: str, request: Any, context: grpc.ServicerContext) -> str:
        header, db = _headers(context)
        try:
            user = self._guard.authenticate(header, context.peer)
            self._guard.authorize(user, method, request, db)
        except AuthError as e:
            log.info("%s refused (%s): %s", method, e.kind, e.message)
            context.abort(_GRPC_CODE[e.kind], e.message)
        return user

    def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Any], details: grpc.HandlerCallDetails
    ) -> Any:
        handler = continuation(details)
        if handler is None:
            return None
        method = details.method.rsplit("/", 1)[-1]
        check = self._check
        if handler.unary_unary is not None:
            inner = handler.unary_unary

            def unary(request: Any, context: grpc.ServicerContext) -> Any:
                token = current_user.set(check(method, request, context))
                try:
                    return inner(request, context)
                finally:
                    current_user.reset(token)

            return grpc.unary_unary_rpc_method_handler(
                unary, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            inner_stream = handler.unary_stream

            def stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                token = current_user.set(check(method, request, context))
                try:
                    yield from inner_stream(request, context)
                finally:
                    current_user.reset(token)

            return grpc.unary_stream_rpc_method_handler(
                stream, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )

        def refuse(request: Any, context: grpc.ServicerContext) -> Any:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not served when authorization is on")

        return grpc.stream_unary_rpc_method_handler(refuse) if handler.stream_unary else \
            grpc.stream_stream_rpc_method_handler(refuse)
