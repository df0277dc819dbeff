"""The WAL over one Kafka partition: a transactional writer and a read_committed tail.

`KafkaWAL` has the engine's WAL interface (`append(payload) -> lsn`, `mark_checkpoint`,
`replay`, `close`), so the standalone write path (`engine.writer`) runs over it unchanged.
The LSN of a record is its Kafka offset + 1. Each append is one Kafka transaction and returns
only after the commit, so an acknowledged write is on every in-sync replica (`acks=all`).

Fencing: the producer's `transactional.id` names the WAL channel, not the node. A new owner's
`init_transactions` bumps the producer epoch, aborts whatever the old owner left open and makes
every later produce/commit of the old producer fail with a fatal error. After one, this object
refuses every append (`fenced`), so a stale owner can never acknowledge a write.

`KafkaTail` reads the same partition with `isolation.level=read_committed`: aborted records
(writes that were never acknowledged) are skipped by the broker, so readers never see them.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from shoal.errors import Code, ShoalError

log = logging.getLogger(__name__)

MAX_RECORD_BYTES = 96 << 20  # above gRPC's 64 MB request limit, below the broker's 100 MB request cap
META_HEADER = "mv"  # catalog version the writer saw; a reader catches up to it before applying


Kafka = str | dict[str, str]  # bootstrap servers, or a full client config (`client_config`)


def client_config(bootstrap: str, username: str = "", password: str = "") -> dict[str, str]:
    """librdkafka settings for the cluster's brokers; SASL/PLAIN when a user is given."""
    conf = {"bootstrap.servers": bootstrap}
    if username:
        conf.update({
            "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
            "sasl.username": username, "sasl.password": password,
        })
    return conf


def _conf(kafka: Kafka) -> dict[str, str]:
    return dict(kafka) if isinstance(kafka, dict) else {"bootstrap.servers": kafka}


class WalUnavailable(ShoalError):
    """The append was not (or not certainly) written; the caller must not acknowledge it."""

    def __init__(self, message: str) -> None:
        super().__init__(Code.UNEXPECTED, message)


def create_topic(bootstrap: Kafka, topic: str, partitions: int = 1, timeout_s: float = 60.0) -> int:
    """Create the WAL topic (infinite retention; replicas = min(3, brokers)) unless it exists;
    returns its partitions. An existing topic keeps its partitions: a collection's channel
    follows from their count (`routing.channel_of`), so it never changes."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(_conf(bootstrap))
    meta = admin.list_topics(timeout=timeout_s)
    if topic in meta.topics and not meta.topics[topic].error and meta.topics[topic].partitions:
        return len(meta.topics[topic].partitions)
    replicas = min(3, max(1, len(meta.brokers)))
    config = {
        "retention.ms": "-1", "retention.bytes": "-1", "min.insync.replicas": "2" if replicas >= 3 else "1",
        "max.message.bytes": str(MAX_RECORD_BYTES),
    }
    try:
        admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=replicas, config=config)])[
            topic
        ].result(timeout=timeout_s)
    except KafkaException as e:
        if "TOPIC_ALREADY_EXISTS" not in str(e):
            raise
        return topic_partitions(bootstrap, topic, timeout_s)
    return partitions


def topic_partitions(bootstrap: Kafka, topic: str, timeout_s: float = 10.0) -> int:
    """The topic's partitions (the cluster's WAL channels); raises while it does not exist."""
    from confluent_kafka.admin import AdminClient

    meta = AdminClient(_conf(bootstrap)).list_topics(topic, timeout=timeout_s)
    t = meta.topics.get(topic)
    if t is None or t.error is not None or not t.partitions:
        raise WalUnavailable(f"the WAL topic {topic} does not exist yet")
    return len(t.partitions)


def topic_exists(bootstrap: Kafka, topic: str, timeout_s: float = 10.0) -> bool:
    from confluent_kafka.admin import AdminClient

    meta = AdminClient(_conf(bootstrap)).list_topics(topic, timeout=timeout_s)
    t = meta.topics.get(topic)
    return t is not None and t.error is None and bool(t.partitions)


class KafkaWAL:
    def __init__(
        self,
        bootstrap: Kafka,
        topic: str,
        partition: int,
        transactional_id: str,
        meta_version: Callable[[], int] = lambda: 0,
        timeout_s: float = 60.0,
    ) -> None:
        from confluent_kafka import Producer

        self.topic = topic
        self.partition = partition
        self._timeout = timeout_s
        self._meta_version = meta_version
        self._producer = Producer({
            **_conf(bootstrap),
            "transactional.id": transactional_id,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 0,
            # a dead owner's open transaction stalls read_committed readers until it times out
            "transaction.timeout.ms": 10000,
            "message.max.bytes": MAX_RECORD_BYTES + (1 << 20),
        })
        self._lock = threading.Lock()
        self.fenced = False
        self.acked_next = 0  # offset after the newest acknowledged record
        self.on_checkpoint: Callable[[int], None] | None = None  # the engine persisted records up to an LSN
        self._init(timeout_s)

    def _init(self, timeout_s: float) -> None:
        """`init_transactions`, which fences every older producer of this channel. Retried: a
        broker that just started answers "coordinator load in progress" for a moment."""
        from confluent_kafka import KafkaException

        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._producer.init_transactions(max(1.0, deadline - time.monotonic()))
                return
            except KafkaException as e:
                if not e.args[0].retriable() or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def append(self, payload: bytes) -> int:
        from confluent_kafka import KafkaException

        if len(payload) > MAX_RECORD_BYTES:  # not retried: the same write would fail again
            raise ShoalError(
                Code.PARAMETER_INVALID,
                f"one write of {len(payload)} bytes exceeds the WAL's record limit ({MAX_RECORD_BYTES} bytes); "
                "split it into smaller batches",
            )
        with self._lock:
            if self.fenced:
                raise WalUnavailable("this node no longer owns the WAL channel (fenced)")
            got: dict[str, object] = {}

            def delivered(err: object, msg: object) -> None:
                got["err"] = err
                if err is None:
                    got["offset"] = msg.offset()  # type: ignore[attr-defined]

            headers = [(META_HEADER, str(self._meta_version()).encode())]
            try:
                self._producer.begin_transaction()
                self._producer.produce(
                    self.topic, payload, partition=self.partition, headers=headers, on_delivery=delivered
                )
                self._producer.commit_transaction(self._timeout)
            except KafkaException as e:
                err = e.args[0]
                if not err.fatal() and err.txn_requires_abort():
                    try:
                        self._producer.abort_transaction(self._timeout)
                    except KafkaException:
                        self.fenced = True
                    raise WalUnavailable(f"the write was not logged: {err.str()}") from None
                # fenced by a newer owner, or the commit's outcome is unknown: stop for good
                self.fenced = True
                log.error("WAL channel %s/%d: %s; refusing further appends", self.topic, self.partition, err.str())
                raise WalUnavailable(f"the WAL channel is no longer writable here: {err.str()}") from None
            if got.get("err") is not None or "offset" not in got:
                self.fenced = True
                raise WalUnavailable(f"the write's delivery failed: {got.get('err')}")
            offset = int(got["offset"])  # type: ignore[call-overload]
            self.acked_next = offset + 1
            return offset + 1

    @property
    def last_lsn(self) -> int:
        return self.acked_next

    @property
    def checkpoint_lsn(self) -> int:
        return self.acked_next  # nothing to replay locally: the channel is replayed from Kafka

    def mark_checkpoint(self, lsn: int) -> int:
        # The records stay in Kafka: the streaming node records the channel's checkpoint in etcd
        # once the segments are in S3 (shoal.cluster.roles.checkpoint).
        if self.on_checkpoint is not None:
            self.on_checkpoint(lsn)
        return lsn

    def replay(self, after_lsn: int = 0) -> Iterator[tuple[int, bytes]]:
        return iter(())  # owners replay through KafkaTail before serving

    def close(self) -> None:
        self._producer.flush(5)


@dataclass
class TailRecord:
    lsn: int  # offset + 1
    payload: bytes
    meta_version: int


class KafkaTail:
    """Committed records of one partition in order, from `start_offset`."""

    def __init__(self, bootstrap: Kafka, topic: str, partition: int, start_offset: int = 0) -> None:
        from confluent_kafka import Consumer, TopicPartition

        self.topic = topic
        self.partition = partition
        self._tp = TopicPartition(topic, partition, start_offset)
        self._consumer = Consumer({
            **_conf(bootstrap),
            "group.id": f"shoal-tail-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
            "fetch.message.max.bytes": MAX_RECORD_BYTES + (1 << 20),
        })
        self._consumer.assign([self._tp])
        self.position = start_offset

    def end_offset(self, timeout_s: float = 30.0) -> int:
        return int(self._consumer.get_watermark_offsets(self._tp, timeout=timeout_s, cached=False)[1])

    def poll(self, timeout_s: float) -> tuple[list[TailRecord], bool]:
        """Records fetched within `timeout_s`, and whether the end of the partition was reached."""
        from confluent_kafka import KafkaError

        out: list[TailRecord] = []
        at_end = False
        for msg in self._consumer.consume(500, timeout_s):
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    at_end = True
                    self.position = max(self.position, int(msg.offset()))
                    continue
                if err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                    continue
                log.warning("WAL tail %s/%d: %s", self.topic, self.partition, err)
                continue
            version = 0
            for key, value in msg.headers() or []:
                if key == META_HEADER and value:
                    version = int(value)
            self.position = int(msg.offset()) + 1
            out.append(TailRecord(self.position, msg.value(), version))
        return out, at_end

    def close(self) -> None:
        self._consumer.close()
