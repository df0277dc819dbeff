"""The Prometheus Operator's PodMonitor for one MilvusCluster: every Shoal pod's `/metrics`
(the standalone pod, or each cluster role's: proxy, coord, streaming, query, index).

Made only where the API server serves the `monitoring.coreos.com/v1` PodMonitor kind
(`handlers/cluster` asks discovery). The pods' `app.kubernetes.io/*` labels become
`app_kubernetes_io_*` target labels, the selector Milvus's Grafana dashboard filters on;
the Prometheus Operator adds `namespace` and `pod` itself.
"""

from __future__ import annotations

from typing import Any

from shoal_operator import constants as c
from shoal_operator.builders.meta import ClusterRef, child_name, metadata, service_name
from shoal_operator.specs.cluster import MilvusClusterSpec

API_VERSION = "monitoring.coreos.com/v1"
KIND = "PodMonitor"
SCRAPE_INTERVAL = "30s"


def pod_monitor(ref: ClusterRef, spec: MilvusClusterSpec) -> dict[str, Any]:
    endpoint: dict[str, Any] = {"port": "http", "path": "/metrics", "interval": SCRAPE_INTERVAL}
    tls = spec.security.tls
    if tls is not None:  # the HTTP port speaks TLS too: verify against the cluster's own Secret
        def key(name: str) -> dict[str, Any]:
            return {"secret": {"name": tls.secret_ref, "key": name}}

        config: dict[str, Any] = {"ca": key("ca.crt"), "serverName": f"{service_name(ref)}.{ref.namespace}.svc"}
        if tls.mode == 2:  # mutual TLS: the pods' own certificate is signed by that CA
            config["cert"] = key("tls.crt")
            config["keySecret"] = {"name": tls.secret_ref, "key": "tls.key"}
        endpoint["scheme"] = "https"
        endpoint["tlsConfig"] = config
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": metadata(ref, child_name(ref, "metrics"), "metrics"),
        "spec": {
            # Shoal's own pods only (standalone, or each cluster role): not the bundled etcd/Kafka/S3
            "selector": {
                "matchLabels": {c.NAME_LABEL: c.APP_NAME, c.INSTANCE_LABEL: ref.name},
                "matchExpressions": [{"key": c.COMPONENT_LABEL, "operator": "In",
                                      "values": sorted(spec.component_names)}],
            },
            "podTargetLabels": [c.NAME_LABEL, c.INSTANCE_LABEL, c.COMPONENT_LABEL],
            "podMetricsEndpoints": [endpoint],
        },
    }
