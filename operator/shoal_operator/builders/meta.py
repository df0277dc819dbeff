"""Names, labels, owner references and metadata shared by every builder."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shoal_operator import constants as c


@dataclass(frozen=True)
class ClusterRef:
    """The MilvusCluster that owns the children: enough for names and owner references."""

    name: str
    namespace: str
    uid: str

    @classmethod
    def from_body(cls, body: Any) -> ClusterRef:
        meta = body["metadata"]
        return cls(name=meta["name"], namespace=meta["namespace"], uid=meta["uid"])


def child_name(ref: ClusterRef, component: str) -> str:
    return f"{ref.name}-{component}"


def service_name(ref: ClusterRef) -> str:
    return f"{ref.name}-milvus"


def selector_labels(ref: ClusterRef, component: str) -> dict[str, str]:
    """Immutable Deployment selectors: never add to these."""
    return {
        c.NAME_LABEL: c.APP_NAME,
        c.INSTANCE_LABEL: ref.name,
        c.COMPONENT_LABEL: component,
    }


def labels(ref: ClusterRef, component: str) -> dict[str, str]:
    return {**selector_labels(ref, component), c.MANAGED_BY_LABEL: c.MANAGED_BY, c.PART_OF_LABEL: c.APP_NAME}


def owner_reference(ref: ClusterRef) -> dict[str, Any]:
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.CLUSTER_KIND,
        "name": ref.name,
        "uid": ref.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def metadata(ref: ClusterRef, name: str, component: str, owned: bool = True) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": ref.namespace,
        "labels": labels(ref, component),
    }
    if owned:
        meta["ownerReferences"] = [owner_reference(ref)]
    return meta


def managed_selector(ref: ClusterRef) -> str:
    """Label selector for everything this operator made for one cluster."""
    return f"{c.INSTANCE_LABEL}={ref.name},{c.MANAGED_BY_LABEL}={c.MANAGED_BY}"
