"""The pods tier: Shoal in real containers on a real kubelet (tests/e2e/conftest.py
`real_node`). The operator is installed by its Helm chart and runs from its image in a
pod; a standalone MilvusCluster's pod runs the node image built from Dockerfile.node;
pymilvus reaches it through the Service's ClusterIP (kube-proxy); a Collection resource is
made in it by the operator in its pod (through CoreDNS); deleting the pod loses no row.

The tests share one cluster and run in order. Run just this tier: `pytest tests/e2e -m pods`
(as root, after `scripts/setup.sh --pods`)."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from pymilvus import MilvusClient

from shoal_operator.constants import API_VERSION

pytestmark = pytest.mark.pods

REPO = Path(__file__).resolve().parents[2]
PLACE = {
    "nodeSelector": {"shoal.dev/pool": "real"},
    "tolerations": [{"key": "shoal.dev/real", "operator": "Exists", "effect": "NoSchedule"}],
}
DIM = 8
ROWS = 200
READY_S = 240  # a cold container start on a loaded 2-core machine


@pytest.fixture(scope="module")
def ns(k8s_cluster: Any, real_node: Any) -> Iterator[str]:
    name = f"pods-{uuid.uuid4().hex[:8]}"
    k8s_cluster.kubectl("create", "namespace", name)
    yield name
    k8s_cluster.kubectl("delete", "namespace", name, "--timeout=180s", check=False, timeout=200)


@pytest.fixture(scope="module")
def helm_operator(k8s_cluster: Any, real_node: Any, ns: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`helm install` of charts/shoal-operator into `ns`, watching `ns`, on the real node."""
    helm = subprocess.run([str(REPO / "e2e" / "tools" / "helm.sh")], capture_output=True, text=True,
                          check=False, timeout=1800)
    assert helm.returncode == 0, f"e2e/tools/helm.sh failed:\n{helm.stderr[-3000:]}"
    values = {
        "image": {"repository": "shoal/shoal-operator", "tag": "e2e", "pullPolicy": "Never"},
        "replicaCount": 1,
        "watchNamespace": ns,
        "resyncSeconds": 3,
        "collectionResyncSeconds": 5,
        **PLACE,
        # The apiserver's certificate does not name the `kubernetes` Service's ClusterIP
        # (kwokctl's PKI): pods reach it at the node's address, which the certificate names.
        "extraEnv": [
            {"name": "KUBERNETES_SERVICE_HOST", "value": real_node.api_host},
            {"name": "KUBERNETES_SERVICE_PORT", "value": str(real_node.api_port)},
        ],
    }
    path = tmp_path_factory.mktemp("helm") / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    cmd = [helm.stdout.strip().splitlines()[-1], "--kubeconfig", str(k8s_cluster.kubeconfig)]
    install = subprocess.run([*cmd, "install", "shoal-operator", str(REPO / "charts" / "shoal-operator"),
                              "--namespace", ns, "-f", str(path)], capture_output=True, text=True, check=False,
                             timeout=300)
    assert install.returncode == 0, install.stderr
    yield ns
    subprocess.run([*cmd, "uninstall", "shoal-operator", "--namespace", ns], capture_output=True, check=False,
                   timeout=300)


def pods(k8s_cluster: Any, ns: str, selector: str) -> list[dict[str, Any]]:
    return json.loads(k8s_cluster.kubectl("get", "pods", "-n", ns, "-l", selector, "-o", "json").stdout)["items"]


def ready_pod(k8s_cluster: Any, ns: str, selector: str, node: Any, not_uid: str = "") -> dict[str, Any]:
    """Wait for the one Ready pod matching `selector` (other than `not_uid`) and return it."""
    def find() -> dict[str, Any] | None:
        for pod in pods(k8s_cluster, ns, selector):
            conds = {c["type"]: c["status"] for c in pod["status"].get("conditions") or []}
            if pod["metadata"]["uid"] != not_uid and conds.get("Ready") == "True" \
                    and not pod["metadata"].get("deletionTimestamp"):
                return pod
        return None
    try:
        return k8s_cluster.wait_for(find, timeout=READY_S, interval=2, what=f"a Ready pod {selector}")
    except TimeoutError as exc:
        describe = k8s_cluster.kubectl("describe", "pods", "-n", ns, "-l", selector, check=False).stdout
        raise AssertionError(f"{exc}\n{describe[-4000:]}\n{node.pod_logs()}") from None


def cluster_obj(k8s_cluster: Any, ns: str, name: str) -> dict[str, Any]:
    return json.loads(k8s_cluster.kubectl("get", "milvusclusters.shoal.dev", name, "-n", ns, "-o", "json").stdout)


@pytest.fixture(scope="module")
def milvus(
    k8s_cluster: Any, real_node: Any, helm_operator: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A standalone MilvusCluster `real` on the real node, its data on a hostPath PV."""
    ns = helm_operator
    data = tmp_path_factory.mktemp("pv")
    os.chmod(data, 0o777)  # the node image runs as uid 10001; hostPath volumes get no fsGroup
    k8s_cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": f"{ns}-data"},
         "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                  "storageClassName": f"{ns}-local", "persistentVolumeReclaimPolicy": "Retain",
                  "hostPath": {"path": str(data), "type": "Directory"}}},
        {"apiVersion": API_VERSION, "kind": "MilvusCluster", "metadata": {"name": "real", "namespace": ns},
         "spec": {"mode": "standalone", "imagePullPolicy": "Never",
                  "persistence": {"size": "1Gi", "storageClassName": f"{ns}-local"},
                  "components": {"standalone": {**PLACE, "resources": {"requests": {"cpu": "100m",
                                                                                     "memory": "256Mi"}}}}}},
    ]))
    yield ns
    # While the operator still runs: it removes its finalizers from these.
    for kind in ("collections.shoal.dev", "milvusclusters.shoal.dev"):
        k8s_cluster.kubectl("delete", kind, "--all", "-n", ns, "--timeout=120s", check=False, timeout=150)
    k8s_cluster.kubectl("delete", "pv", f"{ns}-data", "--wait=false", check=False)


def client(k8s_cluster: Any, ns: str) -> MilvusClient:
    ip = k8s_cluster.kubectl("get", "service", "real-milvus", "-n", ns, "-o", "jsonpath={.spec.clusterIP}").stdout
    return MilvusClient(uri=f"http://{ip}:19530", timeout=60)


def vectors(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, DIM), dtype=np.float32)


def test_operator_runs_from_its_image_installed_by_helm(k8s_cluster: Any, real_node: Any, helm_operator: str) -> None:
    pod = ready_pod(k8s_cluster, helm_operator, "app.kubernetes.io/name=shoal-operator", real_node)
    assert pod["spec"]["nodeName"] == real_node.name
    status = pod["status"]["containerStatuses"][0]
    assert status["image"].endswith("shoal/shoal-operator:e2e") and status["started"]


def test_standalone_pod_serves_pymilvus_through_the_cluster_ip(k8s_cluster: Any, real_node: Any, milvus: str) -> None:
    pod = ready_pod(k8s_cluster, milvus, "app.kubernetes.io/instance=real", real_node)
    assert pod["spec"]["nodeName"] == real_node.name
    probe = pod["spec"]["containers"][0]["readinessProbe"]["httpGet"]
    assert probe["path"] in ("/healthz", "/readyz")
    k8s_cluster.wait_for(
        lambda: any(c["type"] == "Ready" and c["status"] == "True"
                    for c in (cluster_obj(k8s_cluster, milvus, "real").get("status") or {}).get("conditions") or []),
        timeout=READY_S, interval=2, what="MilvusCluster real Ready",
    )
    c = client(k8s_cluster, milvus)
    c.create_collection("rows", dimension=DIM, metric_type="L2", auto_id=False)
    vecs = vectors(ROWS)
    res = c.insert("rows", [{"id": i, "vector": vecs[i].tolist()} for i in range(ROWS)])
    assert res["insert_count"] == ROWS
    c.release_collection("rows")
    c.drop_index("rows", "vector")
    params = c.prepare_index_params()
    params.add_index("vector", index_type="HNSW", metric_type="L2", params={"M": 8, "efConstruction": 64})
    c.create_index("rows", params)
    c.load_collection("rows")
    hits = c.search("rows", data=[vecs[7].tolist()], limit=3, output_fields=["id"])
    assert hits[0][0]["id"] == 7
    assert c.query("rows", output_fields=["count(*)"])[0]["count(*)"] == ROWS
    c.close()


def test_collection_resource_creates_its_collection_through_the_in_cluster_operator(
    k8s_cluster: Any, real_node: Any, milvus: str
) -> None:
    k8s_cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump({
        "apiVersion": API_VERSION, "kind": "Collection", "metadata": {"name": "docs", "namespace": milvus},
        "spec": {"name": "docs", "target": {"clusterRef": "real"},
                 "schema": {"primaryKey": "id", "fields": [
                     {"name": "id", "dataType": "INT64"},
                     {"name": "embedding", "dataType": "FLOAT_VECTOR", "dim": DIM}]},
                 "indexes": [{"fieldName": "embedding", "indexType": "FLAT", "metricType": "L2"}],
                 "loadState": "Loaded"},
    }))

    def phase() -> str:
        obj = json.loads(k8s_cluster.kubectl("get", "collections.shoal.dev", "docs", "-n", milvus, "-o", "json").stdout)
        return (obj.get("status") or {}).get("phase", "")
    try:
        k8s_cluster.wait_for(lambda: phase() == "Ready", timeout=180, interval=2, what="Collection docs Ready")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{real_node.pod_logs()}") from None
    c = client(k8s_cluster, milvus)
    assert "docs" in c.list_collections()
    assert [f["name"] for f in c.describe_collection("docs")["fields"]] == ["id", "embedding"]
    c.close()


def test_a_deleted_pod_is_replaced_and_keeps_every_row(k8s_cluster: Any, real_node: Any, milvus: str) -> None:
    old = ready_pod(k8s_cluster, milvus, "app.kubernetes.io/instance=real", real_node)
    k8s_cluster.kubectl("delete", "pod", old["metadata"]["name"], "-n", milvus, "--wait=false")
    new = ready_pod(k8s_cluster, milvus, "app.kubernetes.io/instance=real", real_node, not_uid=old["metadata"]["uid"])
    assert new["metadata"]["name"] != old["metadata"]["name"]

    def count() -> int:
        c = client(k8s_cluster, milvus)
        try:
            c.load_collection("rows")
            return int(c.query("rows", output_fields=["count(*)"])[0]["count(*)"])
        finally:
            c.close()
    assert k8s_cluster.wait_for(count, timeout=120, interval=2, what="rows after the restart") == ROWS
    c = client(k8s_cluster, milvus)
    got = c.query("rows", filter="id >= 0", output_fields=["id"], limit=ROWS + 10)
    assert sorted(r["id"] for r in got) == list(range(ROWS))
    hits = c.search("rows", data=[vectors(ROWS)[42].tolist()], limit=1, output_fields=["id"])
    assert hits[0][0]["id"] == 42
    c.close()
