"""The node side of `spec.security`: config keys, the root-password env, the TLS volume,
and the root-password Secret the operator generates once.

The password reaches a node only as `SHOAL_ROOT_PASSWORD` from a `secretKeyRef`; the
ConfigMap carries the switches and file paths, never a secret. The TLS Secret is mounted
read-only at `TLS_DIR`. Neighbours: `config` (merges `config_keys`), `workloads` (env,
volume, probe scheme), `handlers/cluster` (creates the Secret if absent).
"""

from __future__ import annotations

from typing import Any

from shoal_operator.builders.meta import ClusterRef, child_name, metadata
from shoal_operator.specs.cluster import MilvusClusterSpec

TLS_DIR = "/etc/shoal/tls"
ROOT_USER = "root"


def root_secret_name(ref: ClusterRef, spec: MilvusClusterSpec) -> str:
    return spec.security.root_password_secret or child_name(ref, "root")


def needs_root_secret(spec: MilvusClusterSpec) -> bool:
    """The operator generates the root Secret when auth is on and none is named."""
    return spec.security.authorization_enabled and not spec.security.root_password_secret


def root_secret(ref: ClusterRef, password: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(ref, child_name(ref, "root"), "security"),
        "type": "Opaque",
        "stringData": {"user": ROOT_USER, "password": password},
    }


def config_keys(spec: MilvusClusterSpec) -> dict[str, Any]:
    sec = spec.security
    out: dict[str, Any] = {}
    if sec.authorization_enabled:
        out["authorization_enabled"] = True
    if sec.tls is not None:
        out.update(tls_mode=sec.tls.mode, tls_cert=f"{TLS_DIR}/tls.crt", tls_key=f"{TLS_DIR}/tls.key")
        if sec.tls.mode == 2:
            out["tls_ca"] = f"{TLS_DIR}/ca.crt"
    return out


def env(ref: ClusterRef, spec: MilvusClusterSpec) -> list[dict[str, Any]]:
    if not spec.security.authorization_enabled:
        return []
    secret = {"name": root_secret_name(ref, spec), "key": "password"}
    return [{"name": "SHOAL_ROOT_PASSWORD", "valueFrom": {"secretKeyRef": secret}}]


def volume(spec: MilvusClusterSpec) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(volume, mount) of the TLS Secret, or None without TLS."""
    if spec.security.tls is None:
        return None
    return (
        {"name": "tls", "secret": {"secretName": spec.security.tls.secret_ref, "defaultMode": 0o400}},
        {"name": "tls", "mountPath": TLS_DIR, "readOnly": True},
    )


def probe_scheme(spec: MilvusClusterSpec) -> str:
    return "HTTPS" if spec.security.tls is not None else "HTTP"
