"""`describe_replica` (GetReplicas) and `load_collection(replica_number=...)`, on both targets:
one query node in each (the session cluster has one), so one group and Milvus's error for two."""

from __future__ import annotations

import pytest
from pymilvus import MilvusClient, MilvusException


def test_describe_replica_of_a_loaded_collection(client: MilvusClient, made: str) -> None:
    replicas = client.describe_replica(made)
    assert len(replicas) == 1
    (replica,) = replicas
    assert replica.resource_group == "__default_resource_group"
    assert len(replica.group_nodes) == 1 and replica.group_nodes[0] > 0
    assert len(replica.shards) == 1
    shard = replica.shards[0]
    assert shard.shard_leader == replica.group_nodes[0] and shard.shard_nodes == set(replica.group_nodes)
    collection_id = client.describe_collection(made)["collection_id"]
    assert shard.channel_name == f"shoal-dml_0_{collection_id}v0" and replica.id > 0
    client.insert(made, [{"id": i, "vector": [0.1, 0.2, 0.3, float(i)]} for i in range(5)])
    client.flush(made)
    segments = client._get_connection().get_query_segment_info(made)
    assert sum(s.num_rows for s in segments) == 5  # each sealed segment once per replica group
    assert all(list(s.nodeIds) == list(replica.group_nodes)[:1] for s in segments)


def test_a_released_collection_has_no_replicas(client: MilvusClient, made: str) -> None:
    client.release_collection(made)
    assert client.describe_replica(made) == []


def test_more_replicas_than_query_nodes_is_refused(client: MilvusClient, made: str, server_target: str) -> None:
    with pytest.raises(MilvusException) as e:  # loaded: Milvus asks to release it first
        client.load_collection(made, replica_number=2)
    assert e.value.code == 1100
    assert "can't change the replica number for loaded collection: invalid parameter[expected=1][actual=2]" in \
        e.value.message
    client.load_collection(made, replica_number=0)  # 0 or less: the default, 1
    client.release_collection(made)
    with pytest.raises(MilvusException) as e:
        client.load_collection(made, replica_number=2)
    if server_target == "cluster":  # its query nodes are counted, as Milvus counts a resource group's
        assert e.value.code == 304
        assert "resource group node not enough" in e.value.message and "expectedNodeNum=2" in e.value.message
    else:  # standalone, as a standalone Milvus 2.6: its one streaming node is counted first
        assert e.value.code == 12
        assert ("when load 2 replica count: service resource insufficient"
                "[currentStreamingNode=1][expectedStreamingNode=2]") in e.value.message
    client.load_collection(made, replica_number=1)
    assert client.get_load_state(made)["state"].name == "Loaded"
