"""The node config: one YAML document per component, all in one ConfigMap.

Each component's document is `defaults < dependency connections < spec.security's
switches and paths (never a secret) < spec.config <
components.<c>.config` (mappings such as `s3:` merged key by key), rendered with sorted
keys, in the shape `shoal.config` reads (`etcd: {endpoints}`, `s3: {endpoint, bucket}`). Its SHA-256 goes into that
component's pod-template annotation, so a config change restarts only the components
whose document changed. Neighbours: `dependencies` (connections), `workloads` (mounts).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import yaml

from shoal_operator import constants as c
from shoal_operator.builders import security
from shoal_operator.builders.dependencies import Connections
from shoal_operator.builders.meta import ClusterRef, child_name, metadata
from shoal_operator.specs.cluster import MilvusClusterSpec


def config_map_name(ref: ClusterRef) -> str:
    return child_name(ref, "config")


def config_key(component: str) -> str:
    return f"{component}.yaml"


def node_config(spec: MilvusClusterSpec, component: str, conn: Connections) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "role": component,
        "port": c.GRPC_PORT,
        "http_port": c.HTTP_PORT,
        "data_dir": c.DATA_DIR,
    }
    layers = (conn.config, security.config_keys(spec), spec.config or {}, spec.components.get(component).config or {})
    for layer in layers:
        doc = merge(doc, layer)
    return doc


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def render(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc, sort_keys=True, default_flow_style=False)


def checksum(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def rendered_configs(spec: MilvusClusterSpec, conn: Connections, canaries: Iterable[str] = ()) -> dict[str, str]:
    """component -> its YAML document; a standalone canary gets its own (see below)."""
    docs = {name: render(node_config(spec, name, conn)) for name in spec.component_names}
    if "standalone" in canaries:
        # A dry run beside the real server: never the shared meta store or bucket.
        doc = node_config(spec, "standalone", conn)
        for shared in ("etcd", "s3"):
            doc.pop(shared, None)
        docs["standalone-canary"] = render(doc)
    return docs


def config_map(ref: ClusterRef, documents: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(ref, config_map_name(ref), "config"),
        "data": {config_key(name): text for name, text in sorted(documents.items())},
    }
