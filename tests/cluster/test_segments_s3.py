"""Sealed segments in S3 and the WAL channel's checkpoint in etcd, on the session's cluster.

After a Flush the owner's segments and their delete logs are objects in SeaweedFS, and the
checkpoint in etcd names them with the Kafka offset to resume from. A query node started
afterwards loads those segments and reads only the records after the checkpoint from Kafka
(asserted on its own counter, not on time), and answers with the same rows as the running
cluster, deletes of flushed rows included (some in the S3 delete log, some replayed). The
index role builds the flushed segment's vector index from S3 and writes it back; the new query
node loads that index instead of building it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pymilvus import MilvusClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fixtures_cluster import ClusterProcess, cluster_s3, extra_query_node  # noqa: E402

from shoal.cluster.rpc import RpcClient  # noqa: E402

pytestmark = pytest.mark.timeout(900)
COLL = "s3_checkpoint"
DIM = 4
BATCHES = 30
BATCH = 40  # 1,200 rows: above the size at which a segment gets a vector index
CHECKPOINT_KEY = "shoal/checkpoint/0"


def _rows(ids: range) -> list[dict]:
    return [{"id": i, "vector": [float(i % 7), 1.0, float(i % 3), 0.5]} for i in ids]


def _ids(client: MilvusClient) -> list[int]:
    rows = client.query(COLL, filter="id >= 0", output_fields=["id"], consistency_level="Strong", limit=16384)
    return sorted(int(r["id"]) for r in rows)


@pytest.fixture(scope="module")
def client(shoal_cluster: ClusterProcess) -> Iterator[MilvusClient]:
    c = MilvusClient(shoal_cluster.uri, timeout=60)
    if c.has_collection(COLL):
        c.drop_collection(COLL)
    c.create_collection(COLL, dimension=DIM, consistency_level="Strong")
    yield c
    c.drop_collection(COLL)
    c.close()



def test_a_new_query_node_starts_from_the_checkpoint_in_s3(
        shoal_cluster: ClusterProcess, client: MilvusClient, tmp_path: Path) -> None:

    for b in range(BATCHES):  # 30 WAL records
        client.insert(COLL, _rows(range(b * BATCH, (b + 1) * BATCH)))
    client.flush(COLL)
    client.delete(COLL, ids=[0, 1, 2, 3, 4])  # rows of a flushed segment: a delete log in S3 after the next flush
    client.flush(COLL)
    written_before = BATCHES + 1
    top = BATCHES * BATCH

    ckpt = shoal_cluster.etcd_json(CHECKPOINT_KEY)
    assert ckpt is not None and ckpt["lsn"] > 0
    cid = str(client.describe_collection(COLL)["collection_id"])
    segments = ckpt["collections"][cid]["segments"]
    assert sum(s["rows"] for s in segments) == top
    _, s3 = cluster_s3(shoal_cluster)
    for seg in segments:  # every file the checkpoint names is in the bucket
        assert set(s3.list(seg["key"] + "/")) == {f"{seg['key']}/{name}" for name in seg["files"]}
        assert s3.exists(seg["deletes"])

    # the running query nodes sealed at the owner's FLUSH record, under the owner's segment ids
    ckpt_ids = sorted(int(s["id"]) for s in segments)
    for name in [n for n in shoal_cluster.children if n.startswith("query-")]:
        node = RpcClient(f"127.0.0.1:{shoal_cluster.children[name].ports['grpc']}")
        try:
            deadline = time.monotonic() + 120
            while True:
                held = node.call("holdings", timeout=10).get(f"default.{COLL}", {"sealed": []})["sealed"]
                if sorted(i for i, _ in held) == ckpt_ids or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert sorted(i for i, _ in held) == ckpt_ids, f"{name} holds {held}, the checkpoint names {ckpt_ids}"
        finally:
            node.close()

    client.insert(COLL, _rows(range(top, top + 2 * BATCH)))  # after the checkpoint: replayed from Kafka
    client.delete(COLL, ids=[5, 6, 7, top])
    expected = sorted(set(range(top + 2 * BATCH)) - {0, 1, 2, 3, 4, 5, 6, 7, top})
    assert _ids(client) == expected

    deadline = time.monotonic() + 300
    index_key = f"shoal/indexes/{cid}/{segments[0]['key'].rsplit('/', 1)[-1]}/vector"
    while shoal_cluster.etcd_json(index_key) is None:
        assert time.monotonic() < deadline, f"the index role built no index for {index_key}"
        time.sleep(1.0)
    record = shoal_cluster.etcd_json(index_key)
    assert record is not None and all(s3.exists(f"{record['key']}/{name}") for name in record["files"])

    node_dir = tmp_path / "query-extra"
    with extra_query_node(shoal_cluster, node_dir) as node:
        print(f"new query node: {node.startup}")
        assert node.startup["segments_loaded"] >= len(segments) > 0
        assert node.startup["checkpoint_lsn"] >= ckpt["lsn"]
        # the records after the checkpoint (the 2 above, unless a later checkpoint took them), not the history
        assert node.startup["records_replayed"] < written_before
        from shoal.engine.requests import QueryRequest, SearchRequest

        result = node.follower.call("query", ("default", COLL, QueryRequest(expr="id >= 0", output_fields=["id"])), {})
        assert sorted(int(i) for i in result.fields["id"].values) == expected
        # the segment files are memory-mapped from the local cache, not copied
        cached = list((node_dir / "segment-cache").rglob("manifest.json"))
        assert len(cached) >= len(segments)
        # the index came from S3 (the index role's files are in the cache), loaded with the segment
        assert (node_dir / "segment-cache" / record["key"]).is_dir()
        data = node.follower.engine.datas[int(cid)]
        assert any("vector" in seg.indexes for seg in data.segments if seg.path)
        request = SearchRequest(anns_field="vector", queries=np.array([[1.0, 1.0, 1.0, 0.5]], dtype=np.float32), topk=10)
        hits = node.follower.call("search", ("default", COLL, request), {})
        assert len(hits.ids) == 10  # id 1 holds exactly the query vector, but it was deleted
        assert not {int(i) for i in hits.ids} & {0, 1, 2, 3, 4, 5, 6, 7, top}
