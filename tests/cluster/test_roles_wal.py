"""The Kafka WAL's fencing, on the session cluster's broker: a second owner of a channel makes
the first unable to append, and a read_committed tail never sees a write that was not
acknowledged."""

from __future__ import annotations

import uuid

import pytest

from shoal.storage.kafka_wal import KafkaTail, KafkaWAL, WalUnavailable, create_topic


def _tail_payloads(bootstrap: str, topic: str) -> list[bytes]:
    tail = KafkaTail(bootstrap, topic, 0)
    try:
        end = tail.end_offset()
        out: list[bytes] = []
        while tail.position < end:
            records, _ = tail.poll(1.0)
            out += [r.payload for r in records]
        return out
    finally:
        tail.close()


def test_new_owner_fences_the_old_one(shoal_cluster) -> None:
    bootstrap = shoal_cluster.kafka_bootstrap
    topic = f"test.fence.{uuid.uuid4().hex[:8]}"
    create_topic(bootstrap, topic)
    tid = f"test-fence-{uuid.uuid4().hex[:8]}"
    old = KafkaWAL(bootstrap, topic, 0, tid)
    first = old.append(b"acked by the old owner")
    assert first == 1  # LSN = offset + 1
    new = KafkaWAL(bootstrap, topic, 0, tid)  # init_transactions fences `old`
    with pytest.raises(WalUnavailable):
        old.append(b"never acknowledged")
    assert old.fenced
    with pytest.raises(WalUnavailable):  # and stays refused
        old.append(b"never acknowledged either")
    new.append(b"acked by the new owner")
    assert _tail_payloads(bootstrap, topic) == [b"acked by the old owner", b"acked by the new owner"]
    old.close()
    new.close()
