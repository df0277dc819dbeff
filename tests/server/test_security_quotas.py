"""Milvus's quota settings on a real server: collections per database, insert size, DML
and search rates, disk quota, each with Milvus's code.

The rates are tiny on purpose: a first request larger than the bucket passes and leaves
it empty for minutes, so the refusal of the next one does not depend on timing. Under the
`cluster` target the same settings go to a proxy of the security cluster (whose coordinator
has `max_collections_per_db: 3`), so each test keeps its collections in a database of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ShoalProcess, cluster_proxy
from pymilvus import MilvusClient, MilvusException

DIM = 64


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest, server_target: str,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShoalProcess]:
    base = tmp_path_factory.mktemp("shoal-quotas")
    config = base / "shoal.yaml"
    config.write_text(
        "max_collections_per_db: 3\n"
        "max_insert_bytes: 200000\n"
        "dml_rate_mb_per_collection: 0.0001\n"
        "search_rate_vps_per_collection: 0.01\n"
    )
    if server_target == "cluster":
        proc = cluster_proxy(request.getfixturevalue("security_cluster"), base, ["--config", str(config)])
    else:
        proc = ShoalProcess(base / "data", base / "server.log", ["--config", str(config)])
        proc.start()
    yield proc
    assert proc.stop() == 0, proc.tail()


@pytest.fixture()
def client(server: ShoalProcess) -> Iterator[MilvusClient]:
    c = MilvusClient(uri=server.uri)
    yield c
    c.close()


def _rows(n: int, start: int = 0) -> list[dict]:
    return [{"id": start + i, "vector": [0.25] * DIM} for i in range(n)]


def _code(call) -> int:  # noqa: ANN001
    with pytest.raises(MilvusException) as e:
        call()
    return e.value.code


def test_collections_per_database(client: MilvusClient) -> None:
    client.create_database("quota_db")
    client.use_database("quota_db")
    for i in range(3):
        client.create_collection(f"c{i}", dimension=DIM)
    assert _code(lambda: client.create_collection("c3", dimension=DIM)) == 102
    client.drop_collection("c0")
    client.create_collection("c3", dimension=DIM)


def _own_database(client: MilvusClient, db: str) -> None:
    client.create_database(db)
    client.use_database(db)


def test_insert_size(client: MilvusClient) -> None:
    _own_database(client, "quota_size")
    client.create_collection("big", dimension=DIM)
    assert _code(lambda: client.insert("big", _rows(1000), retry_on_rate_limit=False)) == 1102


def test_dml_and_search_rates(client: MilvusClient) -> None:
    _own_database(client, "quota_rates")
    client.create_collection("rated", dimension=DIM)
    client.insert("rated", _rows(10))  # larger than the bucket: passes, empties it for minutes
    assert _code(lambda: client.insert("rated", _rows(1, 100), retry_on_rate_limit=False)) == 8
    client.create_collection("other", dimension=DIM)
    client.insert("other", _rows(1))  # the limit is per collection
    client.search("rated", [[0.25] * DIM], limit=1)
    assert _code(lambda: client.search("rated", [[0.25] * DIM], limit=1, retry_on_rate_limit=False)) == 8


def test_disk_quota(tmp_path: Path) -> None:
    """Standalone only: the quota is on the node's data directory (a cluster's proxy holds no data)."""
    proc = ShoalProcess(tmp_path / "data", tmp_path / "server.log", [])
    (tmp_path / "shoal.yaml").write_text("disk_quota_mb: 1\n")
    proc.extra_args = ["--config", str(tmp_path / "shoal.yaml")]
    proc.start()
    try:
        c = MilvusClient(uri=proc.uri)
        c.create_collection("disk", dimension=DIM)
        code = 0
        for i in range(30):  # 30 x 130 kB: well past 1 MB
            try:
                c.insert("disk", _rows(500, i * 500))
            except MilvusException as e:
                code = e.code
                break
        assert code == 9
        c.close()
    finally:
        assert proc.stop() == 0, proc.tail()
