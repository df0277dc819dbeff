"""Fixtures shared across test folders: `shoal_cluster` (one `shoal cluster run` per session,
used by tests/cluster and by the conformance suite's `cluster` target)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixtures_cluster import shoal_cluster_fixture  # noqa: E402, F401
