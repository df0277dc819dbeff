"""One Deployment per component (or the single standalone Deployment), and the
standalone data PVC.

Decides replicas (omitted when an HPA owns them), probes, GPU placement for the index
pool, env, volumes and the config checksum annotation. Neighbours: `config` (checksum,
ConfigMap key), `dependencies` (env), `cluster` (calls these).
"""

from __future__ import annotations

from typing import Any

from shoal_operator import constants as c
from shoal_operator.builders import security
from shoal_operator.builders.config import config_key, config_map_name
from shoal_operator.builders.meta import ClusterRef, child_name, labels, metadata, selector_labels
from shoal_operator.specs.cluster import Component, IndexComponent, MilvusClusterSpec


def data_claim_name(ref: ClusterRef) -> str:
    return child_name(ref, "standalone-data")


def default_probes(scheme: str = "HTTP") -> dict[str, dict[str, Any]]:
    # liveness: the process works (also while it drains after SIGTERM); readiness: it takes new
    # work (503 while starting or draining, so a Service stops sending it traffic first)
    live = {"path": "/healthz", "port": "http", "scheme": scheme}
    ready = {"path": "/readyz", "port": "http", "scheme": scheme}
    return {
        "livenessProbe": {"httpGet": live, "periodSeconds": 10, "failureThreshold": 6},
        "readinessProbe": {"httpGet": ready, "periodSeconds": 5, "failureThreshold": 3},
    }


def _probes(component: Component, scheme: str) -> dict[str, dict[str, Any]]:
    probes = default_probes(scheme)
    if component.probes is not None:
        if component.probes.liveness is not None:
            probes["livenessProbe"] = component.probes.liveness
        if component.probes.readiness is not None:
            probes["readinessProbe"] = component.probes.readiness
        if component.probes.startup is not None:
            probes["startupProbe"] = component.probes.startup
    return probes


def gpu_enabled(spec: MilvusClusterSpec, component: str) -> bool:
    return component == "index" and spec.mode == "cluster" and spec.components.index.gpu is not None


def _placement(component: Component, use_gpu: bool) -> dict[str, Any]:
    """nodeSelector/affinity/tolerations/spread, with the GPU pool's added on top."""
    pod: dict[str, Any] = {}
    node_selector = dict(component.node_selector or {})
    tolerations = list(component.tolerations or [])
    if use_gpu and isinstance(component, IndexComponent) and component.gpu is not None:
        gpu = component.gpu
        node_selector.update(gpu.node_selector or {})
        tolerations.append({"key": gpu.resource_name, "operator": "Exists", "effect": "NoSchedule"})
        tolerations.extend(gpu.tolerations or [])
    if node_selector:
        pod["nodeSelector"] = dict(sorted(node_selector.items()))
    if component.affinity:
        pod["affinity"] = component.affinity
    if tolerations:
        pod["tolerations"] = tolerations
    if component.topology_spread_constraints:
        pod["topologySpreadConstraints"] = component.topology_spread_constraints
    return pod


def _resources(component: Component, use_gpu: bool) -> dict[str, Any]:
    resources = {k: dict(v) for k, v in (component.resources or {}).items()}
    if use_gpu and isinstance(component, IndexComponent) and component.gpu is not None:
        limits = resources.setdefault("limits", {})
        limits[component.gpu.resource_name] = component.gpu.count
    return resources


def deployment(
    ref: ClusterRef,
    spec: MilvusClusterSpec,
    name: str,
    image: str,
    config_checksum: str,
    dependency_env: list[dict[str, Any]],
    gpu_active: bool,
) -> dict[str, Any]:
    """The Deployment of component `name`, running `image`.

    `gpu_active` is False when the GPU pool is not requested or the operator fell back
    to CPU after the GPU pods could not be scheduled.
    """
    component = spec.components.get(name)
    use_gpu = gpu_active and gpu_enabled(spec, name)
    env: list[dict[str, Any]] = list(dependency_env)
    if name == "index":
        env.append({"name": "SHOAL_INDEX_DEVICE", "value": "gpu" if use_gpu else "cpu"})
    env.extend(security.env(ref, spec))
    env.extend(component.env or [])
    container: dict[str, Any] = {
        "name": c.NODE_CONTAINER,
        "image": image,
        "imagePullPolicy": spec.image_pull_policy,
        "command": ["shoal"],
        "args": ["run", "--role", name, "--config", c.CONFIG_FILE],
        "ports": [
            {"name": "grpc", "containerPort": c.GRPC_PORT, "protocol": "TCP"},
            {"name": "http", "containerPort": c.HTTP_PORT, "protocol": "TCP"},
        ],
        "env": env,
        "volumeMounts": [
            {"name": "config", "mountPath": c.CONFIG_DIR, "readOnly": True},
            {"name": "data", "mountPath": c.DATA_DIR},
        ],
        **_probes(component, security.probe_scheme(spec)),
    }
    resources = _resources(component, use_gpu)
    if resources:
        container["resources"] = resources
    if name == "standalone" and spec.persistence.enabled:
        data_volume: dict[str, Any] = {
            "name": "data",
            "persistentVolumeClaim": {"claimName": data_claim_name(ref)},
        }
    else:
        data_volume = {"name": "data", "emptyDir": {}}
    pod_spec: dict[str, Any] = {
        "containers": [container],
        "volumes": [
            {
                "name": "config",
                "configMap": {
                    "name": config_map_name(ref),
                    "items": [{"key": config_key(name), "path": "shoal.yaml"}],
                },
            },
            data_volume,
        ],
        **_placement(component, use_gpu),
    }
    tls = security.volume(spec)
    if tls is not None:
        pod_spec["volumes"].append(tls[0])
        container["volumeMounts"].append(tls[1])
    deploy_spec: dict[str, Any] = {
        "selector": {"matchLabels": selector_labels(ref, name)},
        "template": {
            "metadata": {
                "labels": labels(ref, name),
                "annotations": {c.CONFIG_CHECKSUM_ANNOTATION: config_checksum},
            },
            "spec": pod_spec,
        },
    }
    if name == "standalone":
        # One process owns the local data: never run two side by side.
        deploy_spec["strategy"] = {"type": "Recreate"}
    else:
        deploy_spec["strategy"] = {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
        }
    if component.autoscaling is None:
        deploy_spec["replicas"] = component.replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(ref, child_name(ref, name), name),
        "spec": deploy_spec,
    }


def canary_component(name: str) -> str:
    return name + c.CANARY_SUFFIX


def canary_deployment(
    ref: ClusterRef,
    spec: MilvusClusterSpec,
    name: str,
    image: str,
    config_checksum: str,
    dependency_env: list[dict[str, Any]],
    gpu_active: bool,
) -> dict[str, Any]:
    """`<name>-<role>-canary`: one pod of role `name` on `image`, beside the role's own.

    A cluster role's canary carries the role's labels (its Service and peers use it like
    any replica) plus `shoal.dev/canary`, which keeps it out of the role's rollout. The
    standalone server owns its data, so its canary is a dry run: its own empty data dir,
    the `standalone-canary` config (no shared etcd or S3) and a label outside the Service.
    """
    dep = deployment(ref, spec, name, image, config_checksum, dependency_env, gpu_active)
    canary = canary_component(name)
    component = canary if name == "standalone" else name
    selector = {**selector_labels(ref, component), c.CANARY_LABEL: "true"}
    dep["metadata"] = metadata(ref, child_name(ref, canary), canary)
    body = dep["spec"]
    body["selector"] = {"matchLabels": selector}
    body["replicas"] = 1
    body["strategy"] = {"type": "Recreate"}
    template = body["template"]
    template["metadata"]["labels"] = {**labels(ref, component), c.CANARY_LABEL: "true"}
    if name == "standalone":
        pod = template["spec"]
        for volume in pod["volumes"]:
            if volume["name"] == "data":
                volume.pop("persistentVolumeClaim", None)
                volume["emptyDir"] = {}
            elif volume["name"] == "config":
                volume["configMap"]["items"] = [{"key": config_key(canary), "path": "shoal.yaml"}]
    return dep


def data_claim(ref: ClusterRef, spec: MilvusClusterSpec) -> dict[str, Any]:
    """The standalone data PVC; owned by the cluster only under deletionPolicy Delete."""
    claim_spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": spec.persistence.size}},
    }
    if spec.persistence.storage_class_name:
        claim_spec["storageClassName"] = spec.persistence.storage_class_name
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata(
            ref, data_claim_name(ref), "standalone", owned=spec.deletion_policy == "Delete"
        ),
        "spec": claim_spec,
    }
