"""How a query node serves each consistency level (roles/query.py), with the owner's position
and the node's applied state faked: which reads ask the owner, and which wait and read again."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import pytest

from shoal.cluster.roles.query import GRACEFUL_S, QueryNode
from shoal.engine.requests import ConsistencyLevel, ReadConsistency

CHANNELS = 3
CHANNEL = 2  # the collection's WAL channel (collection id 2 of 3 channels): only its positions count


class FakeFollower:
    """Applied LSN/timestamp and the reads served; a read returns the LSN applied when it ran."""

    def __init__(self, applied: int, applied_ts: int, level: ConsistencyLevel = ConsistencyLevel.BOUNDED) -> None:
        self.applied = {CHANNEL: applied}  # per WAL channel; the collection is on CHANNEL
        self.applied_ts = {CHANNEL: applied_ts}
        self.calls: list[str] = []
        meta = SimpleNamespace(consistency_level=int(level), collection_id=CHANNEL)
        self.engine = SimpleNamespace(catalog=SimpleNamespace(find=lambda db, name: meta))

    def catch_up(self, version: int) -> None:
        pass

    def call(self, method: str, args: tuple, kwargs: dict) -> int:
        self.calls.append(method)
        return self.applied[CHANNEL]

    def wait_applied(self, channel: int, lsn: int, timeout_s: float) -> bool:
        assert channel == CHANNEL
        self.applied[channel] = max(self.applied[channel], lsn)  # the tail catches up at once
        return True


def node(follower: FakeFollower, owner_at: int, fresh: bool = True) -> tuple[QueryNode, list[int]]:
    qn = QueryNode.__new__(QueryNode)
    qn.env = SimpleNamespace(node_id="query-test", channels=lambda: CHANNELS)
    qn.follower = follower  # type: ignore[assignment]
    qn._pool = ThreadPoolExecutor(max_workers=2)
    qn._owner_lock = threading.Lock()
    qn.fresh_at = {CHANNEL: time.monotonic() if fresh else time.monotonic() - 2 * GRACEFUL_S}
    asked: list[int] = []

    def position(channel: int) -> int:
        assert channel == CHANNEL
        asked.append(owner_at)
        return owner_at

    qn._owner_position = position  # type: ignore[method-assign]
    return qn, asked


def search_args(level: ConsistencyLevel | None, guarantee_ts: int = 0) -> tuple[Any, ...]:
    consistency = ReadConsistency(guarantee_ts=guarantee_ts, level=level, use_default=level is None)
    return ("default", "c", SimpleNamespace(consistency=consistency))


def test_strong_asks_the_owner_and_keeps_the_read_when_nothing_newer_was_acknowledged() -> None:
    f = FakeFollower(applied=10, applied_ts=100)
    qn, asked = node(f, owner_at=10)
    assert qn.read_at_level("search", 0, {CHANNEL: 0, 0: 99}, search_args(ConsistencyLevel.STRONG), {}) == 10
    assert asked == [10] and f.calls == ["search"]


def test_strong_waits_for_a_newer_acknowledged_write_and_reads_again() -> None:
    f = FakeFollower(applied=10, applied_ts=100)
    qn, asked = node(f, owner_at=12)
    assert qn.read_at_level("search", 0, {CHANNEL: 0, 0: 99}, search_args(ConsistencyLevel.STRONG), {}) == 12
    assert asked == [12] and f.calls == ["search", "search"]


@pytest.mark.parametrize("level", [ConsistencyLevel.EVENTUALLY, ConsistencyLevel.SESSION, ConsistencyLevel.BOUNDED])
def test_weaker_levels_read_without_asking_the_owner(level: ConsistencyLevel) -> None:
    f = FakeFollower(applied=10, applied_ts=100)
    qn, asked = node(f, owner_at=12)
    assert qn.read_at_level("query", 0, {CHANNEL: 0, 0: 99}, search_args(level, guarantee_ts=100), {}) == 10
    assert asked == [] and f.calls == ["query"]


def test_session_whose_write_is_not_applied_yet_reads_as_strong() -> None:
    f = FakeFollower(applied=10, applied_ts=100)
    qn, asked = node(f, owner_at=12)
    assert qn.read_at_level("search", 0, {CHANNEL: 0, 0: 99}, search_args(ConsistencyLevel.SESSION, guarantee_ts=150), {}) == 12
    assert asked == [12]


def test_bounded_beyond_the_staleness_bound_reads_as_strong() -> None:
    f = FakeFollower(applied=10, applied_ts=100)
    qn, asked = node(f, owner_at=12, fresh=False)
    assert qn.read_at_level("search", 0, {CHANNEL: 0, 0: 99}, search_args(ConsistencyLevel.BOUNDED, guarantee_ts=1), {}) == 12
    assert asked == [12]


def test_the_collection_level_applies_when_the_request_names_none() -> None:
    f = FakeFollower(applied=10, applied_ts=100, level=ConsistencyLevel.STRONG)
    qn, asked = node(f, owner_at=10)
    qn.read_at_level("search", 0, {CHANNEL: 0, 0: 99}, search_args(None, guarantee_ts=1), {})
    assert asked == [10]
    f = FakeFollower(applied=10, applied_ts=100, level=ConsistencyLevel.BOUNDED)
    qn, asked = node(f, owner_at=10)
    qn.read_at_level("search", 0, {CHANNEL: 0, 0: 99}, search_args(None, guarantee_ts=1), {})
    assert asked == []


def test_counts_and_index_progress_are_strong() -> None:
    f = FakeFollower(applied=10, applied_ts=100)
    qn, asked = node(f, owner_at=11)
    assert qn.read_at_level("collection_row_count", 0, {CHANNEL: 0, 0: 99}, ("default", "c"), {}) == 11
    assert asked == [11]


def test_the_proxys_own_writes_are_waited_for_locally() -> None:
    f = FakeFollower(applied=10, applied_ts=100)
    qn, asked = node(f, owner_at=20)
    assert qn.read_at_level("search", 0, {CHANNEL: 15, 0: 99}, search_args(ConsistencyLevel.BOUNDED, guarantee_ts=1), {}) == 15
    assert asked == []
