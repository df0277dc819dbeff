"""Everything one MilvusCluster should own, in apply order.

Input: the cluster's identity, its spec, the image each component should run now (the
upgrade plan decides), whether the GPU pool is in use, and whether to add a PodMonitor. Output: the objects to apply
and the ones to create only if absent. Pure; see `handlers/cluster` for the I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shoal_operator.builders import autoscaling, config, dependencies, monitoring, networking, workloads
from shoal_operator.builders.meta import ClusterRef, child_name
from shoal_operator.specs.cluster import MilvusClusterSpec


@dataclass(frozen=True)
class Desired:
    objects: list[dict[str, Any]]
    """Server-side applied on every reconcile, in this order."""
    autoscaled: frozenset[str] = frozenset()
    """Names of Deployments whose replicas belong to an HPA."""
    checksums: dict[str, str] = field(default_factory=dict)
    """component -> config checksum on its pod template."""


def desired_objects(
    ref: ClusterRef,
    spec: MilvusClusterSpec,
    images: Mapping[str, str],
    gpu_active: bool = True,
    pod_monitor: bool = False,
    canaries: Mapping[str, str] | None = None,
) -> Desired:
    """`canaries`: component -> image of its canary Deployment (the upgrade decides)."""
    canaries = canaries or {}
    conn = dependencies.connections(ref, spec)
    documents = config.rendered_configs(spec, conn, canaries)
    checksums = {name: config.checksum(text) for name, text in documents.items()}
    objects: list[dict[str, Any]] = [config.config_map(ref, documents)]
    objects += dependencies.dependency_objects(ref, spec)
    if spec.mode == "standalone" and spec.persistence.enabled:
        objects.append(workloads.data_claim(ref, spec))
    autoscaled: set[str] = set()
    for name in spec.component_names:
        image = images.get(name, spec.target_image)
        objects.append(
            workloads.deployment(ref, spec, name, image, checksums[name], conn.env, gpu_active)
        )
    for name, image in canaries.items():
        key = workloads.canary_component(name) if name == "standalone" else name
        objects.append(
            workloads.canary_deployment(ref, spec, name, image, checksums[key], conn.env, gpu_active)
        )
    objects.append(networking.service(ref, spec))
    if spec.mode == "cluster":
        objects += [networking.pod_disruption_budget(ref, name) for name in spec.component_names]
    for name in spec.component_names:
        scaling = spec.components.get(name).autoscaling
        if scaling is not None:
            objects.append(autoscaling.hpa(ref, name, scaling))
            autoscaled.add(child_name(ref, name))
    if pod_monitor:  # only where the Prometheus Operator's CRD is served
        objects.append(monitoring.pod_monitor(ref, spec))
    return Desired(objects=objects, autoscaled=frozenset(autoscaled), checksums=checksums)


def object_key(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    return (obj["apiVersion"], obj["kind"], obj["metadata"]["name"])


OWNED_KINDS: tuple[tuple[str, str], ...] = (
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("v1", "Service"),
    ("v1", "ConfigMap"),
    ("policy/v1", "PodDisruptionBudget"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
)
"""Kinds pruned when no longer desired (PVCs and Secrets are never pruned: data)."""


def stale_objects(
    desired: list[dict[str, Any]], live: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Live children of a pruned kind that the spec no longer asks for."""
    wanted = {object_key(o) for o in desired}
    prunable = set(OWNED_KINDS)
    return [
        o
        for o in live
        if (o["apiVersion"], o["kind"]) in prunable and object_key(o) not in wanted
    ]
