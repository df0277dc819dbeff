"""`shoal ingest kafka` against a real Kafka broker (KRaft, Maven-resolved by scripts/kafka.sh):
100k rows produced, the ingester SIGKILLed mid-stream and restarted, exactly 100k rows at the end."""

from __future__ import annotations

import json
import re
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from pymilvus import DataType, MilvusClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fixtures_services import ServerProcess, kafka_broker_fixture, subprocess_env  # noqa: E402, F401

confluent_kafka = pytest.importorskip("confluent_kafka")
ROWS = 100_000
ROOT = Path(__file__).resolve().parents[2]


def _count(client: MilvusClient, name: str) -> int:
    return client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"]


def _produce(bootstrap: str, topic: str, start: int, stop: int) -> None:
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 20})
    for i in range(start, stop):
        row = {"id": i, "vec": [float(i % 97), 1.0, 0.0, float(i % 7)], "tag": f"t{i % 10}"}
        while True:
            try:
                producer.produce(topic, key=str(i).encode(), value=json.dumps(row).encode())
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    assert producer.flush(120) == 0
    if start == 0:  # a poison message: logged, counted, skipped
        producer.produce(topic, value=b"not json")
        assert producer.flush(120) == 0


def _ingester(bootstrap: str, topic: str, name: str, uri: str, log: Path) -> tuple[ServerProcess, list[int]]:
    ports: list[int] = []

    def ready() -> bool:
        found = re.findall(r"metrics port (\d+)", log.read_text(errors="replace")) if log.exists() else []
        if found:
            ports.append(int(found[-1]))
        return bool(found)

    args = [sys.executable, "-m", "shoal.cli", "ingest", "kafka", "--topic", topic, "--collection", name,
            "--bootstrap-servers", bootstrap, "--uri", uri, "--batch-rows", "5000", "--metrics-port", "0", "--instance-id", "ingester-1"]
    log.write_text("")
    proc = ServerProcess(args, log, ready, env=subprocess_env())
    proc.start(timeout_s=120)
    return proc, ports


def _wait(pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_kafka_ingest_survives_a_kill_mid_stream_with_exactly_every_row(kafka_broker, shoal, tmp_path: Path) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"rows_{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_broker.bootstrap})
    deadline = time.monotonic() + 120
    while True:  # a broker that just opened its port may still be electing its controller
        try:
            admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(timeout=60)
            break
        except confluent_kafka.KafkaException as e:
            if "TOPIC_ALREADY_EXISTS" in str(e):
                break
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    client = MilvusClient(uri=shoal.uri)
    name = f"kafka_{uuid.uuid4().hex[:8]}"
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=4)
    schema.add_field("tag", DataType.VARCHAR, max_length=8)
    index = client.prepare_index_params()
    index.add_index("vec", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index)

    _produce(kafka_broker.bootstrap, topic, 0, ROWS // 2)
    first, _ = _ingester(kafka_broker.bootstrap, topic, name, shoal.uri, tmp_path / "ingest1.log")
    try:
        _wait(lambda: _count(client, name) >= 10_000, 180, "the first rows")
    finally:
        first.kill()  # SIGKILL mid-stream: whatever was not committed is read again
    _produce(kafka_broker.bootstrap, topic, ROWS // 2, ROWS)
    second, ports = _ingester(kafka_broker.bootstrap, topic, name, shoal.uri, tmp_path / "ingest2.log")
    try:
        _wait(lambda: _count(client, name) >= ROWS, 300, f"{ROWS} rows")

        def lag_is_zero() -> bool:
            text = urllib.request.urlopen(f"http://127.0.0.1:{ports[-1]}/metrics", timeout=10).read().decode()
            lags = [float(v) for v in re.findall(r'shoal_ingest_kafka_lag\{[^}]*\} ([0-9.e+]+)', text)]
            return len(lags) == 2 and sum(lags) == 0

        _wait(lag_is_zero, 120, "the lag to reach 0")
        assert _count(client, name) == ROWS
        text = urllib.request.urlopen(f"http://127.0.0.1:{ports[-1]}/metrics", timeout=10).read().decode()
        assert "shoal_ingest_kafka_rows_total" in text
        row = client.query(name, filter="id == 12345", output_fields=["vec", "tag"])[0]
        assert row["tag"] == "t5" and row["vec"] == [float(12345 % 97), 1.0, 0.0, float(12345 % 7)]
    finally:
        second.stop()
