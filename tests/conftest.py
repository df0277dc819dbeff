"""Fixtures shared across test folders: `shoal_cluster` (one `shoal cluster run` per session,
used by tests/cluster, tests/chaos and by the conformance suite's `cluster` target).

The fault tests (tests/cluster/test_faults*.py) break and restart the shared cluster's
processes, and the chaos test (tests/chaos) does so at random and scales it, so they run after
every other test of the session, the chaos test last."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixtures_cluster import shoal_cluster_fixture  # noqa: E402, F401


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        if item.path.parent.name == "chaos":
            return 2
        return 1 if item.path.name.startswith("test_faults") else 0

    items.sort(key=rank)  # stable: the order within each rank stays
