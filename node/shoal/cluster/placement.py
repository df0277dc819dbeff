"""Replica groups: which query nodes serve a loaded collection, and in how many groups.

`load_collection(..., replica_number=N)` makes N groups of query nodes, every node in exactly
one group of a collection (the failure domain is the node: two groups never share one). The
coordinator (`roles/coord.py`) is the only writer: one etcd document per loaded collection at
`replicas/<collection id>`, with a version that grows on every change; proxies read it to
spread reads across groups (`proxy_engine.py`) and to answer `GetReplicas`.

In this version every query node holds every sealed segment of the channel (it tails the whole
WAL), so any node of any group answers a read completely: the groups decide where reads go
and which node takes over a failed part, not which rows a node keeps in memory.
"""

from __future__ import annotations

import zlib
from typing import Any

from shoal.engine.replicas import ReplicaGroup, replica_id

PREFIX = "replicas/"


def key(collection_id: int) -> str:
    return f"{PREFIX}{collection_id}"


def node_number(node_id: str) -> int:
    """A query node's numeric id, as Milvus reports node ids (its registration id's hex tail)."""
    tail = node_id.rsplit("-", 1)[-1]
    try:
        return int(tail, 16)
    except ValueError:
        return zlib.crc32(node_id.encode())


def plan(groups: list[list[str]], live: list[str]) -> list[list[str]]:
    """The groups after a change of live nodes: a node keeps its group while it lives (nothing
    moves without a reason), a gone node leaves its group, a new node joins the smallest group,
    and a group left empty takes one node from the largest group that has two or more."""
    alive = set(live)
    out = [[n for n in g if n in alive] for g in groups]
    placed = {n for g in out for n in g}
    for node in sorted(alive - placed):
        min(out, key=len).append(node)
    for group in out:
        if not group:
            donor = max(out, key=len)
            if len(donor) >= 2:
                group.append(donor.pop())
    return [sorted(g) for g in out]


def new_doc(collection_id: int, database: str, name: str, replica_number: int, live: list[str],
            version: int = 0) -> dict[str, Any]:
    groups = plan([[] for _ in range(replica_number)], live)
    return {"collection_id": collection_id, "database": database, "name": name,
            "replica_number": replica_number, "version": version + 1, "groups": groups}


def groups_of(doc: dict[str, Any] | None, num_shards: int = 1) -> list[ReplicaGroup]:
    if doc is None:
        return []
    cid = int(doc["collection_id"])
    return [ReplicaGroup(replica_id=replica_id(cid, i), collection_id=cid,
                         node_ids=[node_number(n) for n in group], num_shards=num_shards)
            for i, group in enumerate(doc["groups"])]
