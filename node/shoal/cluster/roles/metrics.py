"""`/metrics` of a cluster role (not the proxy, which serves a whole `NodeServer`'s).

Each role reports the Milvus families of the Milvus role it plays, read from its local engine
at scrape time (`MilvusMetrics` gauges, filtered by prefix), beside Shoal's own process
families, its engine's `shoal_engine_*` statistics (as standalone's) and `shoal_role_up`. Like Milvus, every family a node reports carries its `node_id`;
`shoal_role_up` also names the `role_name` (Milvus's label for a node's role).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest

from shoal.api.metrics import EngineStats
from shoal.api.milvus_metrics import MilvusMetrics

# The Milvus families of each Shoal role: the query node serves reads, the streaming node owns
# the WAL and the growing/sealed segments, the coordinator the catalog, loads and index builds.
ROLE_PREFIXES: dict[str, tuple[str, ...]] = {
    "query": ("milvus_querynode_",),
    "streaming": ("milvus_datanode_", "milvus_datacoord_"),
    "coord": ("milvus_rootcoord_", "milvus_querycoord_", "milvus_indexcoord_"),
    "index": ("milvus_indexnode_",),
}


class _Lazy:
    """The role's engine as it is at scrape time (a streaming node has none until it owns the WAL)."""

    def __init__(self, engine: Callable[[], Any]) -> None:
        self._engine = engine

    def gauges(self) -> dict[str, int]:
        engine = self._engine()
        if engine is None:
            raise LookupError("no engine yet")
        return engine.gauges()

    def stats(self) -> dict[str, float]:
        engine = self._engine()
        return {} if engine is None else engine.stats()


def filter_families(text: str, prefixes: tuple[str, ...]) -> str:
    """The families whose name starts with one of `prefixes` and that have samples (the request
    families only the proxy feeds are left out, not shown empty)."""
    blocks: list[list[str]] = []
    for line in text.splitlines(keepends=True):
        if line.startswith("# HELP ") or not blocks:
            blocks.append([])
        blocks[-1].append(line)
    keep: list[str] = []
    for block in blocks:
        name = block[0].split(" ", 3)[2] if block[0].startswith("# ") else block[0].split("{", 1)[0]
        if name.startswith(prefixes) and any(not ln.startswith("#") for ln in block):
            keep.extend(block)
    return "".join(keep)


class RoleMetrics:
    def __init__(self, role: str, node_id: str, engine: Callable[[], Any],
                 extra: Callable[[], str] | None = None) -> None:
        self.role, self.node_id = role, node_id
        self.extra = extra  # a role's own families (the coordinator's balancing decisions)
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.registry.register(EngineStats(_Lazy(engine)))  # shoal_engine_*: the node's own engine
        self._milvus = MilvusMetrics(_Lazy(engine), node_id=node_id)

    def render(self) -> bytes:
        up = (f"# HELP shoal_role_up 1 while this role process serves\n# TYPE shoal_role_up gauge\n"
              f'shoal_role_up{{node_id="{self.node_id}",role_name="{self.role}"}} 1\n')
        milvus = filter_families(self._milvus.render().decode(), ROLE_PREFIXES.get(self.role, ()))
        own = self.extra() if self.extra is not None else ""
        return generate_latest(self.registry) + up.encode() + milvus.encode() + own.encode()
