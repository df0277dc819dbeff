"""The CPU count faiss threads default to: affinity capped by a cgroup CPU quota."""

from __future__ import annotations

from pathlib import Path

import pytest

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
