"""MilvusCluster end to end: the real operator (a subprocess) against a real API server,
with kwok running the pods. Scenarios a cluster admin would try, checked with kubectl-like
reads: children, readiness, scaling, HPA ownership, ordered upgrades, GPU placement and
its failure modes, deletion policy, operator restarts and peering."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes import watch

from shoal_operator.constants import API_VERSION
from shoal_operator.kube import Kube, owns_field
from shoal_operator.testing import OperatorProcess

OLD, NEW = "0.1.0", "0.2.0"
ROLES = ("coord", "streaming", "query", "index", "proxy")
EXTERNAL = {
    "etcd": {"external": {"endpoints": ["http://etcd.example:2379"]}},
    "storage": {"external": {"endpoint": "http://s3.example:9000"}},
    "kafka": {"external": {"bootstrapServers": ["kafka.example:9092"]}},
}


@pytest.fixture
def ns(k8s_cluster: Any, operator: OperatorProcess) -> Iterator[str]:
    name = f"op-{uuid.uuid4().hex[:8]}"
    k8s_cluster.kubectl("create", "namespace", name)
    yield name
    k8s_cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def apply(k8s_cluster: Any, ns: str, name: str, spec: dict[str, Any]) -> None:
    doc = {"apiVersion": API_VERSION, "kind": "MilvusCluster", "metadata": {"name": name}, "spec": spec}
    k8s_cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(doc))


def patch(k8s_cluster: Any, ns: str, name: str, merge: dict[str, Any]) -> None:
    import json

    k8s_cluster.kubectl("patch", "-n", ns, "milvuscluster", name, "--type=merge", "-p", json.dumps(merge))


def cluster(kube: Kube, ns: str, name: str) -> dict[str, Any]:
    obj = kube.get(API_VERSION, "MilvusCluster", ns, name)
    assert obj is not None
    return obj


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond["type"] == kind:
            return dict(cond)
    return {}


def wait_condition(
    k8s_cluster: Any, kube: Kube, ns: str, name: str, kind: str, timeout: float, **fields: str
) -> dict[str, Any]:
    """Wait until the MilvusCluster's `kind` condition carries every value in `fields`; returns it."""

    def seen() -> dict[str, Any] | None:
        cond = condition(cluster(kube, ns, name), kind)
        return cond if all(cond.get(k) == v for k, v in fields.items()) else None

    return k8s_cluster.wait_for(seen, timeout=timeout, what=f"{kind} {fields}")


def wait_ready(k8s_cluster: Any, kube: Kube, ns: str, name: str, timeout: float = 150) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        obj = cluster(kube, ns, name)
        status = obj.get("status") or {}
        if status.get("observedGeneration") == obj["metadata"]["generation"] and \
                condition(obj, "Ready").get("status") == "True":
            return obj
        return None

    return k8s_cluster.wait_for(ready, timeout=timeout, interval=1, what=f"{name} Ready")


def deployment(kube: Kube, ns: str, name: str) -> dict[str, Any]:
    obj = kube.get("apps/v1", "Deployment", ns, name)
    assert obj is not None, name
    return obj


def image_of(dep: dict[str, Any]) -> str:
    return str(dep["spec"]["template"]["spec"]["containers"][0]["image"])


def pods(kube: Kube, ns: str, selector: str) -> list[dict[str, Any]]:
    """Pods that are not on their way out."""
    return [p for p in kube.list("v1", "Pod", ns, selector) if not p["metadata"].get("deletionTimestamp")]


def test_cluster_comes_up_with_owned_children_and_ready_status(k8s_cluster: Any, kube: Kube, ns: str) -> None:
    apply(k8s_cluster, ns, "demo", {
        "mode": "cluster", "version": OLD, "dependencies": EXTERNAL,
        "components": {"proxy": {"replicas": 2}, "query": {"autoscaling": {"minReplicas": 1, "maxReplicas": 3}}},
    })
    obj = wait_ready(k8s_cluster, kube, ns, "demo")
    uid = obj["metadata"]["uid"]
    status = obj["status"]
    assert status["phase"] == "Healthy"
    assert status["endpoint"] == f"demo-milvus.{ns}.svc:19530"
    assert status["components"]["proxy"]["ready"] == 2
    for cond in ("Ready", "DependenciesReady"):
        assert condition(obj, cond)["status"] == "True"
    for cond in ("Upgrading", "Degraded", "GPUUnschedulable"):
        assert condition(obj, cond)["status"] == "False"

    children = [deployment(kube, ns, f"demo-{r}") for r in ROLES]
    children += [kube.get("v1", "Service", ns, "demo-milvus"), kube.get("v1", "ConfigMap", ns, "demo-config")]
    children += [kube.get("policy/v1", "PodDisruptionBudget", ns, f"demo-{r}") for r in ROLES]
    children.append(kube.get("autoscaling/v2", "HorizontalPodAutoscaler", ns, "demo-query"))
    for child in children:
        assert child is not None
        assert child["metadata"]["ownerReferences"][0]["uid"] == uid
        assert child["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "shoal-operator"
    for r in ROLES:
        running = pods(kube, ns, f"app.kubernetes.io/instance=demo,app.kubernetes.io/component={r}")
        assert running and all(p["status"].get("phase") == "Running" for p in running)

    table = k8s_cluster.kubectl("get", "milvusclusters", "-n", ns).stdout
    header, row = table.splitlines()[:2]
    assert header.split()[:5] == ["NAME", "PHASE", "MODE", "VERSION", "READY"]
    assert row.split()[:5] == ["demo", "Healthy", "cluster", OLD, status["ready"]]
    assert k8s_cluster.kubectl("get", "mc", "-n", ns, "-o", "name").stdout.strip() == "milvuscluster.shoal.dev/demo"


def test_scaling_a_component_and_through_the_scale_subresource(k8s_cluster: Any, kube: Kube, ns: str) -> None:
    apply(k8s_cluster, ns, "scale", {"mode": "cluster", "version": OLD, "dependencies": EXTERNAL})
    wait_ready(k8s_cluster, kube, ns, "scale")
    patch(k8s_cluster, ns, "scale", {"spec": {"components": {"query": {"replicas": 3}}}})
    obj = wait_ready(k8s_cluster, kube, ns, "scale")
    assert deployment(kube, ns, "scale-query")["spec"]["replicas"] == 3
    assert obj["status"]["components"]["query"]["ready"] == 3

    k8s_cluster.kubectl("scale", "-n", ns, "mc/scale", "--replicas=2")
    obj = wait_ready(k8s_cluster, kube, ns, "scale")
    assert obj["spec"]["components"]["proxy"]["replicas"] == 2
    assert deployment(kube, ns, "scale-proxy")["spec"]["replicas"] == 2
    k8s_cluster.wait_for(lambda: cluster(kube, ns, "scale")["status"]["scale"]["replicas"] == 2, timeout=30)


def test_switching_standalone_to_cluster_prunes_the_standalone_node(k8s_cluster: Any, kube: Kube, ns: str) -> None:
    apply(k8s_cluster, ns, "grow", {"mode": "standalone", "version": OLD, "persistence": {"enabled": False}})
    obj = wait_ready(k8s_cluster, kube, ns, "grow")
    assert list(obj["status"]["components"]) == ["standalone"]
    assert obj["status"]["scale"]["selector"].endswith("app.kubernetes.io/name=shoal")
    patch(k8s_cluster, ns, "grow", {"spec": {"mode": "cluster", "dependencies": EXTERNAL}})
    obj = wait_ready(k8s_cluster, kube, ns, "grow")
    assert sorted(obj["status"]["components"]) == sorted(ROLES)
    k8s_cluster.wait_for(lambda: kube.get("apps/v1", "Deployment", ns, "grow-standalone") is None, timeout=30,
                         what="standalone Deployment pruned")
    service = kube.get("v1", "Service", ns, "grow-milvus")
    assert service is not None and service["spec"]["selector"]["app.kubernetes.io/component"] == "proxy"


def test_config_change_restarts_only_that_component(k8s_cluster: Any, kube: Kube, ns: str) -> None:
    apply(k8s_cluster, ns, "cfg", {"mode": "cluster", "version": OLD, "dependencies": EXTERNAL})
    wait_ready(k8s_cluster, kube, ns, "cfg")
    before = {r: deployment(kube, ns, f"cfg-{r}")["metadata"]["generation"] for r in ROLES}
    patch(k8s_cluster, ns, "cfg", {"spec": {"components": {"query": {"config": {"grpc_workers": 8}}}}})
    wait_ready(k8s_cluster, kube, ns, "cfg")
    after = {r: deployment(kube, ns, f"cfg-{r}")["metadata"]["generation"] for r in ROLES}
    assert after["query"] == before["query"] + 1
    assert {r: g for r, g in after.items() if r != "query"} == {r: g for r, g in before.items() if r != "query"}
    config = kube.get("v1", "ConfigMap", ns, "cfg-config")
    assert config is not None and "grpc_workers: 8" in config["data"]["query.yaml"]


class DeploymentRecorder:
    """Watches a namespace's Deployments and keeps every event, in order."""

    def __init__(self, api: k8s.ApiClient, ns: str) -> None:
        self.events: list[k8s.V1Deployment] = []
        self._stop = threading.Event()
        self._watch = watch.Watch()
        self._thread = threading.Thread(target=self._run, args=(k8s.AppsV1Api(api), ns), daemon=True)
        self._thread.start()

    def _run(self, apps: k8s.AppsV1Api, ns: str) -> None:
        while not self._stop.is_set():
            try:
                for event in self._watch.stream(apps.list_namespaced_deployment, ns, timeout_seconds=30):
                    self.events.append(event["object"])
                    if self._stop.is_set():
                        return
            except Exception:  # a dropped watch: reconnect
                time.sleep(0.2)

    def stop(self) -> None:
        self._stop.set()
        self._watch.stop()


def rolled_out(dep: k8s.V1Deployment, image: str) -> bool:
    st = dep.status
    return (
        dep.spec.template.spec.containers[0].image == image
        and (st.observed_generation or 0) >= dep.metadata.generation
        and (st.updated_replicas or 0) == dep.spec.replicas
        and (st.available_replicas or 0) == dep.spec.replicas
        and (st.replicas or 0) == dep.spec.replicas
    )


@pytest.mark.timeout(900)
def test_upgrade_rolls_components_in_order_and_leaves_hpa_replicas_alone(
    k8s_cluster: Any, kube: Kube, ns: str
) -> None:
    apply(k8s_cluster, ns, "up", {
        "mode": "cluster", "version": OLD, "dependencies": EXTERNAL,
        "components": {"query": {"autoscaling": {"minReplicas": 2, "maxReplicas": 5}}},
    })
    wait_ready(k8s_cluster, kube, ns, "up")
    k8s_cluster.wait_for(lambda: deployment(kube, ns, "up-query")["spec"]["replicas"] == 2, timeout=60,
                         what="HPA enforces minReplicas")
    # Simulate the HPA scaling the query nodes; the operator must leave that alone.
    k8s_cluster.kubectl("scale", "-n", ns, "deployment/up-query", "--replicas=4")
    time.sleep(8)  # several resync passes
    query = deployment(kube, ns, "up-query")
    assert query["spec"]["replicas"] == 4
    assert not owns_field(query, "shoal-operator", "spec", "replicas")

    api = k8s_cluster.api_client()
    recorder = DeploymentRecorder(api, ns)
    try:
        patch(k8s_cluster, ns, "up", {"spec": {"version": NEW}})
        k8s_cluster.wait_for(
            lambda: cluster(kube, ns, "up")["metadata"]["generation"]
            == cluster(kube, ns, "up")["status"]["observedGeneration"]
            and condition(cluster(kube, ns, "up"), "Upgrading").get("status") == "True",
            timeout=60, what="Upgrading condition",
        )
        obj = wait_ready(k8s_cluster, kube, ns, "up", timeout=500)
    finally:
        recorder.stop()
        api.close()
    target = f"shoal/shoal-node:{NEW}"
    first_seen: dict[str, int] = {}
    latest: dict[str, k8s.V1Deployment] = {}
    for i, dep in enumerate(recorder.events):
        role = dep.metadata.name.removeprefix("up-")
        if dep.spec.template.spec.containers[0].image == target and role not in first_seen:
            first_seen[role] = i
            # the step before must have finished rolling out when this one started
            order = list(ROLES)
            if order.index(role) > 0:
                previous = latest[order[order.index(role) - 1]]
                assert rolled_out(previous, target), f"{role} started before {previous.metadata.name} finished"
        latest[role] = dep
    assert sorted(first_seen, key=first_seen.__getitem__) == list(ROLES)
    assert obj["status"]["version"] == target
    assert condition(obj, "Upgrading")["status"] == "False"
    for r in ROLES:
        for pod in pods(kube, ns, f"app.kubernetes.io/instance=up,app.kubernetes.io/component={r}"):
            assert pod["spec"]["containers"][0]["image"] == target
    assert deployment(kube, ns, "up-query")["spec"]["replicas"] == 4  # still the HPA's number
    events = [e for e in kube.list("v1", "Event", ns, "") if e["involvedObject"].get("name") == "up"]
    steps = sorted(e["message"] for e in events if e["reason"] == "UpgradeStep")
    assert steps == sorted(f"rolling {r} to {target}" for r in ROLES)  # (the order is checked above)
    assert not any("Timer" in e["message"] for e in events)  # no event per resync pass


def test_a_stuck_upgrade_step_is_reported_and_blocks_only_later_steps(
    k8s_cluster: Any, kube: Kube, ns: str
) -> None:
    apply(k8s_cluster, ns, "stuck", {"mode": "cluster", "version": OLD, "dependencies": EXTERNAL,
                                     "upgrade": {"stepTimeoutSeconds": 10}})
    wait_ready(k8s_cluster, kube, ns, "stuck")
    # The new coord pods can never be scheduled, so the first step cannot finish.
    patch(k8s_cluster, ns, "stuck", {"spec": {"version": NEW, "components": {
        "coord": {"nodeSelector": {"shoal.dev/pool": "nowhere"}}}}})

    cond = wait_condition(k8s_cluster, kube, ns, "stuck", "Upgrading", 120, reason="UpgradeStalled")
    assert cond["status"] == "True"
    assert "coord did not roll out to shoal/shoal-node:0.2.0 within 10s" in cond["message"]
    obj = cluster(kube, ns, "stuck")
    assert obj["status"]["phase"] == "Degraded"
    assert condition(obj, "Degraded")["reason"] == "UpgradeStalled"
    assert obj["status"]["upgrade"]["component"] == "coord"
    for later in ("streaming", "query", "index", "proxy"):
        assert image_of(deployment(kube, ns, f"stuck-{later}")) == f"shoal/shoal-node:{OLD}"
    # The operator stays responsive: other changes still go through.
    patch(k8s_cluster, ns, "stuck", {"spec": {"components": {"proxy": {"replicas": 2}}}})
    k8s_cluster.wait_for(lambda: deployment(kube, ns, "stuck-proxy")["spec"]["replicas"] == 2, timeout=30,
                         what="proxy scaled during a stalled upgrade")
    assert image_of(deployment(kube, ns, "stuck-proxy")) == f"shoal/shoal-node:{OLD}"


def test_operator_restart_does_not_touch_pods(
    k8s_cluster: Any, kube: Kube, ns: str, operator: OperatorProcess
) -> None:
    apply(k8s_cluster, ns, "calm", {"mode": "cluster", "version": OLD, "dependencies": EXTERNAL})
    wait_ready(k8s_cluster, kube, ns, "calm")
    selector = "app.kubernetes.io/instance=calm"
    before_pods = sorted(p["metadata"]["uid"] for p in pods(kube, ns, selector))
    before_gen = {r: deployment(kube, ns, f"calm-{r}")["metadata"]["generation"] for r in ROLES}
    operator.stop()
    operator.start()
    time.sleep(8)
    assert {r: deployment(kube, ns, f"calm-{r}")["metadata"]["generation"] for r in ROLES} == before_gen
    assert sorted(p["metadata"]["uid"] for p in pods(kube, ns, selector)) == before_pods
    assert condition(cluster(kube, ns, "calm"), "Ready")["status"] == "True"


def node_of(pod: dict[str, Any]) -> str:
    return str(pod["spec"].get("nodeName", ""))


def test_index_pods_land_on_the_gpu_pool(k8s_cluster: Any, kube: Kube, ns: str) -> None:
    apply(k8s_cluster, ns, "gpu", {
        "mode": "cluster", "version": OLD, "dependencies": EXTERNAL,
        "components": {"index": {"replicas": 2, "gpu": {"count": 1, "nodeSelector": {"shoal.dev/pool": "gpu"}}}},
    })
    wait_ready(k8s_cluster, kube, ns, "gpu")
    index = pods(kube, ns, "app.kubernetes.io/instance=gpu,app.kubernetes.io/component=index")
    assert sorted(node_of(p) for p in index) == ["kwok-gpu-0", "kwok-gpu-1"]
    container = index[0]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {"name": "SHOAL_INDEX_DEVICE", "value": "gpu"} in container["env"]
    query = pods(kube, ns, "app.kubernetes.io/instance=gpu,app.kubernetes.io/component=query")
    assert all(node_of(p).startswith("kwok-cpu") for p in query)


def test_unschedulable_gpu_sets_a_condition_blocks_nothing_and_falls_back(
    k8s_cluster: Any, kube: Kube, ns: str
) -> None:
    apply(k8s_cluster, ns, "greedy", {
        "mode": "cluster", "version": OLD, "dependencies": EXTERNAL,
        "components": {"index": {"gpu": {"count": 2}}},  # no node has two GPUs
    })

    cond = wait_condition(k8s_cluster, kube, ns, "greedy", "GPUUnschedulable", 90, status="True")
    assert cond["reason"] == "InsufficientGPU"
    assert "nvidia.com/gpu" in cond["message"]
    obj = cluster(kube, ns, "greedy")
    assert obj["status"]["phase"] == "Degraded"
    assert condition(obj, "Degraded")["reason"] == "GPUUnschedulable"
    # other reconciles go on: scaling the proxies still works
    patch(k8s_cluster, ns, "greedy", {"spec": {"components": {"proxy": {"replicas": 2}}}})
    k8s_cluster.wait_for(
        lambda: cluster(kube, ns, "greedy")["status"]["components"]["proxy"]["ready"] == 2, timeout=60,
        what="proxies scaled while GPUs are unschedulable",
    )
    patch(k8s_cluster, ns, "greedy", {"spec": {"components": {"index": {"gpu": {"fallbackToCPU": True}}}}})
    obj = wait_ready(k8s_cluster, kube, ns, "greedy")
    assert condition(obj, "GPUUnschedulable")["reason"] == "FellBackToCPU"
    index = pods(kube, ns, "app.kubernetes.io/instance=greedy,app.kubernetes.io/component=index")
    assert index and all(node_of(p).startswith("kwok-cpu") for p in index)
    assert {"name": "SHOAL_INDEX_DEVICE", "value": "cpu"} in index[0]["spec"]["containers"][0]["env"]


def claims(kube: Kube, ns: str, name: str) -> list[str]:
    return sorted(c["metadata"]["name"] for c in
                  kube.list("v1", "PersistentVolumeClaim", ns, f"app.kubernetes.io/instance={name}"))


DATA_LAYOUTS = {
    "cluster": ({"mode": "cluster", "dependencies": {"etcd": {"inCluster": {"storageSize": "1Gi"}},
                                                     "storage": {"inCluster": {"storageSize": "1Gi"}}}},
                ["data-data-etcd-0", "data-data-kafka-0", "data-data-minio-0"], ("StatefulSet", "data-etcd")),
    "standalone": ({"mode": "standalone", "persistence": {"size": "1Gi"}},
                   ["data-standalone-data"], ("Deployment", "data-standalone")),
}


@pytest.mark.parametrize("mode", sorted(DATA_LAYOUTS))
@pytest.mark.parametrize("policy", ["Retain", "Delete"])
def test_deletion_policy_decides_the_fate_of_pvcs(
    k8s_cluster: Any, kube: Kube, ns: str, policy: str, mode: str
) -> None:
    spec, expected, (kind, child) = DATA_LAYOUTS[mode]
    apply(k8s_cluster, ns, "data", {**spec, "version": OLD, "deletionPolicy": policy})
    obj = wait_ready(k8s_cluster, kube, ns, "data", timeout=180)
    assert condition(obj, "DependenciesReady")["status"] == "True"
    assert claims(kube, ns, "data") == expected
    k8s_cluster.kubectl("delete", "-n", ns, "milvuscluster", "data", "--timeout=120s", timeout=150)
    api_version = "apps/v1"
    k8s_cluster.wait_for(lambda: kube.get(api_version, kind, ns, child) is None, timeout=120,
                         what="children collected")
    if policy == "Retain":
        time.sleep(3)
        assert claims(kube, ns, "data") == expected
    else:
        k8s_cluster.wait_for(lambda: claims(kube, ns, "data") == [], timeout=120, what="PVCs deleted")


def test_backup_and_restore_wait_for_their_cluster_and_backup_then_make_their_jobs(
    k8s_cluster: Any, kube: Kube, ns: str
) -> None:
    docs = [
        {"apiVersion": API_VERSION, "kind": "MilvusBackup", "metadata": {"name": "nightly"},
         "spec": {"clusterRef": "demo", "schedule": "0 3 * * *", "retention": {"keepLast": 2},
                  "storage": {"bucket": "bk", "endpoint": "http://s3.example:9000", "secretRef": "keys"}}},
        {"apiVersion": API_VERSION, "kind": "MilvusRestore", "metadata": {"name": "back"},
         "spec": {"clusterRef": "demo", "backupRef": "nightly", "rename": {"a": "b"}}},
    ]
    k8s_cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all(docs))

    def reason(kind: str, name: str, want: str) -> dict[str, Any] | None:
        obj = kube.get(API_VERSION, kind, ns, name) or {}
        conds = (obj.get("status") or {}).get("conditions") or []
        return obj["status"] if conds and want in conds[0]["message"] else None

    status = k8s_cluster.wait_for(lambda: reason("MilvusBackup", "nightly", "MilvusCluster demo not found"),
                                  timeout=60, what="backup blocked on its cluster")
    assert status["phase"] == "Pending" and status["conditions"][0]["reason"] == "Blocked"
    apply(k8s_cluster, ns, "demo", {})
    cron = k8s_cluster.wait_for(lambda: kube.get("batch/v1", "CronJob", ns, "nightly-backup"), timeout=60,
                                what="the backup CronJob")
    assert cron["spec"]["schedule"] == "0 3 * * *"
    assert cron["metadata"]["ownerReferences"][0]["kind"] == "MilvusBackup"
    script = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"][2]
    assert "shoal backup create" in script and "shoal backup prune" in script and "--keep-last 2" in script
    status = k8s_cluster.wait_for(lambda: reason("MilvusBackup", "nightly", "waiting for the first scheduled run"),
                                  timeout=60, what="backup scheduled")
    assert status["phase"] == "Scheduled"
    status = k8s_cluster.wait_for(lambda: reason("MilvusRestore", "back", "has no finished backup yet"),
                                  timeout=60, what="restore waiting for a backup")
    assert status["phase"] == "Pending"
    assert kube.get("batch/v1", "Job", ns, "back-restore") is None


def test_two_operators_peer_and_only_one_acts(
    k8s_cluster: Any, kube: Kube, operator: OperatorProcess, tmp_path: Path
) -> None:
    second = OperatorProcess(k8s_cluster.kubeconfig, tmp_path / "second.log",
                             env={"SHOAL_OPERATOR_RESYNC_SECONDS": "2"})
    with second:
        def peers() -> dict[str, Any] | None:
            obj = kube.api.call_api(
                "/apis/kopf.dev/v1/clusterkopfpeerings/shoal-operator", "GET",
                auth_settings=["BearerToken"], response_type="object", _return_http_data_only=True,
            )
            status = obj.get("status") or {}
            return status if len(status) >= 2 else None

        status = k8s_cluster.wait_for(peers, timeout=60, what="two peers registered")
        priorities = [p["priority"] for p in status.values()]
        assert len(set(priorities)) == len(priorities)
        k8s_cluster.wait_for(lambda: "Pausing operations in favour of" in operator.log_tail(400)
                             + second.log_tail(400), timeout=60, what="the lower-priority operator pauses")


PODMONITOR_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "podmonitors.monitoring.coreos.com"},
    "spec": {
        "group": "monitoring.coreos.com",
        "scope": "Namespaced",
        "names": {"kind": "PodMonitor", "listKind": "PodMonitorList", "plural": "podmonitors",
                  "singular": "podmonitor"},
        "versions": [{"name": "v1", "served": True, "storage": True,
                      "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}],
    },
}


def test_a_pod_monitor_appears_once_the_prometheus_operators_crd_is_served(
    k8s_cluster: Any, kube: Kube, ns: str
) -> None:
    apply(k8s_cluster, ns, "mon", {"version": OLD, "persistence": {"enabled": False}})
    wait_ready(k8s_cluster, kube, ns, "mon")
    assert not kube.serves("monitoring.coreos.com/v1", "PodMonitor")
    k8s_cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(PODMONITOR_CRD))
    try:
        k8s_cluster.kubectl("wait", "--for=condition=established", "--timeout=60s",
                            "crd/podmonitors.monitoring.coreos.com", timeout=90)
        monitor = k8s_cluster.wait_for(
            lambda: kube.get("monitoring.coreos.com/v1", "PodMonitor", ns, "mon-metrics"),
            timeout=120, interval=1, what="PodMonitor mon-metrics",
        )
        assert monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"] == "mon"
        assert monitor["metadata"]["ownerReferences"][0]["uid"] == cluster(kube, ns, "mon")["metadata"]["uid"]
    finally:
        k8s_cluster.kubectl("delete", "crd", "podmonitors.monitoring.coreos.com", "--timeout=90s",
                            timeout=120, check=False)
