"""Internal RPC between cluster roles: one generic gRPC method carrying (version, method, payload)."""

from shoal.cluster.rpc.wire import PROTOCOL_VERSION, RpcClient, RpcServer, Unavailable

__all__ = ["PROTOCOL_VERSION", "RpcClient", "RpcServer", "Unavailable"]
