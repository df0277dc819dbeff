"""Object stores: the same protocol over a local directory and a real SeaweedFS S3."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.errors import ShoalError
from shoal.storage.object_store import LocalObjectStore, ObjectNotFound, ObjectStore, S3ObjectStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fixtures_services import SeaweedS3, seaweedfs_s3_fixture  # noqa: E402, F401


def s3_store(server: SeaweedS3, bucket: str) -> S3ObjectStore:
    return S3ObjectStore(server.endpoint_url, bucket, server.access_key, server.secret_key)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    if request.param == "local":
        yield LocalObjectStore(tmp_path / "objects")
    else:
        server: SeaweedS3 = request.getfixturevalue("seaweedfs_s3")
        yield s3_store(server, f"test-{uuid.uuid4().hex[:16]}")


def test_put_get_exists_delete(store: ObjectStore) -> None:
    assert not store.exists("files/c1/seg1/vec.npy")
    store.put("files/c1/seg1/vec.npy", b"\x93NUMPY data")
    assert store.exists("files/c1/seg1/vec.npy")
    assert store.get("files/c1/seg1/vec.npy") == b"\x93NUMPY data"
    store.put("files/c1/seg1/vec.npy", b"replaced")
    assert store.get("files/c1/seg1/vec.npy") == b"replaced"
    store.put("empty", b"")
    assert store.get("empty") == b""
    store.delete("files/c1/seg1/vec.npy")
    store.delete("files/c1/seg1/vec.npy")  # deleting twice is fine
    assert not store.exists("files/c1/seg1/vec.npy")


def test_missing_object_is_a_clear_error(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound) as err:
        store.get("no/such/key")
    assert err.value.code == 65535
    assert "no/such/key" in str(err.value)
    assert isinstance(err.value, KeyError) and isinstance(err.value, ShoalError)


def test_list_by_prefix(store: ObjectStore) -> None:
    for key in ["c1/seg1/a", "c1/seg1/b", "c1/seg10/a", "c1/seg2/a", "c2/seg1/a", "top"]:
        store.put(key, key.encode())
    assert store.list("c1/seg1/") == ["c1/seg1/a", "c1/seg1/b"]
    assert store.list("c1/seg1") == ["c1/seg1/a", "c1/seg1/b", "c1/seg10/a"]
    assert store.list("c1/") == ["c1/seg1/a", "c1/seg1/b", "c1/seg10/a", "c1/seg2/a"]
    assert store.list("") == ["c1/seg1/a", "c1/seg1/b", "c1/seg10/a", "c1/seg2/a", "c2/seg1/a", "top"]
    assert store.list("nothing/") == []


def test_files_up_and_down(store: ObjectStore, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    data = os.urandom(9 << 20)  # above boto3's multipart threshold
    src.write_bytes(data)
    store.put_file("backups/b1/big.bin", src)
    dst = tmp_path / "down" / "big.bin"
    store.get_file("backups/b1/big.bin", dst)
    assert dst.read_bytes() == data
    assert sorted(p.name for p in dst.parent.iterdir()) == ["big.bin"]  # no temp left
    with pytest.raises(ObjectNotFound):
        store.get_file("backups/b1/missing.bin", tmp_path / "down" / "missing.bin")
    assert not (tmp_path / "down" / "missing.bin").exists()


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "trailing/", "a/./b"])
def test_bad_keys_are_rejected(store: ObjectStore, key: str) -> None:
    with pytest.raises(ShoalError) as err:
        store.put(key, b"x")
    assert err.value.code == 1100


def test_local_writes_leave_no_temp_files(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    for i in range(20):
        store.put(f"k/{i}", b"v" * i)
    assert sorted(os.listdir(tmp_path / "k")) == sorted(str(i) for i in range(20))


def test_s3_bucket_is_created_when_absent_and_reused(seaweedfs_s3: SeaweedS3) -> None:
    bucket = f"fresh-{uuid.uuid4().hex[:16]}"
    first = s3_store(seaweedfs_s3, bucket)
    first.put("k", b"v")
    second = s3_store(seaweedfs_s3, bucket)  # opening an existing bucket is fine
    assert second.get("k") == b"v"
