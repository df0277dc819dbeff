"""Replica groups as `GetReplicas` reports them, and Milvus's rule on how many a load may ask.

A standalone server is one query node: one group holding node 1. A cluster's groups are made
by its coordinator (`shoal.cluster.placement`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shoal.errors import Code, ShoalError

DEFAULT_RESOURCE_GROUP = "__default_resource_group"
STANDALONE_NODE_ID = 1
REPLICA_ID_BASE = 1000  # a group's replicaID: collection id * base + its index + 1 (unique per collection)


@dataclass
class ReplicaGroup:
    replica_id: int
    collection_id: int
    node_ids: list[int] = field(default_factory=list)
    num_shards: int = 1
    resource_group: str = DEFAULT_RESOURCE_GROUP


def replica_id(collection_id: int, index: int) -> int:
    return collection_id * REPLICA_ID_BASE + index + 1


def replica_count(replica_number: int) -> int:
    """What a load's `replica_number` asks for: 0 or less is Milvus's default, 1."""
    return max(1, int(replica_number))


def check_replica_change(current: int, replica_number: int, partitions: bool = False) -> None:
    """Milvus refuses a load that changes the replica number of a loaded collection (release it
    first); `current` is its number of groups, 0 when nothing of it is loaded."""
    asked = replica_count(replica_number)
    if current and current != asked:
        what = "partitions" if partitions else "collection"
        raise ShoalError(
            Code.PARAMETER_INVALID,
            f"can't change the replica number for loaded {what}: invalid parameter[expected={current}][actual={asked}]",
        )


def check_streaming_nodes(replica_number: int, streaming_nodes: int) -> None:
    """Milvus 2.6 (its streaming service on) first refuses more replicas than streaming nodes,
    before it looks at query nodes: a standalone Milvus has one."""
    wanted = replica_count(replica_number)
    if wanted > streaming_nodes:
        raise ShoalError(
            Code.SERVICE_RESOURCE_INSUFFICIENT,
            f"when load {wanted} replica count: service resource insufficient"
            f"[currentStreamingNode={streaming_nodes}][expectedStreamingNode={wanted}]",
        )


def check_replica_number(replica_number: int, nodes: int) -> int:
    """The number of groups a load makes (0 or less: Milvus's default, 1); more than there are
    query nodes is Milvus's "resource group node not enough" (merr code 304)."""
    wanted = replica_count(replica_number)
    if wanted > nodes:
        raise ShoalError(
            Code.RESOURCE_GROUP_NODE_NOT_ENOUGH,
            f"resource group node not enough[rg={DEFAULT_RESOURCE_GROUP}]"
            f"[currentNodeNum={nodes}][expectedNodeNum={wanted}]",
        )
    return wanted
