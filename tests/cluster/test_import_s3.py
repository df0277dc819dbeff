"""Bulk import in cluster mode, on the session's cluster: files named by their key in the
cluster's bucket (Milvus's rule), the job's state in etcd, its segments in S3 and named by the
channel's checkpoint, and a query node started afterwards that sees the imported rows.

The import tests of tests/server (test_import.py, test_rest.py) run through the proxy with
`--server-target cluster` too (absolute paths: the streaming node reads the machine's files)."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymilvus import DataType, MilvusClient, connections, utility
from pymilvus.bulk_writer import BulkFileType, LocalBulkWriter
from pymilvus.client.types import BulkInsertState

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fixtures_cluster import ClusterProcess, cluster_s3, extra_query_node  # noqa: E402

pytestmark = pytest.mark.timeout(900)
CHECKPOINT_KEY = "shoal/checkpoint/0"
ROWS = 500


@pytest.fixture(scope="module")
def client(shoal_cluster: ClusterProcess) -> Iterator[MilvusClient]:
    connections.connect(alias="default", uri=shoal_cluster.uri)
    c = MilvusClient(shoal_cluster.uri, timeout=60)
    yield c
    c.close()
    connections.disconnect("default")



def _wait(task: int, timeout_s: float = 300.0) -> BulkInsertState:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = utility.get_bulk_insert_state(task)
        if state.state in (BulkInsertState.ImportCompleted, BulkInsertState.ImportFailed):
            return state
        time.sleep(0.2)
    raise AssertionError(f"import {task} did not finish in {timeout_s:.0f}s")


def test_import_of_bucket_keys_reaches_s3_the_checkpoint_and_a_new_query_node(
        shoal_cluster: ClusterProcess, client: MilvusClient, tmp_path: Path) -> None:
    from shoal.engine.requests import QueryRequest

    name = f"imp_s3_{uuid.uuid4().hex[:8]}"
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("tag", DataType.VARCHAR, max_length=16)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    index = client.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
    client.insert(name, [{"id": -1, "tag": "inserted", "v": [0.0] * 4}])
    with LocalBulkWriter(schema=schema, local_path=str(tmp_path), file_type=BulkFileType.PARQUET) as writer:
        for i in range(ROWS):
            writer.append_row({"id": i, "tag": f"t{i % 10}", "v": [float(i), 1.0, 0.0, 0.0]})
        writer.commit()
        local = writer.batch_files[0][0]
    _, s3 = cluster_s3(shoal_cluster)
    key = f"import-test/{name}/rows.parquet"  # named relative to the bucket, as Milvus's clients do
    s3.put_file(key, Path(local))

    missing = _wait(utility.do_bulk_insert(name, files=[f"import-test/{name}/absent.parquet"]))
    assert missing.state == BulkInsertState.ImportFailed and "absent.parquet" in missing.failed_reason

    task = utility.do_bulk_insert(name, files=[key])
    state = _wait(task)
    assert state.state == BulkInsertState.ImportCompleted, state.failed_reason
    assert state.row_count == ROWS
    ids = {r["id"] for r in client.query(name, filter="id >= -1", output_fields=["id"], limit=16384)}
    assert ids == set(range(-1, ROWS))
    # the job's state is in etcd: every proxy answers it
    job = shoal_cluster.etcd_json(f"shoal/imports/{task}")
    assert job is not None and job["state"] == "Completed" and job["imported_rows"] == ROWS
    assert sorted(t.task_id for t in utility.list_bulk_insert_tasks(collection_name=name)) == sorted(
        [missing.task_id, task])

    # the owner's next checkpoint names the imported segments (uploaded once, by the import)
    cid = str(client.describe_collection(name)["collection_id"])
    deadline = time.monotonic() + 120
    while True:
        ckpt = shoal_cluster.etcd_json(CHECKPOINT_KEY) or {}
        imported = [s for s in ckpt.get("collections", {}).get(cid, {}).get("segments", [])
                    if f"/i{task}-" in s["path"]]
        if imported:
            break
        assert time.monotonic() < deadline, f"no checkpoint names the import's segments: {ckpt}"
        time.sleep(0.5)
    assert sum(s["rows"] for s in imported) == ROWS
    for seg in imported:
        assert set(s3.list(seg["key"] + "/")) == {f"{seg['key']}/{f}" for f in seg["files"]}

    with extra_query_node(shoal_cluster, tmp_path / "query-extra") as node:
        request = QueryRequest(expr="id >= -1", output_fields=["id"], limit=16384)
        result = node.follower.call("query", ("default", name, request), {})
        assert sorted(int(i) for i in result.fields["id"].values) == list(range(-1, ROWS))
    client.drop_collection(name)
