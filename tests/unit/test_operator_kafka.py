"""spec.dependencies.kafka: an in-cluster KRaft broker by default in cluster mode, or external
bootstrap servers with a credentials Secret; rendered into every role's config; Ready waits
for the broker's StatefulSet like the other dependencies."""

from __future__ import annotations

from typing import Any

import yaml

from shoal_operator.builders.cluster import desired_objects
from shoal_operator.builders.meta import ClusterRef
from shoal_operator.specs.cluster import MilvusClusterSpec

REF = ClusterRef(name="demo", namespace="vectors", uid="1234-uid")


def build(spec: dict[str, Any]) -> dict:
    desired = desired_objects(REF, MilvusClusterSpec.model_validate(spec), {}, True)
    return {(o["kind"], o["metadata"]["name"]): o for o in desired.objects}


def role_docs(objs: dict) -> dict[str, dict]:
    data = objs[("ConfigMap", "demo-config")]["data"]
    return {key.removesuffix(".yaml"): yaml.safe_load(text) for key, text in data.items()}


def test_cluster_mode_runs_an_in_cluster_kraft_broker_and_points_every_role_at_it() -> None:
    objs = build({"mode": "cluster"})
    sts = objs[("StatefulSet", "demo-kafka")]
    pod = sts["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert container["image"] == "apache/kafka:4.1.1"
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://demo-kafka.vectors.svc:9092"
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    assert container["volumeMounts"] == [{"name": "data", "mountPath": "/var/lib/kafka/data"}]
    assert pod["securityContext"] == {"fsGroup": 1000}
    assert container["readinessProbe"]["tcpSocket"] == {"port": 9092}
    assert {p["port"] for p in objs[("Service", "demo-kafka")]["spec"]["ports"]} == {9092, 9093}
    docs = role_docs(objs)
    assert set(docs) == {"coord", "streaming", "query", "index", "proxy"}
    assert all(doc["kafka_bootstrap"] == "demo-kafka.vectors.svc:9092" for doc in docs.values())


def test_in_cluster_broker_takes_image_size_and_class() -> None:
    objs = build({"mode": "cluster", "dependencies": {"kafka": {"inCluster": {
        "image": "mirror/kafka:4.1.1", "storageSize": "5Gi", "storageClassName": "fast"}}}})
    sts = objs[("StatefulSet", "demo-kafka")]
    assert sts["spec"]["template"]["spec"]["containers"][0]["image"] == "mirror/kafka:4.1.1"
    claim = sts["spec"]["volumeClaimTemplates"][0]["spec"]
    assert claim["resources"]["requests"]["storage"] == "5Gi" and claim["storageClassName"] == "fast"


def test_external_kafka_is_rendered_with_its_secret_and_no_broker_is_built() -> None:
    objs = build({"mode": "cluster", "dependencies": {"kafka": {"external": {
        "bootstrapServers": ["k1.example:9092", "k2.example:9092"], "secretRef": "kafka-creds"}}}})
    assert ("StatefulSet", "demo-kafka") not in objs and ("Service", "demo-kafka") not in objs
    assert all(doc["kafka_bootstrap"] == "k1.example:9092,k2.example:9092" for doc in role_docs(objs).values())
    deploy = objs[("Deployment", "demo-streaming")]
    env = {e["name"]: e for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["SHOAL_KAFKA_USERNAME"]["valueFrom"]["secretKeyRef"] == {"name": "kafka-creds", "key": "username"}
    assert env["SHOAL_KAFKA_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "kafka-creds", "key": "password"}


def test_standalone_has_no_kafka() -> None:
    objs = build({"mode": "standalone"})
    assert not any(name == "demo-kafka" for _, name in objs)
    assert "kafka_bootstrap" not in role_docs(objs)["standalone"]


def test_ready_waits_for_the_broker() -> None:
    from shoal_operator.handlers.cluster import _dependencies_ready

    objs = build({"mode": "cluster"})
    ready = {"demo-etcd", "demo-minio"}

    class Kube:
        def get(self, api: str, kind: str, ns: str, name: str) -> dict:
            done = name in ready
            return {"metadata": {"generation": 1}, "spec": {"replicas": 1},
                    "status": {"observedGeneration": 1, "replicas": 1, "readyReplicas": 1 if done else 0,
                               "updatedReplicas": 1, "currentReplicas": 1}}

    ok, message = _dependencies_ready(Kube(), REF, list(objs.values()))  # type: ignore[arg-type]
    assert not ok and message == "waiting for demo-kafka"
    ready.add("demo-kafka")
    assert _dependencies_ready(Kube(), REF, list(objs.values())) == (True, "dependencies are ready")  # type: ignore[arg-type]
