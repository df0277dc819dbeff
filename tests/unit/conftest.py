"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shoal.index import threads


@pytest.fixture
def two_threads() -> Iterator[None]:
    """Two search threads (as on this project's 2-core machines), restored afterwards."""
    before = threads._threads
    threads.set_threads(2)
    yield
    threads.set_threads(before)
