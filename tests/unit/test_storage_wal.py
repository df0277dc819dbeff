"""WAL: ordered replay, torn/corrupt tails, group commit, rotation, checkpoints, SIGKILL."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shoal.errors import ShoalError
from shoal.storage.wal import WriteAheadLog

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fixtures_services import subprocess_env  # noqa: E402


def replay_all(directory: Path, after: int = 0) -> list[tuple[int, bytes]]:
    wal = WriteAheadLog(directory)
    try:
        return list(wal.replay(after))
    finally:
        wal.close()


@pytest.mark.parametrize("policy", ["always", "batch", "never"])
def test_records_replay_in_order_after_reopen(tmp_path: Path, policy: str) -> None:
    wal = WriteAheadLog(tmp_path, fsync=policy)
    payloads = [f"row {i}".encode() * (i % 5 + 1) for i in range(200)] + [b""]
    lsns = [wal.append(p) for p in payloads]
    assert lsns == list(range(1, 202))
    assert list(wal.replay()) == list(zip(lsns, payloads, strict=True))
    wal.close()
    assert replay_all(tmp_path) == list(zip(lsns, payloads, strict=True))
    assert replay_all(tmp_path, after=150) == list(zip(lsns[150:], payloads[150:], strict=True))

    wal = WriteAheadLog(tmp_path, fsync=policy)
    assert wal.last_lsn == 201
    assert wal.append(b"after reopen") == 202
    wal.close()
    assert replay_all(tmp_path)[-1] == (202, b"after reopen")


def test_empty_log(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path / "wal") as wal:
        assert wal.last_lsn == 0
        assert list(wal.replay()) == []


def _only_file(directory: Path) -> Path:
    (path,) = sorted(directory.glob("wal-*.log"))
    return path


def test_torn_tail_is_truncated_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with WriteAheadLog(tmp_path) as wal:
        for i in range(10):
            wal.append(f"record {i}".encode())
    path = _only_file(tmp_path)
    good_size = path.stat().st_size
    with open(path, "ab") as f:
        f.write(b"\x40\x00\x00\x00\x12\x34")  # a record header cut short by a crash

    with caplog.at_level(logging.WARNING, logger="shoal.storage.wal"):
        wal = WriteAheadLog(tmp_path)
    assert "truncating" in caplog.text
    assert path.stat().st_size == good_size
    assert [p for _, p in wal.replay()] == [f"record {i}".encode() for i in range(10)]
    assert wal.append(b"next") == 11
    wal.close()
    assert replay_all(tmp_path)[-1] == (11, b"next")


def test_record_cut_in_the_middle_is_dropped(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path) as wal:
        for i in range(5):
            wal.append(b"x" * 100 + bytes([i]))
    path = _only_file(tmp_path)
    os.truncate(path, path.stat().st_size - 30)
    records = replay_all(tmp_path)
    assert [lsn for lsn, _ in records] == [1, 2, 3, 4]
    assert records[-1][1] == b"x" * 100 + bytes([3])


def test_crc_corruption_drops_the_bad_record_and_everything_after(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path) as wal:
        for i in range(10):
            wal.append(f"payload-{i:02d}".encode())
    path = _only_file(tmp_path)
    data = bytearray(path.read_bytes())
    at = data.index(b"payload-06")
    data[at + 3] ^= 0x01  # one flipped bit in record 7's payload
    path.write_bytes(bytes(data))
    assert [lsn for lsn, _ in replay_all(tmp_path)] == [1, 2, 3, 4, 5, 6]
    with WriteAheadLog(tmp_path) as wal:
        assert wal.append(b"fresh") == 7
    assert replay_all(tmp_path)[-1] == (7, b"fresh")


def test_garbage_file_content_is_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "wal-00000000000000000001.log").write_bytes(os.urandom(1000))
    with WriteAheadLog(tmp_path) as wal:
        assert list(wal.replay()) == []
        assert wal.append(b"ok") == 1
    assert replay_all(tmp_path) == [(1, b"ok")]


def test_corruption_in_an_older_file_drops_the_files_after_it(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path, file_bytes=200) as wal:
        for i in range(30):
            wal.append(f"p{i:03d}".encode() * 5)
        files = wal.files()
    assert len(files) > 3
    data = bytearray(files[1].read_bytes())
    data[-1] ^= 0xFF
    files[1].write_bytes(bytes(data))
    records = replay_all(tmp_path)
    lsns = [lsn for lsn, _ in records]
    assert lsns == list(range(1, len(lsns) + 1))
    assert len(lsns) < 30
    assert not any(f.exists() for f in files[2:])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    payloads=st.lists(st.binary(max_size=64), min_size=1, max_size=30),
    damage=st.tuples(st.sampled_from(["cut", "flip"]), st.floats(0, 1, exclude_max=True), st.integers(0, 7)),
)
def test_any_damage_leaves_a_prefix_of_the_records(
    tmp_path_factory: pytest.TempPathFactory, payloads: list[bytes], damage: tuple[str, float, int]
) -> None:
    directory = tmp_path_factory.mktemp("wal")
    with WriteAheadLog(directory, file_bytes=300) as wal:
        for p in payloads:
            wal.append(p)
        files = wal.files()
    sizes = [f.stat().st_size for f in files]
    where = int(damage[1] * sum(sizes))
    index = 0
    while where >= sizes[index]:
        where -= sizes[index]
        index += 1
    path = files[index]
    data = bytearray(path.read_bytes())
    if damage[0] == "cut":
        del data[where:]
    else:
        data[where] ^= 1 << damage[2]
    path.write_bytes(bytes(data))

    records = replay_all(directory)
    kept = len(records)
    assert records == list(zip(range(1, kept + 1), payloads[:kept], strict=True))
    # Records wholly before the damaged byte survive.
    before = sum(sizes[:index]) + where
    intact, offset = 0, 0
    for p in payloads:
        offset += 16 + len(p)
        if offset > before:
            break
        intact += 1
    assert kept >= intact
    assert kept < len(payloads)


def test_rotation_and_checkpoint_truncation(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, file_bytes=1000)
    for i in range(100):
        wal.append(b"%04d" % i * 10)  # 40-byte payloads, 56-byte records
    files = wal.files()
    assert len(files) >= 5
    assert all(f.stat().st_size <= 1000 + 56 for f in files)
    assert [p for _, p in wal.replay()] == [b"%04d" % i * 10 for i in range(100)]

    removed = wal.mark_checkpoint(50)
    assert removed > 0
    assert wal.checkpoint_lsn == 50
    remaining = list(wal.replay())
    assert remaining[0][0] <= 51  # nothing after the checkpoint is lost
    assert remaining[-1][0] == 100
    assert [lsn for lsn, _ in wal.replay(50)] == list(range(51, 101))
    wal.close()

    wal = WriteAheadLog(tmp_path, file_bytes=1000)
    assert wal.checkpoint_lsn == 50
    wal.mark_checkpoint(100)
    assert len(wal.files()) == 1  # the newest file always stays
    assert wal.append(b"next") == 101
    wal.close()
    assert replay_all(tmp_path, after=100) == [(101, b"next")]


def test_checkpoint_past_the_end_is_refused(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path) as wal:
        wal.append(b"a")
        with pytest.raises(ShoalError):
            wal.mark_checkpoint(5)


def test_group_commit_from_many_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a slow disk, 8 threads share fsyncs; every acknowledged record replays intact."""
    fsyncs = 0
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        nonlocal fsyncs
        fsyncs += 1
        time.sleep(0.005)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    wal = WriteAheadLog(tmp_path, fsync="always")
    acked: dict[int, bytes] = {}
    lock = threading.Lock()

    def writer(t: int) -> None:
        for i in range(100):
            payload = f"thread {t} record {i}".encode()
            lsn = wal.append(payload)
            with lock:
                acked[lsn] = payload

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wal.close()
    monkeypatch.undo()
    assert sorted(acked) == list(range(1, 801))
    assert fsyncs < 800 / 3, f"{fsyncs} fsyncs for 800 appends: no group commit"
    assert dict(replay_all(tmp_path)) == acked


def test_background_fsync_in_batch_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced = threading.Event()
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.set()
        real_fsync(fd)

    with WriteAheadLog(tmp_path, fsync="batch", sync_interval_ms=5) as wal:
        monkeypatch.setattr(os, "fsync", fsync)
        wal.append(b"one")
        assert synced.wait(5), "the background thread never fsynced"


def test_batch_mode_appends_do_not_wait_for_the_background_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_fsync = threading.Event()
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        in_fsync.set()
        time.sleep(1.0)
        real_fsync(fd)

    wal = WriteAheadLog(tmp_path, fsync="batch", sync_interval_ms=1)
    wal.append(b"first")  # creates the file before the disk turns slow
    monkeypatch.setattr(os, "fsync", slow_fsync)
    wal.append(b"second")
    assert in_fsync.wait(5)
    started = time.monotonic()
    for i in range(50):
        wal.append(b"during fsync %d" % i)
    assert time.monotonic() - started < 0.8
    monkeypatch.undo()
    wal.close()
    assert len(replay_all(tmp_path)) == 52


def test_closed_or_misconfigured_log_raises(tmp_path: Path) -> None:
    with pytest.raises(ShoalError) as err:
        WriteAheadLog(tmp_path, fsync="sometimes")
    assert err.value.code == 1100
    wal = WriteAheadLog(tmp_path)
    wal.close()
    wal.close()
    with pytest.raises(ShoalError):
        wal.append(b"late")


CHILD = """
import sys, threading
from pathlib import Path
from shoal.storage.wal import WriteAheadLog
wal = WriteAheadLog(Path(sys.argv[1]), fsync="always", file_bytes=4096)
out = threading.Lock()
def run(t):
    i = 0
    while True:
        payload = f"{t}:{i}".encode() * 3
        lsn = wal.append(payload)
        with out:
            sys.stdout.write(f"{lsn} {t}:{i}\\n")
            sys.stdout.flush()
        i += 1
for t in range(4):
    threading.Thread(target=run, args=(t,), daemon=True).start()
threading.Event().wait()
"""


def test_sigkill_loses_no_acknowledged_record(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path)],
        stdout=subprocess.PIPE,
        env=subprocess_env(),
        text=True,
    )
    acked: dict[int, bytes] = {}
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while len(acked) < 500 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lsn, payload = line.split()
            acked[int(lsn)] = payload.encode() * 3
        os.kill(proc.pid, signal.SIGKILL)
        for line in proc.stdout:  # acks printed before the kill
            parts = line.split()
            if len(parts) == 2:
                acked[int(parts[0])] = parts[1].encode() * 3
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert len(acked) >= 500
    replayed = dict(replay_all(tmp_path))
    missing = [lsn for lsn in acked if replayed.get(lsn) != acked[lsn]]
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {missing[:5]}"
    assert sorted(replayed) == list(range(1, len(replayed) + 1))


def test_one_fsync_default_for_config_engine_and_log(tmp_path: Path) -> None:
    """`wal_fsync` has one default (storage.wal.DEFAULT_POLICY): durable against a power cut."""
    import inspect

    from shoal.config import Config
    from shoal.engine import open_engine
    from shoal.storage.wal import DEFAULT_POLICY

    assert DEFAULT_POLICY == "always" == Config().wal_fsync
    assert inspect.signature(WriteAheadLog).parameters["fsync"].default == DEFAULT_POLICY
    engine = open_engine(tmp_path, {})
    try:
        assert engine.wal.policy == DEFAULT_POLICY
    finally:
        engine.close()
