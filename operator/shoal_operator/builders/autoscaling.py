"""autoscaling/v2 HorizontalPodAutoscalers for components with `autoscaling` set.

The HPA owns the Deployment's replicas; `workloads` therefore omits `replicas` for
these components.
"""

from __future__ import annotations

from typing import Any

from shoal_operator.builders.meta import ClusterRef, child_name, metadata
from shoal_operator.specs.cluster import Autoscaling

DEFAULT_CPU_UTILIZATION = 80


def _resource_metric(resource: str, utilization: int) -> dict[str, Any]:
    return {
        "type": "Resource",
        "resource": {"name": resource, "target": {"type": "Utilization", "averageUtilization": utilization}},
    }


def hpa(ref: ClusterRef, component: str, scaling: Autoscaling) -> dict[str, Any]:
    metrics = []
    cpu = scaling.target_cpu_utilization
    if cpu is None and scaling.target_memory_utilization is None:
        cpu = DEFAULT_CPU_UTILIZATION
    if cpu is not None:
        metrics.append(_resource_metric("cpu", cpu))
    if scaling.target_memory_utilization is not None:
        metrics.append(_resource_metric("memory", scaling.target_memory_utilization))
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": child_name(ref, component)},
        "minReplicas": scaling.min_replicas,
        "maxReplicas": scaling.max_replicas,
        "metrics": metrics,
    }
    if scaling.behavior:
        spec["behavior"] = scaling.behavior
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(ref, child_name(ref, component), component),
        "spec": spec,
    }
