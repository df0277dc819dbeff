"""The PodMonitor: made only when asked (the CRD is served), selecting every pod of one
cluster, with the labels Milvus's dashboard filters on; and the discovery call behind it."""

from __future__ import annotations

import json
from typing import Any

from kubernetes.client.exceptions import ApiException

from shoal_operator.builders.cluster import desired_objects
from shoal_operator.builders.meta import ClusterRef
from shoal_operator.kube import Kube
from shoal_operator.specs.cluster import MilvusClusterSpec

REF = ClusterRef(name="demo", namespace="vectors", uid="1234-uid")


def _monitors(spec: dict[str, Any], pod_monitor: bool) -> list[dict[str, Any]]:
    desired = desired_objects(REF, MilvusClusterSpec.model_validate(spec), {}, True, pod_monitor=pod_monitor)
    return [o for o in desired.objects if o["kind"] == "PodMonitor"]


def test_no_pod_monitor_unless_the_crd_is_served() -> None:
    assert _monitors({"mode": "cluster"}, pod_monitor=False) == []


def test_the_pod_monitor_scrapes_every_pod_of_the_cluster_with_the_dashboards_labels() -> None:
    (pm,) = _monitors({"mode": "cluster"}, pod_monitor=True)
    assert pm["apiVersion"] == "monitoring.coreos.com/v1"
    assert pm["metadata"]["name"] == "demo-metrics" and pm["metadata"]["namespace"] == "vectors"
    assert pm["metadata"]["ownerReferences"][0]["uid"] == "1234-uid"
    assert pm["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "shoal",
                                                     "app.kubernetes.io/instance": "demo"}
    assert "app.kubernetes.io/instance" in pm["spec"]["podTargetLabels"]
    assert pm["spec"]["podMetricsEndpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]


def test_under_mutual_tls_the_pod_monitor_verifies_and_presents_the_clusters_certificate() -> None:
    (pm,) = _monitors({"security": {"tls": {"secretRef": "demo-tls", "mode": 2}}}, pod_monitor=True)
    endpoint = pm["spec"]["podMetricsEndpoints"][0]
    assert endpoint["scheme"] == "https"
    tls = endpoint["tlsConfig"]
    assert tls["ca"] == {"secret": {"name": "demo-tls", "key": "ca.crt"}}
    assert tls["cert"] == {"secret": {"name": "demo-tls", "key": "tls.crt"}}
    assert tls["keySecret"] == {"name": "demo-tls", "key": "tls.key"}
    assert tls["serverName"] == "demo-milvus.vectors.svc"


class _Response:
    def __init__(self, body: dict[str, Any]) -> None:
        self.data = json.dumps(body).encode()


class _Api:
    def __init__(self, groups: dict[str, dict[str, Any]]) -> None:
        self.groups = groups

    def call_api(self, url: str, method: str, **_: Any) -> _Response:
        if url not in self.groups:
            raise ApiException(status=404)
        return _Response(self.groups[url])


def test_serves_asks_discovery_for_the_kind() -> None:
    kube = Kube(_Api({"/apis/monitoring.coreos.com/v1": {"resources": [{"kind": "ServiceMonitor"}]}}))
    assert not kube.serves("monitoring.coreos.com/v1", "PodMonitor")
    kube.api.groups["/apis/monitoring.coreos.com/v1"]["resources"].append({"kind": "PodMonitor"})
    assert kube.serves("monitoring.coreos.com/v1", "PodMonitor")
    assert not kube.serves("example.com/v1", "PodMonitor")


def test_in_cluster_mode_the_pod_monitor_selects_every_role_pod_on_its_metrics_port() -> None:
    spec = MilvusClusterSpec.model_validate({"mode": "cluster"})
    desired = desired_objects(REF, spec, {}, True, pod_monitor=True)
    (pm,) = [o for o in desired.objects if o["kind"] == "PodMonitor"]
    selector = pm["spec"]["selector"]["matchLabels"]
    (components,) = pm["spec"]["selector"]["matchExpressions"]
    assert components["key"] == "app.kubernetes.io/component" and components["operator"] == "In"
    port = pm["spec"]["podMetricsEndpoints"][0]["port"]
    scraped: dict[str, str] = {}
    for obj in desired.objects:
        if obj["kind"] not in ("Deployment", "StatefulSet"):
            continue
        template = obj["spec"]["template"]
        pod_labels = template["metadata"]["labels"]
        if selector.items() <= pod_labels.items() and pod_labels["app.kubernetes.io/component"] in components["values"]:
            ports = {p["name"] for ct in template["spec"]["containers"] for p in ct.get("ports", [])}
            assert port in ports, obj["metadata"]["name"]  # a selected pod serves /metrics there
            scraped[pod_labels["app.kubernetes.io/component"]] = obj["metadata"]["name"]
    # each role is its own target, told apart by the component label the monitor keeps
    assert set(spec.component_names) <= set(scraped), (sorted(scraped), spec.component_names)
    assert {"proxy", "query", "streaming", "coord"} <= set(scraped)
    assert "app.kubernetes.io/component" in pm["spec"]["podTargetLabels"]
