"""The cluster roles: coord, streaming, query, index and proxy, each one `shoal run --role X`.

They are the standalone engine's components wired over etcd (catalog, registry, ownership),
Kafka (the WAL) and internal gRPC (`shoal.cluster.rpc`). `run_role(cfg)` starts one.
"""

from shoal.cluster.roles.launch import run_role

__all__ = ["run_role"]
