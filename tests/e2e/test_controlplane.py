"""The e2e control plane itself: what the operator's tests rely on, checked the way an
operator would see it (nodes, scheduling incl. the GPU pool, controllers, CRDs,
server-side dry runs, PVC binding). Uses the `k8s_cluster` fixture from conftest.py."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from kubernetes import client

if TYPE_CHECKING:
    from conftest import K8sCluster

pytestmark = pytest.mark.e2e


@pytest.fixture
def core(k8s_cluster: K8sCluster) -> Iterator[client.CoreV1Api]:
    with k8s_cluster.api_client() as api:
        yield client.CoreV1Api(api)


@pytest.fixture
def ns(k8s_cluster: K8sCluster, core: client.CoreV1Api) -> Iterator[str]:
    name = f"cp-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    k8s_cluster.wait_for(lambda: core.read_namespaced_service_account("default", name), 60, what="default SA")
    yield name
    core.delete_namespace(name)


def _pod(name: str, gpus: int = 0, tolerate_gpu: bool = False) -> dict:
    resources = {"limits": {"nvidia.com/gpu": str(gpus)}} if gpus else {}
    spec: dict = {"containers": [{"name": "main", "image": "busybox", "resources": resources}]}
    if tolerate_gpu:
        spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def _running(pod: client.V1Pod) -> bool:
    return pod.status.phase == "Running" and bool(pod.status.pod_ip)


def test_nodes_are_ready_and_gpu_pool_advertises_gpus(core: client.CoreV1Api) -> None:
    nodes = {n.metadata.name: n for n in core.list_node(label_selector="type=kwok").items}
    assert sorted(nodes) == ["kwok-cpu-0", "kwok-cpu-1", "kwok-gpu-0", "kwok-gpu-1"]
    for node in nodes.values():
        ready = {c.type: c.status for c in node.status.conditions}
        assert ready.get("Ready") == "True", node.metadata.name
    for name in ("kwok-gpu-0", "kwok-gpu-1"):
        gpu = nodes[name]
        assert gpu.status.allocatable["nvidia.com/gpu"] == "1"
        assert gpu.metadata.labels["shoal.dev/pool"] == "gpu"
        assert [(t.key, t.effect) for t in gpu.spec.taints] == [("nvidia.com/gpu", "NoSchedule")]
    for name in ("kwok-cpu-0", "kwok-cpu-1"):
        assert "nvidia.com/gpu" not in nodes[name].status.allocatable
        assert not nodes[name].spec.taints


def test_deployment_scales_to_three_running_pods(k8s_cluster: K8sCluster, core: client.CoreV1Api, ns: str) -> None:
    k8s_cluster.kubectl("-n", ns, "create", "deployment", "web", "--image=nginx", "--replicas=1")
    k8s_cluster.kubectl("-n", ns, "scale", "deployment/web", "--replicas=3")

    def three_running() -> list[client.V1Pod]:
        pods = core.list_namespaced_pod(ns, label_selector="app=web").items
        return pods if len(pods) == 3 and all(_running(p) for p in pods) else []

    pods = k8s_cluster.wait_for(three_running, 90, what="3 running web pods")
    assert len({p.status.pod_ip for p in pods}) == 3
    assert all(p.spec.node_name.startswith("kwok-cpu-") for p in pods), "untolerated pods must avoid GPU nodes"
    k8s_cluster.kubectl("-n", ns, "rollout", "status", "deployment/web", "--timeout=60s")


def test_gpu_pod_lands_on_gpu_node(k8s_cluster: K8sCluster, core: client.CoreV1Api, ns: str) -> None:
    k8s_cluster.kubectl("-n", ns, "apply", "-f", "-", input=json.dumps(_pod("trainer", gpus=1, tolerate_gpu=True)))
    pod = k8s_cluster.wait_for(
        lambda: (p := core.read_namespaced_pod("trainer", ns)) and _running(p) and p, 60, what="GPU pod running",
    )
    assert pod.spec.node_name in ("kwok-gpu-0", "kwok-gpu-1")


def test_pod_asking_for_five_gpus_stays_unschedulable(
    k8s_cluster: K8sCluster, core: client.CoreV1Api, ns: str,
) -> None:
    k8s_cluster.kubectl("-n", ns, "apply", "-f", "-", input=json.dumps(_pod("greedy", gpus=5, tolerate_gpu=True)))

    def unschedulable() -> client.V1PodCondition | None:
        pod = core.read_namespaced_pod("greedy", ns)
        return next(
            (c for c in pod.status.conditions or [] if c.type == "PodScheduled" and c.reason == "Unschedulable"),
            None,
        )

    cond = k8s_cluster.wait_for(unschedulable, 60, what="Unschedulable condition")
    assert cond.status == "False"
    assert "nvidia.com/gpu" in cond.message
    pod = core.read_namespaced_pod("greedy", ns)
    assert pod.status.phase == "Pending" and not pod.spec.node_name


CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.e2e.shoal.dev}
spec:
  group: e2e.shoal.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer, minimum: 1}
          status: {type: object, x-kubernetes-preserve-unknown-fields: true}
"""


def test_crd_and_custom_resource(k8s_cluster: K8sCluster, ns: str) -> None:
    k8s_cluster.kubectl("apply", "-f", "-", input=CRD)
    try:
        k8s_cluster.kubectl("wait", "--for=condition=Established", "crd/widgets.e2e.shoal.dev", "--timeout=60s")
        widget = {"apiVersion": "e2e.shoal.dev/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 3}}
        k8s_cluster.wait_for(
            lambda: k8s_cluster.kubectl("-n", ns, "apply", "-f", "-", input=json.dumps(widget), check=False).returncode == 0,
            30, what="custom resource accepted",
        )
        with k8s_cluster.api_client() as api:
            got = client.CustomObjectsApi(api).get_namespaced_custom_object("e2e.shoal.dev", "v1", ns, "widgets", "w1")
        assert got["spec"] == {"size": 3}

        bad = {**widget, "metadata": {"name": "w2"}, "spec": {"size": 0}}
        with pytest.raises(subprocess.CalledProcessError) as err:
            k8s_cluster.kubectl("-n", ns, "apply", "-f", "-", input=json.dumps(bad))
        assert "spec.size" in err.value.stderr
    finally:
        k8s_cluster.kubectl("delete", "crd", "widgets.e2e.shoal.dev", "--wait=false", check=False)


def test_server_side_dry_run(k8s_cluster: K8sCluster, core: client.CoreV1Api, ns: str) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dry"}, "data": {"a": "1"}}
    out = k8s_cluster.kubectl("-n", ns, "apply", "--dry-run=server", "-f", "-", input=json.dumps(cm))
    assert "server dry run" in out.stdout
    assert core.list_namespaced_config_map(ns, field_selector="metadata.name=dry").items == []

    bad = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bad"},
        "spec": {"replicas": -1, "selector": {"matchLabels": {"app": "x"}},
                 "template": {"metadata": {"labels": {"app": "y"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}},
    }
    rejected = k8s_cluster.kubectl("-n", ns, "apply", "--dry-run=server", "-f", "-", input=json.dumps(bad), check=False)
    assert rejected.returncode != 0
    assert "spec.replicas" in rejected.stderr and "selector" in rejected.stderr


def test_pvc_binds_and_delete_policy_removes_volume(
    k8s_cluster: K8sCluster, core: client.CoreV1Api, ns: str,
) -> None:
    pvc = {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}}},
    }
    k8s_cluster.kubectl("-n", ns, "apply", "-f", "-", input=json.dumps(pvc))
    bound = k8s_cluster.wait_for(
        lambda: (c := core.read_namespaced_persistent_volume_claim("data", ns)).status.phase == "Bound" and c,
        60, what="PVC bound",
    )
    assert bound.spec.storage_class_name == "standard"
    pv_name = bound.spec.volume_name
    pv = core.read_persistent_volume(pv_name)
    assert pv.spec.claim_ref.name == "data" and pv.spec.claim_ref.namespace == ns
    assert pv.spec.persistent_volume_reclaim_policy == "Delete"

    k8s_cluster.kubectl("-n", ns, "delete", "pvc", "data", "--timeout=60s")
    k8s_cluster.wait_for(
        lambda: pv_name not in {v.metadata.name for v in core.list_persistent_volume().items}, 60,
        what="released PV deleted",
    )
