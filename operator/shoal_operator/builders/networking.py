"""The client-facing Service and the PodDisruptionBudgets."""

from __future__ import annotations

from typing import Any

from shoal_operator import constants as c
from shoal_operator.builders.meta import ClusterRef, child_name, metadata, selector_labels, service_name
from shoal_operator.specs.cluster import MilvusClusterSpec


def front_component(spec: MilvusClusterSpec) -> str:
    return "proxy" if spec.mode == "cluster" else "standalone"


def service(ref: ClusterRef, spec: MilvusClusterSpec) -> dict[str, Any]:
    """`<name>-milvus`: gRPC :19530 and metrics :9091 of the proxies (or standalone)."""
    front = front_component(spec)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(ref, service_name(ref), front),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(ref, front),
            "ports": [
                {"name": "grpc", "port": c.GRPC_PORT, "targetPort": "grpc", "protocol": "TCP"},
                {"name": "metrics", "port": c.HTTP_PORT, "targetPort": "http", "protocol": "TCP"},
            ],
        },
    }


def endpoint(ref: ClusterRef) -> str:
    return f"{service_name(ref)}.{ref.namespace}.svc:{c.GRPC_PORT}"


def pod_disruption_budget(ref: ClusterRef, component: str) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(ref, child_name(ref, component), component),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector_labels(ref, component)}},
    }
