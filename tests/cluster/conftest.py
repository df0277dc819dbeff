"""Cluster tests share the session's `shoal cluster run` (`shoal_cluster`, tests/conftest.py)
with the conformance suite's `cluster` target. The fault tests break and restart its processes,
so they run after every other test of the session."""

from __future__ import annotations

import pytest


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    faults = [item for item in items if item.path.name.startswith("test_faults")]
    if faults:
        items[:] = [item for item in items if item not in faults] + faults
