"""Meta stores: the same protocol over an embedded file and a real etcd."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.errors import ShoalError
from shoal.storage.meta_store import EtcdMetaStore, FileMetaStore, MetaStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fixtures_services import EtcdServer, etcd_server_fixture, free_port, subprocess_env  # noqa: E402, F401


@pytest.fixture(params=["file", "etcd"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MetaStore]:
    if request.param == "file":
        s: MetaStore = FileMetaStore(tmp_path / "meta.db")
    else:
        server: EtcdServer = request.getfixturevalue("etcd_server")
        s = EtcdMetaStore(server.endpoints, prefix=f"test-{uuid.uuid4().hex}/")
    try:
        yield s
    finally:
        s.close()


def test_put_get_delete_list(store: MetaStore) -> None:
    assert store.get("collections/books") is None
    store.put("collections/books", b'{"id": 1}')
    store.put("collections/movies", b'{"id": 2}')
    store.put("collections2/x", b"\x00\xff")
    store.put("databases/default", b"")
    assert store.get("collections/books") == b'{"id": 1}'
    assert store.get("databases/default") == b""
    assert store.list_prefix("collections/") == {
        "collections/books": b'{"id": 1}',
        "collections/movies": b'{"id": 2}',
    }
    assert set(store.list_prefix("")) == {
        "collections/books",
        "collections/movies",
        "collections2/x",
        "databases/default",
    }
    store.put("collections/books", b'{"id": 3}')
    assert store.get("collections/books") == b'{"id": 3}'
    store.delete("collections/books")
    store.delete("never/existed")
    assert store.get("collections/books") is None
    assert list(store.list_prefix("collections/")) == ["collections/movies"]


def test_commit_applies_every_change_together(store: MetaStore) -> None:
    store.put("seg/1", b"growing")
    store.put("seg/2", b"growing")
    store.commit({"seg/3": b"compacted", "seg/4": b"new", "seg/1": b"kept"}, ["seg/1", "seg/2"])
    assert store.list_prefix("seg/") == {"seg/1": b"kept", "seg/3": b"compacted", "seg/4": b"new"}
    store.commit({}, [])


def test_a_bad_commit_changes_nothing(store: MetaStore) -> None:
    store.put("a", b"1")
    with pytest.raises(ShoalError):
        store.commit({"b": b"2", "c": "not bytes"}, ["a"])  # type: ignore[dict-item]
    with pytest.raises(ShoalError):
        store.commit({"b": b"2"}, ["a", ""])
    assert store.get("a") == b"1"
    assert store.get("b") is None


def test_file_store_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "meta" / "meta.db"
    s = FileMetaStore(path)
    s.commit({f"k/{i}": bytes([i]) * i for i in range(50)}, [])
    s.delete("k/7")
    s.close()
    with pytest.raises(ShoalError):
        s.put("late", b"x")
    reopened = FileMetaStore(path)
    assert reopened.get("k/7") is None
    assert reopened.get("k/9") == bytes([9]) * 9
    assert len(reopened.list_prefix("k/")) == 49


def test_file_store_detects_a_damaged_file(tmp_path: Path) -> None:
    path = tmp_path / "meta.db"
    FileMetaStore(path).put("k", b"value")
    data = bytearray(path.read_bytes())
    data[10] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(ShoalError, match="corrupt"):
        FileMetaStore(path)


CHILD = """
import sys
from pathlib import Path
from shoal.storage.meta_store import FileMetaStore
s = FileMetaStore(Path(sys.argv[1]))
gen = 0
while True:
    gen += 1
    value = str(gen).encode() * 500
    s.commit({"gen": str(gen).encode(), **{f"k/{i}": value for i in range(100)}}, [])
    print(gen, flush=True)
"""


def test_file_store_is_old_or_new_after_sigkill_mid_commit(tmp_path: Path) -> None:
    path = tmp_path / "meta.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True, env=subprocess_env()
    )
    last_acked = 0
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while last_acked < 30 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            last_acked = int(line)
        os.kill(proc.pid, signal.SIGKILL)
        for line in proc.stdout:
            if line.strip():
                last_acked = int(line)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert last_acked >= 30
    s = FileMetaStore(path)
    gen = int(s.get("gen") or b"0")
    assert gen >= last_acked
    values = set(s.list_prefix("k/").values())
    assert values == {str(gen).encode() * 500}, "a commit was torn"
    assert len(s.list_prefix("k/")) == 100


def test_etcd_commit_is_one_transaction(etcd_server: EtcdServer) -> None:
    s = EtcdMetaStore(etcd_server.endpoints, prefix=f"txn-{uuid.uuid4().hex}/")
    try:
        s.put("keep", b"1")
        # etcd allows at most 128 operations per transaction by default: the whole
        # commit is refused, so none of its puts or its delete may show up.
        with pytest.raises(ShoalError):
            s.commit({f"k/{i}": b"x" for i in range(200)}, ["keep"])
        assert s.list_prefix("k/") == {}
        assert s.get("keep") == b"1"
    finally:
        s.close()


def test_etcd_prefixes_isolate_stores(etcd_server: EtcdServer) -> None:
    a = EtcdMetaStore(etcd_server.endpoints, prefix="iso-a/")
    b = EtcdMetaStore(etcd_server.endpoints, prefix="iso-b/")
    try:
        a.put("x", b"from a")
        assert b.get("x") is None
        assert b.list_prefix("") == {}
        assert a.list_prefix("") == {"x": b"from a"}
    finally:
        a.close()
        b.close()


def test_etcd_uses_the_next_endpoint_when_one_is_down(etcd_server: EtcdServer) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    s = EtcdMetaStore([dead, *etcd_server.endpoints], prefix=f"fo-{uuid.uuid4().hex}/", timeout_s=3)
    try:
        s.put("k", b"v")
        assert s.get("k") == b"v"
    finally:
        s.close()


def test_unreachable_etcd_is_a_clear_error() -> None:
    with pytest.raises(ShoalError, match="cannot reach etcd"):
        EtcdMetaStore([f"127.0.0.1:{free_port()}"], prefix="x/", timeout_s=2)


def test_etcd_put_if_revision_is_compare_and_swap(etcd_server: EtcdServer) -> None:
    s = EtcdMetaStore(etcd_server.endpoints, prefix=f"cas-{uuid.uuid4().hex}/")
    try:
        assert s.get_revision("k") == (None, 0)
        first = s.put_if_revision("k", b"one", 0)  # 0: only while absent
        assert first and s.get_revision("k") == (b"one", first)
        assert s.put_if_revision("k", b"lost", 0) == 0  # no longer absent
        second = s.put_if_revision("k", b"two", first)
        assert second > first
        assert s.put_if_revision("k", b"stale", first) == 0  # another writer got there first
        assert s.get("k") == b"two"
    finally:
        s.close()
