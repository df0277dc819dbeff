"""The CPU count faiss threads default to (affinity capped by a cgroup CPU quota), and the
spreading of one query's segments over those threads."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from shoal.index import threads
from shoal.index.threads import cgroup_cpus, quota_cpus


@pytest.mark.parametrize(
    ("quota", "period", "cpus"),
    [("max", "100000", None), ("-1", "100000", None), ("200000", "100000", 2), ("150000", "100000", 2),
     ("50000", "100000", 1), ("0", "100000", None), ("lots", "100000", None), ("100000\n", "100000\n", 1)],
)
def test_quota_cpus(quota: str, period: str, cpus: int | None) -> None:
    assert quota_cpus(quota, period) == cpus


def test_cgroup_v2_and_v1_layouts(tmp_path: Path) -> None:
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("300000 100000\n")
    assert cgroup_cpus(v2) == 3
    (v2 / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpus(v2) is None
    v1 = tmp_path / "v1" / "cpu"
    v1.mkdir(parents=True)
    (v1 / "cpu.cfs_quota_us").write_text("250000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpus(tmp_path / "v1") == 3
    (v1 / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpus(tmp_path / "v1") is None
    assert cgroup_cpus(tmp_path / "none") is None


def test_fan_out_keeps_order_and_runs_pieces_side_by_side(two_threads: None) -> None:
    both = threading.Barrier(2, timeout=10)  # broken (an error) unless two pieces run at once

    def piece(x: int) -> tuple[int, int]:
        if x < 2:
            both.wait()
        return x * x, threading.get_ident()

    out = threads.fan_out(piece, list(range(6)))
    assert [v for v, _ in out] == [0, 1, 4, 9, 16, 25]
    assert len({t for _, t in out[:2]}) == 2


def test_fan_out_raises_the_error_of_a_piece(two_threads: None) -> None:
    def piece(x: int) -> int:
        if x == 3:
            raise ValueError("bad piece")
        return x

    with pytest.raises(ValueError, match="bad piece"):
        threads.fan_out(piece, list(range(5)))
    assert threads.fan_out(piece, [0, 1, 2]) == [0, 1, 2]  # the pool still serves


def test_fan_out_runs_on_the_caller_while_the_helpers_serve_another_query(two_threads: None) -> None:
    release = threading.Event()
    started = threading.Event()

    def slow(x: int) -> int:
        if threading.current_thread().name.startswith("shoal-fan-out"):
            started.set()
        release.wait(10)  # the first query holds its caller and the helper
        return x

    first = threading.Thread(target=threads.fan_out, args=(slow, [1, 2, 3, 4]))
    first.start()
    assert started.wait(10)
    try:
        here = threading.get_ident()
        out = threads.fan_out(lambda x: (x, threading.get_ident()), [5, 6, 7])
        assert [v for v, _ in out] == [5, 6, 7]
        assert {t for _, t in out} == {here}  # no idle helper: every piece on the caller
    finally:
        release.set()
        first.join(10)
    again = threads.fan_out(lambda x: threading.get_ident(), [0, 1, 2, 3, 4, 5, 6, 7])
    assert len(again) == 8  # the helper is idle again once the first query is done
