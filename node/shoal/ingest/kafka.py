"""`shoal ingest kafka`: JSON rows from a Kafka topic into a collection, at least once, made
idempotent by upserting on the primary key.

The consumer reads a batch, upserts it through pymilvus (duplicates inside a batch: the last
one wins), and commits the batch's offsets only once the upsert is acknowledged — a crash
before the commit replays the batch, and the upsert makes the replay harmless. A message
that is not a JSON object, or a row the server refuses, is logged and counted and never
stalls the stream. `/metrics` on `--metrics-port` shows rows, bad messages and the lag per
partition. Uses confluent-kafka (librdkafka); it is a client of the server, not part of it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("shoal.ingest.kafka")


@dataclass
class IngestConfig:
    topic: str
    collection: str
    bootstrap_servers: str = "127.0.0.1:9092"
    uri: str = "http://127.0.0.1:19530"
    database: str = "default"
    group: str = ""
    batch_rows: int = 5000
    metrics_port: int = 9190  # 0: no /metrics
    token: str = ""
    instance_id: str = ""  # static group membership: a restarted ingester takes its partitions back at once


class KafkaIngester:
    def __init__(self, cfg: IngestConfig) -> None:
        from confluent_kafka import Consumer
        from prometheus_client import CollectorRegistry, Counter, Gauge
        from pymilvus import MilvusClient

        self.cfg = cfg
        self.stop_requested = threading.Event()
        conf = {
            "bootstrap.servers": cfg.bootstrap_servers,
            "group.id": cfg.group or f"shoal-ingest-{cfg.collection}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
        if cfg.instance_id:
            conf["group.instance.id"] = cfg.instance_id
        self.consumer = Consumer(conf)
        self.client = MilvusClient(uri=cfg.uri, db_name=cfg.database, token=cfg.token)
        self.pk = next(f["name"] for f in self.client.describe_collection(cfg.collection)["fields"]
                       if f.get("is_primary"))
        self.registry = CollectorRegistry()
        self.rows = Counter("shoal_ingest_kafka_rows", "Rows upserted from Kafka", ["topic"], registry=self.registry)
        self.bad = Counter("shoal_ingest_kafka_bad_messages", "Messages skipped: not JSON objects or refused rows",
                           ["topic"], registry=self.registry)
        self.lag = Gauge("shoal_ingest_kafka_lag", "Messages in the topic not yet ingested", ["topic", "partition"],
                         registry=self.registry)
        self.metrics_port = 0

    def serve_metrics(self) -> int:
        from prometheus_client import start_http_server

        if self.cfg.metrics_port < 0:
            return 0
        server, _ = start_http_server(self.cfg.metrics_port, addr="127.0.0.1", registry=self.registry)
        self.metrics_port = int(server.server_address[1])
        return self.metrics_port

    def run(self) -> None:
        self.consumer.subscribe([self.cfg.topic])
        try:
            while not self.stop_requested.is_set():
                messages = self.consumer.consume(num_messages=self.cfg.batch_rows, timeout=1.0)
                if messages:
                    self._ingest(messages)
                    # offsets only after the write is acknowledged: a crash before here replays the batch
                    self.consumer.commit(asynchronous=False)
                self._update_lag()
        finally:
            self.consumer.close()

    def _ingest(self, messages: list[Any]) -> None:
        rows: dict[Any, dict[str, Any]] = {}
        for m in messages:
            if m.error():
                log.warning("kafka error: %s", m.error())
                continue
            try:
                row = json.loads(m.value())
            except (TypeError, ValueError):
                row = None
            if not isinstance(row, dict) or self.pk not in row:
                self.bad.labels(self.cfg.topic).inc()
                log.warning("skipped message at %s[%d]@%d: not a JSON object with %r",
                            m.topic(), m.partition(), m.offset(), self.pk)
                continue
            rows[row[self.pk]] = row  # the newest message of a key wins
        if rows:
            self._upsert(list(rows.values()))

    def _upsert(self, rows: list[dict[str, Any]]) -> None:
        from pymilvus import MilvusException

        delay = 0.5
        while True:
            try:
                self.client.upsert(self.cfg.collection, rows)
                self.rows.labels(self.cfg.topic).inc(len(rows))
                return
            except MilvusException as e:
                if _is_data_error(e) and len(rows) > 1:
                    for row in rows:  # find the refused rows; the others go in
                        self._upsert([row])
                    return
                if _is_data_error(e):
                    self.bad.labels(self.cfg.topic).inc()
                    log.warning("row refused by the server: %s", e)
                    return
                if self.stop_requested.is_set():
                    raise
                log.warning("upsert failed (%s); retrying in %.1fs", e, delay)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _update_lag(self) -> None:
        try:
            assigned = self.consumer.assignment()
            if not assigned:
                return
            positions = self.consumer.position(assigned)
            for tp in positions:
                _, high = self.consumer.get_watermark_offsets(tp, timeout=5.0, cached=False)
                pos = tp.offset if tp.offset >= 0 else 0
                self.lag.labels(tp.topic, str(tp.partition)).set(max(0, high - pos))
        except Exception as e:  # lag is advisory; a slow broker must not stop ingestion
            log.debug("lag update failed: %s", e)


def _is_data_error(e: Exception) -> bool:
    """The server refused the rows themselves (bad values): retrying cannot help."""
    code = getattr(e, "code", None)
    return code in (1, 1100) or type(e).__name__ in ("DataNotMatchException", "ParamError", "DataTypeNotSupportException")
