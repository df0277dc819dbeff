"""Reads live children into the plain values the pure modules decide on.

`rollout` turns a Deployment and its pods into an `upgrade.Rollout`; `statefulset_ready`
judges an in-cluster dependency. Pure functions over API dicts (no client here).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from shoal_operator import constants as c
from shoal_operator.upgrade import Requests, Rollout


def container_image(pod_spec: Mapping[str, Any], container: str = c.NODE_CONTAINER) -> str:
    for item in pod_spec.get("containers") or []:
        if item.get("name") == container:
            return str(item.get("image", ""))
    return ""


def live_pods(pods: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Pods that serve or will serve: not terminating, not finished. A terminating pod is
    already out of the Service's endpoints, so it no longer holds an upgrade back."""
    return [
        p
        for p in pods
        if not p.get("metadata", {}).get("deletionTimestamp")
        and p.get("status", {}).get("phase") not in ("Succeeded", "Failed")
    ]


def rollout(deployment: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> Rollout:
    spec = deployment.get("spec", {})
    status = deployment.get("status", {})
    return Rollout(
        template_image=container_image(spec.get("template", {}).get("spec", {})),
        generation=int(deployment.get("metadata", {}).get("generation", 0)),
        observed_generation=int(status.get("observedGeneration", 0)),
        replicas=int(spec.get("replicas", 1)),
        status_replicas=int(status.get("replicas", 0)),
        updated_replicas=int(status.get("updatedReplicas", 0)),
        available_replicas=int(status.get("availableReplicas", 0)),
        pod_images=tuple(sorted(container_image(p.get("spec", {})) for p in live_pods(pods))),
    )


def ready_replicas(deployment: Mapping[str, Any] | None) -> int:
    if not deployment:
        return 0
    return int(deployment.get("status", {}).get("readyReplicas", 0))


def pods_by_component(pods: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """component -> its pods; a canary pod goes under `<component>-canary`, never its role's."""
    out: dict[str, list[Mapping[str, Any]]] = {}
    for pod in pods:
        pod_labels = pod.get("metadata", {}).get("labels", {})
        name = pod_labels.get(c.COMPONENT_LABEL, "")
        if pod_labels.get(c.CANARY_LABEL) == "true" and not name.endswith(c.CANARY_SUFFIX):
            name += c.CANARY_SUFFIX
        out.setdefault(name, []).append(pod)
    return out


def pod_ready(pod: Mapping[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(x.get("type") == "Ready" and x.get("status") == "True" for x in conditions)


_REQUESTS = "milvus_proxy_req_count{"


def request_counts(text: str) -> Requests:
    """Summed `milvus_proxy_req_count` totals and failures from one /metrics page."""
    total = failed = 0.0
    for line in text.splitlines():
        if not line.startswith(_REQUESTS):
            continue
        labels, _, value = line[len(_REQUESTS):].rpartition("} ")
        try:
            number = float(value.split()[0])
        except (ValueError, IndexError):
            continue
        if 'status="total"' in labels:
            total += number
        elif 'status="fail"' in labels:
            failed += number
    return Requests(total, failed)


def statefulset_ready(sts: Mapping[str, Any] | None) -> bool:
    if not sts:
        return False
    want = int(sts.get("spec", {}).get("replicas", 1))
    status = sts.get("status", {})
    return (
        int(status.get("observedGeneration", 0)) >= int(sts.get("metadata", {}).get("generation", 0))
        and int(status.get("readyReplicas", 0)) >= want
    )
