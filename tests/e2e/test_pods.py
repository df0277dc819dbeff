"""The pods tier: Shoal in real containers on a real kubelet (tests/e2e/conftest.py
`real_node`). The operator is installed by its Helm chart and runs from its image in a
pod; a standalone MilvusCluster's pod runs the node image built from Dockerfile.node;
pymilvus reaches it through the Service's ClusterIP (kube-proxy); a Collection resource is
made in it by the operator in its pod (through CoreDNS); metrics-server serves the pods' real
usage (`kubectl top`); deleting the pod loses no row;
under a client's load, a rolling upgrade to the `-next` tag keeps every acknowledged row
and a canary of the `-broken` tag rolls back without the client seeing a failure. Then
cluster mode: five roles (two proxies) on in-cluster etcd, SeaweedFS and Kafka, all in pods;
a second query node; a rolling upgrade of every role under load with no failed request; last,
the operator's HPA for the cluster's query role, on real CPU metrics, scales the query pool up
under a search load and back down after it.

The tests share one cluster and run in order. Run just this tier: `pytest tests/e2e -m pods`
(as root, after `scripts/setup.sh --pods`)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from pymilvus import MilvusClient

from shoal import __version__ as shoal_version
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


@pytest.mark.timeout(1500)  # its set-up starts the real node: about 2 GB of images imported, minutes when loaded

def _insert_index_and_search(c: MilvusClient) -> None:
    """What a user does first: a collection "rows", its rows, an HNSW index, a search and a count."""
    c.create_collection("rows", dimension=DIM, metric_type="L2", auto_id=False)
    vecs = vectors(ROWS)
    assert c.insert("rows", [{"id": i, "vector": vecs[i].tolist()} for i in range(ROWS)])["insert_count"] == ROWS
    c.release_collection("rows")
    c.drop_index("rows", "vector")
    params = c.prepare_index_params()
    params.add_index("vector", index_type="HNSW", metric_type="L2", params={"M": 8, "efConstruction": 64})
    c.create_index("rows", params)
    c.load_collection("rows")
    hits = c.search("rows", data=[vecs[7].tolist()], limit=3, output_fields=["id"])
    assert hits[0][0]["id"] == 7
    assert c.query("rows", output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"] == ROWS


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
    _insert_index_and_search(c)
    c.close()


def test_metrics_server_reports_the_pods_real_usage(k8s_cluster: Any, real_node: Any, milvus: str) -> None:
    """metrics-server (a host process, e2e/node/up.sh) serves metrics.k8s.io through the
    aggregation layer from kubelet's /metrics/resource: `kubectl top` shows the running pod."""
    pod = ready_pod(k8s_cluster, milvus, "app.kubernetes.io/instance=real", real_node)["metadata"]["name"]

    def top() -> list[str] | None:
        out = k8s_cluster.kubectl("top", "pod", pod, "-n", milvus, "--no-headers", check=False)
        fields = out.stdout.split()
        return fields if out.returncode == 0 and fields and fields[0] == pod else None
    try:
        _, cpu, memory = k8s_cluster.wait_for(top, timeout=180, interval=3, what=f"kubectl top pod {pod}")
    except TimeoutError as exc:
        log = real_node.run_dir / "logs" / "metrics-server.log"
        raise AssertionError(f"{exc}\n{log.read_text(errors='replace')[-3000:]}") from None
    assert cpu.endswith("m") and memory.endswith("Mi")
    assert int(memory[:-2]) > 10  # a Python server with numpy loaded, not an empty cgroup
    usage = json.loads(k8s_cluster.kubectl(
        "get", "--raw", f"/apis/metrics.k8s.io/v1beta1/namespaces/{milvus}/pods/{pod}").stdout)
    assert [c["name"] for c in usage["containers"]] == ["shoal"]
    nodes = json.loads(k8s_cluster.kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes").stdout)["items"]
    assert [n["metadata"]["name"] for n in nodes] == [real_node.name]  # kwok nodes have no kubelet


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


# ---- upgrades under load: a second tag (reports another version) and a broken third
# (never Ready), both made by e2e/node/images.sh from the same build.
IMAGE = "shoal/shoal-node"
NEXT, BROKEN = f"{shoal_version}-next", f"{shoal_version}-broken"
INSTANCE = "app.kubernetes.io/instance=real"


class Load(threading.Thread):
    """A client that keeps inserting 10 rows and searching, through the ClusterIP, with
    pymilvus' default retries and a 300 s timeout per call."""

    def __init__(self, uri: str, collection: str) -> None:
        super().__init__(daemon=True)
        self.uri, self.collection = uri, collection
        self.acked: list[int] = []
        self.failures: list[tuple[float, str]] = []
        """(time.monotonic(), what failed)"""
        self.calls = 0
        self.streak = 0
        """Calls in a row that succeeded."""
        self.halt = threading.Event()

    def run(self) -> None:
        c = MilvusClient(uri=self.uri, timeout=300)
        next_id = 0
        try:
            while not self.halt.is_set():
                ids = list(range(next_id, next_id + 10))
                next_id += 10
                vecs = vectors(10, seed=ids[0])
                rows = [{"id": i, "vector": v.tolist()} for i, v in zip(ids, vecs, strict=True)]
                if self._call(lambda: c.insert(self.collection, rows)):  # noqa: B023 (called at once)
                    self.acked.extend(ids)
                self._call(lambda: c.search(self.collection, data=[vecs[0].tolist()], limit=3))  # noqa: B023
                time.sleep(0.2)
        finally:
            c.close()

    def _call(self, fn: Any) -> bool:
        self.calls += 1
        try:
            fn()
            self.streak += 1
            return True
        except Exception as exc:  # every failure counts; the tests judge them
            self.failures.append((time.monotonic(), f"{type(exc).__name__}: {exc}"[:300]))
            self.streak = 0
            return False

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=400)


@pytest.fixture(scope="module")
def load(k8s_cluster: Any, milvus: str) -> Iterator[Load]:
    c = client(k8s_cluster, milvus)
    c.create_collection("live", dimension=DIM, metric_type="L2", auto_id=False)
    c.close()
    worker = Load(client_uri(k8s_cluster, milvus), "live")
    worker.start()
    k8s_cluster.wait_for(lambda: worker.calls >= 20, timeout=120, interval=1, what="the client's first calls")
    yield worker
    worker.stop()


def client_uri(k8s_cluster: Any, ns: str) -> str:
    ip = k8s_cluster.kubectl("get", "service", "real-milvus", "-n", ns, "-o", "jsonpath={.spec.clusterIP}").stdout
    return f"http://{ip}:19530"


def patch_cluster(k8s_cluster: Any, ns: str, spec: dict[str, Any]) -> None:
    k8s_cluster.kubectl("patch", "milvusclusters.shoal.dev", "real", "-n", ns, "--type", "merge",
                        "-p", json.dumps({"spec": spec}))


def live_images(k8s_cluster: Any, ns: str) -> list[str]:
    return sorted(p["spec"]["containers"][0]["image"] for p in pods(k8s_cluster, ns, INSTANCE)
                  if not p["metadata"].get("deletionTimestamp"))


def last_history(k8s_cluster: Any, ns: str) -> dict[str, Any]:
    history = (cluster_obj(k8s_cluster, ns, "real").get("status") or {}).get("upgradeHistory") or []
    return history[-1] if history else {}


def every_acked_row_is_there(k8s_cluster: Any, ns: str, acked: list[int]) -> None:
    every_acked_row_is_there_in(k8s_cluster, client_uri(k8s_cluster, ns), acked)


def every_acked_row_is_there_in(k8s_cluster: Any, uri: str, acked: list[int]) -> None:
    c = MilvusClient(uri=uri, timeout=120)
    got: set[int] = set()
    for start in range(0, len(acked), 1000):
        chunk = acked[start:start + 1000]
        rows = c.query("live", filter=f"id in {chunk}", output_fields=["id"], consistency_level="Strong")
        got |= {r["id"] for r in rows}
    c.close()
    assert sorted(set(acked) - got) == []


def unavailable(failure: str) -> bool:
    """A call refused while no server listened (pymilvus: code 2 'server unavailable',
    or gRPC UNAVAILABLE), as opposed to a wrong answer or any other error."""
    return "server unavailable" in failure or "UNAVAILABLE" in failure


def test_rolling_upgrade_under_load_keeps_every_row_and_reports_the_version_last(
    k8s_cluster: Any, real_node: Any, milvus: str, load: Load
) -> None:
    """Standalone is one server on one PVC (Recreate): its restart onto the new tag is an
    outage that pymilvus' default retries do not ride through (its connection recovery
    raises code 2 at the first refused reconnect). So the claim here is: the only failures
    are refused connections during that restart, no acknowledged row is lost, and the
    status names the new version only once the pod runs it. The failure count and window
    are printed (docs/e2e.md has the figures); zero failures is the canary test's claim."""
    target = f"{IMAGE}:{NEXT}"
    before = cluster_obj(k8s_cluster, milvus, "real")["status"]["version"]
    assert before == f"{IMAGE}:{shoal_version}"
    assert load.failures == []
    calls, start = load.calls, time.monotonic()
    patch_cluster(k8s_cluster, milvus, {"version": NEXT})
    seen: list[tuple[str, list[str]]] = []

    def reported() -> bool:
        version = (cluster_obj(k8s_cluster, milvus, "real").get("status") or {}).get("version")
        seen.append((version, live_images(k8s_cluster, milvus)))  # read after the status
        return version == target
    try:
        k8s_cluster.wait_for(reported, timeout=READY_S, interval=1, what=f"status.version {target}")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{seen[-3:]}\n{real_node.pod_logs()}") from None
    # The status named the new version only once every pod ran it, and said the old before.
    assert all(images == [target] for version, images in seen if version == target), seen
    assert any(version == before for version, _ in seen)
    ready_pod(k8s_cluster, milvus, INSTANCE, real_node)
    k8s_cluster.wait_for(lambda: load.streak >= 10, timeout=300, interval=1, what="10 calls in a row after")
    outage = list(load.failures)
    assert [f for _, f in outage if not unavailable(f)] == []
    window = outage[-1][0] - outage[0][0] if outage else 0.0
    print(f"standalone rolling upgrade: {len(outage)} of {load.calls - calls} calls refused over {window:.1f} s "
          f"(upgrade reported after {time.monotonic() - start:.0f} s)")
    every_acked_row_is_there(k8s_cluster, milvus, list(load.acked))
    c = client(k8s_cluster, milvus)
    assert c.get_server_version(detail=True)["version"] == f"shoal-{NEXT}"  # ServerInfo.build_tags
    c.close()
    entry = last_history(k8s_cluster, milvus)
    assert {k: entry[k] for k in ("from", "to", "strategy", "outcome")} == {
        "from": before, "to": target, "strategy": "rolling", "outcome": "Succeeded"}


def test_a_canary_of_a_broken_tag_rolls_back_on_its_own_and_the_client_never_notices(
    k8s_cluster: Any, real_node: Any, milvus: str, load: Load
) -> None:
    good, broken = f"{IMAGE}:{NEXT}", f"{IMAGE}:{BROKEN}"
    serving = ready_pod(k8s_cluster, milvus, INSTANCE, real_node)
    assert serving["spec"]["containers"][0]["image"] == good
    failures, calls_before = len(load.failures), load.calls
    patch_cluster(k8s_cluster, milvus, {"version": BROKEN, "upgrade": {
        "strategy": "canary", "canary": {"pauseSeconds": 5}, "rollbackOnFailure": True, "stepTimeoutSeconds": 45}})
    images_seen: set[str] = set()

    def rolled_back() -> bool:
        images_seen.update(live_images(k8s_cluster, milvus))
        entry = last_history(k8s_cluster, milvus)
        return entry.get("to") == broken and entry.get("outcome") == "RolledBack"
    try:
        k8s_cluster.wait_for(rolled_back, timeout=READY_S, interval=1, what="the canary rolled back")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{cluster_obj(k8s_cluster, milvus, 'real').get('status')}") from None
    assert broken in images_seen  # the canary did run the broken image
    entry = last_history(k8s_cluster, milvus)
    assert entry["from"] == good and entry["strategy"] == "canary"
    assert "not Ready" in entry["reason"] and "within 45s" in entry["reason"]
    k8s_cluster.wait_for(lambda: live_images(k8s_cluster, milvus) == [good], timeout=120, interval=1,
                         what="the canary pod gone")
    def degraded() -> str:
        status = cluster_obj(k8s_cluster, milvus, "real")["status"]
        return {c["type"]: c["reason"] for c in status["conditions"]}["Degraded"]
    k8s_cluster.wait_for(lambda: degraded() == "UpgradeRolledBack", timeout=60, interval=1,
                         what="Degraded: UpgradeRolledBack")
    assert cluster_obj(k8s_cluster, milvus, "real")["status"]["version"] == good
    # The serving pod was never touched and the client saw no failure.
    assert ready_pod(k8s_cluster, milvus, INSTANCE, real_node)["metadata"]["uid"] == serving["metadata"]["uid"]
    calls = load.calls
    k8s_cluster.wait_for(lambda: load.calls >= calls + 10, timeout=300, interval=1, what="calls after the rollback")
    assert load.failures[failures:] == []
    print(f"canary rollback: 0 of {load.calls - calls_before} calls failed")
    every_acked_row_is_there(k8s_cluster, milvus, list(load.acked))
    load.stop()  # the cluster-mode tests below need the machine's CPU more than this client


# ---- cluster mode in pods: five roles (two proxies) on in-cluster etcd, SeaweedFS and Kafka,
# all from images built here (e2e/node/images.sh); one cluster shared by the tests below.
CLUSTER = "cl"
ROLES = ("coord", "streaming", "query", "index", "proxy")
UPGRADE_S = 900  # five roles, one at a time, each a cold container start, on a loaded 2-core machine


def role_selector(role: str) -> str:
    return f"app.kubernetes.io/instance={CLUSTER},app.kubernetes.io/component={role}"


def ready_pods(k8s_cluster: Any, ns: str, selector: str) -> list[dict[str, Any]]:
    return [p for p in pods(k8s_cluster, ns, selector) if not p["metadata"].get("deletionTimestamp")
            and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or [])]


def cluster_ready(k8s_cluster: Any, ns: str) -> bool:
    status = cluster_obj(k8s_cluster, ns, CLUSTER).get("status") or {}
    return any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or [])


def cluster_uri(k8s_cluster: Any, ns: str) -> str:
    ip = k8s_cluster.kubectl("get", "service", f"{CLUSTER}-milvus", "-n", ns, "-o",
                             "jsonpath={.spec.clusterIP}").stdout
    return f"http://{ip}:19530"


@pytest.fixture(scope="module")
def milvus_cluster(k8s_cluster: Any, real_node: Any, helm_operator: str) -> Iterator[str]:
    """MilvusCluster `cl`, mode cluster, every pod on the real node: the dependencies are the
    operator's in-cluster StatefulSets (etcd, SeaweedFS as the S3 store, one KRaft broker)
    on their default images, which images.sh built under those names; two proxies."""
    ns = helm_operator
    small = {"requests": {"cpu": "50m", "memory": "128Mi"}}
    roles: dict[str, Any] = {role: {**PLACE, "resources": small} for role in ROLES}
    roles["proxy"]["replicas"] = 2
    roles["query"]["resources"] = {"requests": {"cpu": "100m", "memory": "128Mi"}}
    k8s_cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump({
        "apiVersion": API_VERSION, "kind": "MilvusCluster", "metadata": {"name": CLUSTER, "namespace": ns},
        "spec": {"mode": "cluster", "imagePullPolicy": "Never", "deletionPolicy": "Delete",
                 "dependencies": {"etcd": {"inCluster": PLACE},
                                  "storage": {"inCluster": {**PLACE, "server": "seaweedfs"}},
                                  "kafka": {"inCluster": PLACE}},
                 "components": roles},
    }))
    try:
        k8s_cluster.wait_for(lambda: cluster_ready(k8s_cluster, ns), timeout=UPGRADE_S, interval=2,
                             what=f"MilvusCluster {CLUSTER} Ready")
    except TimeoutError as exc:
        describe = k8s_cluster.kubectl("get", "pods,statefulsets,deployments", "-n", ns, "-o", "wide",
                                       check=False).stdout
        raise AssertionError(f"{exc}\n{cluster_obj(k8s_cluster, ns, CLUSTER).get('status')}\n{describe}\n"
                             f"{real_node.pod_logs()}") from None
    yield ns
    k8s_cluster.kubectl("delete", "milvusclusters.shoal.dev", CLUSTER, "-n", ns, "--timeout=120s",
                        check=False, timeout=150)


@pytest.mark.timeout(1500)  # the cluster's first start / five roles rolled, on a loaded machine
def test_cluster_mode_runs_five_roles_and_its_dependencies_in_pods(
    k8s_cluster: Any, real_node: Any, milvus_cluster: str
) -> None:
    ns = milvus_cluster
    for role in ROLES:
        running = ready_pods(k8s_cluster, ns, role_selector(role))
        assert len(running) == (2 if role == "proxy" else 1), role
        for pod in running:
            assert pod["spec"]["nodeName"] == real_node.name
            assert pod["spec"]["containers"][0]["image"] == f"{IMAGE}:{shoal_version}"
            assert pod["spec"]["containers"][0]["args"][:3] == ["run", "--role", role]
    for store in ("etcd", "minio", "kafka"):
        (pod,) = ready_pods(k8s_cluster, ns, role_selector(store))
        assert pod["spec"]["nodeName"] == real_node.name
    c = MilvusClient(uri=cluster_uri(k8s_cluster, ns), timeout=120)
    _insert_index_and_search(c)
    c.close()


def test_a_second_query_node_joins_and_searches_still_answer(
    k8s_cluster: Any, real_node: Any, milvus_cluster: str
) -> None:
    """The operator owns each role's `replicas` (it re-applies spec.components.<role>.replicas
    on every pass, docs/operator.md), so query nodes scale through the MilvusCluster; a
    `kubectl scale deployment` would be set back."""
    ns = milvus_cluster
    k8s_cluster.kubectl("patch", "milvusclusters.shoal.dev", CLUSTER, "-n", ns, "--type", "merge",
                        "-p", json.dumps({"spec": {"components": {"query": {"replicas": 2}}}}))
    try:
        k8s_cluster.wait_for(lambda: len(ready_pods(k8s_cluster, ns, role_selector("query"))) == 2,
                             timeout=READY_S, interval=2, what="two Ready query nodes")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{real_node.pod_logs()}") from None
    deploy = json.loads(k8s_cluster.kubectl("get", "deployment", f"{CLUSTER}-query", "-n", ns, "-o", "json").stdout)
    assert deploy["spec"]["replicas"] == 2
    c = MilvusClient(uri=cluster_uri(k8s_cluster, ns), timeout=120)
    vecs = vectors(ROWS)
    for i in range(0, ROWS, 20):  # the proxy spreads reads over both nodes
        hits = c.search("rows", data=[vecs[i].tolist()], limit=1, output_fields=["id"])
        assert hits[0][0]["id"] == i
    assert c.query("rows", output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"] == ROWS
    c.close()


@pytest.mark.timeout(1500)  # the cluster's first start / five roles rolled, on a loaded machine
def test_a_rolling_upgrade_of_the_cluster_under_load_fails_no_request(
    k8s_cluster: Any, real_node: Any, milvus_cluster: str
) -> None:
    """Every role rolls with maxUnavailable 0, two proxies stand behind the Service and a
    terminating proxy leaves the endpoints before its SIGTERM: the client's calls (pymilvus'
    default retries) all succeed, no acknowledged row is lost, and status.version names the
    new image only once every pod of every role runs it."""
    ns = milvus_cluster
    before, target = f"{IMAGE}:{shoal_version}", f"{IMAGE}:{NEXT}"
    c = MilvusClient(uri=cluster_uri(k8s_cluster, ns), timeout=120)
    c.create_collection("live", dimension=DIM, metric_type="L2", auto_id=False)
    c.close()
    worker = Load(cluster_uri(k8s_cluster, ns), "live")
    worker.start()
    try:
        k8s_cluster.wait_for(lambda: worker.calls >= 20, timeout=120, interval=1, what="the client's first calls")
        assert worker.failures == []
        assert cluster_obj(k8s_cluster, ns, CLUSTER)["status"]["version"] == before
        start = time.monotonic()
        k8s_cluster.kubectl("patch", "milvusclusters.shoal.dev", CLUSTER, "-n", ns, "--type", "merge",
                            "-p", json.dumps({"spec": {"version": NEXT}}))
        seen: list[tuple[str, list[str]]] = []

        def reported() -> bool:
            version = (cluster_obj(k8s_cluster, ns, CLUSTER).get("status") or {}).get("version")
            images = sorted(p["spec"]["containers"][0]["image"]
                            for p in pods(k8s_cluster, ns, f"app.kubernetes.io/instance={CLUSTER}")
                            if not p["metadata"].get("deletionTimestamp")
                            and p["metadata"]["labels"].get("app.kubernetes.io/component") in ROLES)
            seen.append((version, images))  # read after the status
            return version == target
        try:
            k8s_cluster.wait_for(reported, timeout=UPGRADE_S, interval=1, what=f"status.version {target}")
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n{seen[-3:]}\n{cluster_obj(k8s_cluster, ns, CLUSTER).get('status')}\n"
                                 f"{real_node.pod_logs()}") from None
        took = time.monotonic() - start
        assert all(set(images) == {target} for version, images in seen if version == target), seen[-5:]
        assert any(version == before for version, _ in seen)
        calls = worker.calls
        k8s_cluster.wait_for(lambda: worker.calls >= calls + 10, timeout=300, interval=1,
                             what="calls after the upgrade")
    finally:
        worker.stop()
    print(f"cluster rolling upgrade: {len(worker.failures)} of {worker.calls} calls failed, "
          f"{len(worker.acked)} rows acknowledged; reported after {took:.0f} s")
    assert worker.failures == []
    every_acked_row_is_there_in(k8s_cluster, cluster_uri(k8s_cluster, ns), worker.acked)

    def answers_as_next() -> bool:  # the old proxies serve out their drain (preStop) first
        # A dedicated connection: pymilvus shares one per URI and caches the server info of
        # its first handshake, which a proxy that drained without an error never refreshes.
        c = MilvusClient(uri=cluster_uri(k8s_cluster, ns), timeout=120, dedicated=True)
        try:
            return bool(c.get_server_version(detail=True)["version"] == f"shoal-{NEXT}")
        finally:
            c.close()
    k8s_cluster.wait_for(answers_as_next, timeout=120, interval=2, what=f"the proxies answer as shoal-{NEXT}")
    history = (cluster_obj(k8s_cluster, ns, CLUSTER)["status"].get("upgradeHistory") or [{}])[-1]
    assert {k: history.get(k) for k in ("from", "to", "strategy", "outcome")} == {
        "from": before, "to": target, "strategy": "rolling", "outcome": "Succeeded"}


# ---- an HPA on real metrics: metrics-server (e2e/node/up.sh) reads kubelet's /metrics/resource;
# the operator's HPA for the query role (spec.components.query.autoscaling) scales its Deployment.
HPA_TARGET = 50  # % of the query pod's 100m CPU request (an idle query node uses far less)
HPA_S = 300  # metrics lag one resolution (15 s), the HPA syncs every 15 s; a loaded machine is slower
HPA_BEHAVIOR = {  # the defaults wait 5 min before scaling down: far too long for a test
    "scaleUp": {"stabilizationWindowSeconds": 0},
    "scaleDown": {"stabilizationWindowSeconds": 30, "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]},
}


class SearchLoad:
    """Threads that search through the proxies' ClusterIP back to back until stopped."""

    def __init__(self, uri: str, collection: str, threads: int = 4) -> None:
        self.uri, self.collection = uri, collection
        self.halt = threading.Event()
        self.calls = 0
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def _run(self, seed: int) -> None:
        c = MilvusClient(uri=self.uri, timeout=120)
        vecs = vectors(64, seed=seed)
        try:
            while not self.halt.is_set():
                try:
                    c.search(self.collection, data=[vecs[self.calls % 64].tolist()], limit=5)
                    self.calls += 1
                except Exception as exc:  # counted; the test asserts there are none
                    self.failures.append(f"{type(exc).__name__}: {exc}"[:300])
        finally:
            c.close()

    def __enter__(self) -> SearchLoad:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.halt.set()
        for t in self.threads:
            t.join(timeout=180)


def hpa_obj(k8s_cluster: Any, ns: str, name: str) -> dict[str, Any]:
    out = k8s_cluster.kubectl("get", "hpa", name, "-n", ns, "-o", "json", check=False)
    return json.loads(out.stdout) if out.returncode == 0 else {}


@pytest.mark.timeout(1200)  # three waits of up to HPA_S
def test_an_hpa_on_real_cpu_metrics_scales_the_query_pool_up_under_a_search_load_and_back_down(
    k8s_cluster: Any, real_node: Any, milvus_cluster: str
) -> None:
    ns, name = milvus_cluster, f"{CLUSTER}-query"
    k8s_cluster.kubectl("patch", "milvusclusters.shoal.dev", CLUSTER, "-n", ns, "--type", "merge", "-p", json.dumps(
        {"spec": {"components": {"query": {"autoscaling": {
            "minReplicas": 1, "maxReplicas": 2, "targetCPUUtilization": HPA_TARGET, "behavior": HPA_BEHAVIOR}}}}}))
    hpa = k8s_cluster.wait_for(lambda: hpa_obj(k8s_cluster, ns, name), timeout=120, interval=2, what=f"HPA {name}")
    assert hpa["metadata"]["ownerReferences"][0]["kind"] == "MilvusCluster"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 30
    seen: list[tuple[int, int | None]] = []
    """(the Deployment's replicas, the HPA's measured utilization %) at each poll"""

    def replicas_and_utilization() -> tuple[int, int | None]:
        status = hpa_obj(k8s_cluster, ns, name).get("status") or {}
        cpu = [m["resource"]["current"].get("averageUtilization") for m in status.get("currentMetrics") or []
               if m.get("type") == "Resource" and m["resource"]["name"] == "cpu"]
        deploy = json.loads(k8s_cluster.kubectl("get", "deployment", name, "-n", ns, "-o", "json").stdout)
        seen.append((deploy["spec"]["replicas"], cpu[0] if cpu else None))
        return seen[-1]

    def settle(replicas: int, what: str) -> None:
        def done() -> bool:
            scale, cpu = replicas_and_utilization()
            return scale == replicas and cpu is not None \
                and len(ready_pods(k8s_cluster, ns, role_selector("query"))) == replicas
        try:
            k8s_cluster.wait_for(done, timeout=HPA_S, interval=3, what=what)
        except TimeoutError as exc:
            log = (real_node.run_dir / "logs" / "metrics-server.log").read_text(errors="replace")[-2000:]
            raise AssertionError(f"{exc}\n(replicas, cpu %) seen: {seen[-10:]}\n"
                                 f"{hpa_obj(k8s_cluster, ns, name).get('status')}\n{log}") from None

    start = time.monotonic()
    # Idle (the previous tests left two query nodes): real metrics far below the target.
    settle(1, "the HPA scaling the idle query pool to 1")
    idle = time.monotonic()
    c = MilvusClient(uri=cluster_uri(k8s_cluster, ns), timeout=120)
    c.load_collection("rows")
    c.close()
    with SearchLoad(cluster_uri(k8s_cluster, ns), "rows") as load:
        settle(2, "the HPA scaling the query pool to 2 under the search load")
        busy = max(cpu or 0 for _, cpu in seen)
        up = time.monotonic()
    assert load.failures == [], load.failures[:5]
    settle(1, "the HPA scaling the query pool back to 1 after the load")
    down = time.monotonic()
    reasons = [e["message"] for e in json.loads(k8s_cluster.kubectl(
        "get", "events", "-n", ns, "--field-selector",
        f"involvedObject.kind=HorizontalPodAutoscaler,involvedObject.name={name}", "-o", "json").stdout)["items"]
        if e["reason"] == "SuccessfulRescale"]
    # The HPA's own account: it scaled up because the measured CPU (metrics-server's) was above target.
    assert any("New size: 2" in r and "cpu resource utilization" in r and "above target" in r for r in reasons), reasons
    assert any("New size: 1" in r and "below target" in r for r in reasons), reasons
    print(f"HPA: idle pool at 1 after {idle - start:.0f} s; under {load.calls} searches 1 -> 2 (a Ready second "
          f"pod, peak {busy}% of the request) in {up - idle:.0f} s; back to 1 in {down - up:.0f} s")
