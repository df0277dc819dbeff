"""The operator's only door to the API server: server-side apply, get, list, delete, and
whether an optional kind is served.

Plain dicts in and out (the builders' currency), over the official client's ApiClient,
so no per-kind API classes; discovery only for optional kinds (`serves`). Field manager `shoal-operator`
with forced conflicts: the operator is the source of truth for what it sends, and
sends nothing it does not own (e.g. replicas of an autoscaled Deployment).
"""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from shoal_operator import constants as c

_PLURALS: dict[str, str] = {
    "Deployment": "deployments",
    "StatefulSet": "statefulsets",
    "Service": "services",
    "ConfigMap": "configmaps",
    "Secret": "secrets",
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "Pod": "pods",
    "Event": "events",
    "HorizontalPodAutoscaler": "horizontalpodautoscalers",
    "PodDisruptionBudget": "poddisruptionbudgets",
    "Job": "jobs",
    "CronJob": "cronjobs",
    "PodMonitor": "podmonitors",
    c.CLUSTER_KIND: c.CLUSTER_PLURAL,
    c.COLLECTION_KIND: c.COLLECTION_PLURAL,
    c.BACKUP_KIND: c.BACKUP_PLURAL,
    c.RESTORE_KIND: c.RESTORE_PLURAL,
}


def path(api_version: str, kind: str, namespace: str, name: str | None = None, sub: str | None = None) -> str:
    root = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    out = f"{root}/namespaces/{namespace}/{_PLURALS[kind]}"
    if name:
        out += f"/{name}"
    if sub:
        out += f"/{sub}"
    return out


def load_api_client() -> client.ApiClient:
    """In-cluster service account when there, else the current kubeconfig."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.ApiClient()


class Kube:
    def __init__(self, api: client.ApiClient | None = None) -> None:
        self.api = api or load_api_client()

    def _call(
        self,
        method: str,
        url: str,
        body: Any = None,
        query: list[tuple[str, Any]] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        resp = self.api.call_api(
            url,
            method,
            query_params=query or [],
            header_params={"Accept": "application/json", "Content-Type": content_type},
            body=body,
            auth_settings=["BearerToken"],
            _preload_content=False,
            _return_http_data_only=True,
        )
        data = resp.data
        return json.loads(data) if data else {}

    def apply(self, obj: dict[str, Any], manager: str = c.FIELD_MANAGER) -> dict[str, Any]:
        meta = obj["metadata"]
        url = path(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"])
        query = [("fieldManager", manager), ("force", "true")]
        return self._call("PATCH", url, obj, query, "application/apply-patch+yaml")

    def create(self, obj: dict[str, Any]) -> bool:
        """Create unless it exists; True when this call created it."""
        meta = obj["metadata"]
        try:
            self._call("POST", path(obj["apiVersion"], obj["kind"], meta["namespace"]), obj)
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self._call("GET", path(api_version, kind, namespace, name))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, api_version: str, kind: str, namespace: str, selector: str) -> list[dict[str, Any]]:
        body = self._call("GET", path(api_version, kind, namespace), query=[("labelSelector", selector)])
        items = body.get("items") or []
        for item in items:  # list items carry no apiVersion/kind of their own
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
        return list(items)

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        try:
            self._call(
                "DELETE",
                path(api_version, kind, namespace, name),
                {"propagationPolicy": "Background"},
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    def serves(self, api_version: str, kind: str) -> bool:
        """Whether the API server serves this kind (discovery; e.g. an optional CRD such as PodMonitor)."""
        root = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        try:
            body = self._call("GET", root)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return any(r.get("kind") == kind for r in body.get("resources") or [])

    def patch_status(self, api_version: str, kind: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        self._call(
            "PATCH",
            path(api_version, kind, namespace, name, "status"),
            {"status": status},
            content_type="application/merge-patch+json",
        )


def owns_field(obj: dict[str, Any], manager: str, *field_path: str) -> bool:
    """Whether `manager`'s Apply entry in managedFields covers `field_path`."""
    for entry in obj.get("metadata", {}).get("managedFields") or []:
        if entry.get("manager") != manager or entry.get("operation") != "Apply":
            continue
        node: Any = entry.get("fieldsV1") or {}
        for part in field_path:
            node = node.get(f"f:{part}") if isinstance(node, dict) else None
            if node is None:
                break
        else:
            return True
    return False
