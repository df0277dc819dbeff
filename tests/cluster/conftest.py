"""Cluster tests: one `shoal cluster run` per session (`shoal_cluster`, from fixtures_cluster);
modules that break processes (test_faults) start their own."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fixtures_cluster import shoal_cluster_fixture  # noqa: E402, F401
