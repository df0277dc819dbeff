"""`spec.security` in, the objects a cluster admin would see out: no secret in any
ConfigMap, the password only through a secretKeyRef, the TLS Secret mounted, probes over
HTTPS, and the generated root Secret."""

from __future__ import annotations

from typing import Any

import yaml

from shoal.config import load_config
from shoal_operator.builders import security
from shoal_operator.builders.cluster import desired_objects
from shoal_operator.builders.meta import ClusterRef
from shoal_operator.specs.cluster import MilvusClusterSpec

REF = ClusterRef(name="demo", namespace="vectors", uid="1234-uid")
SPEC = {"security": {"authorizationEnabled": True, "tls": {"secretRef": "demo-tls", "mode": 2}}}


def _objects(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    desired = desired_objects(REF, MilvusClusterSpec.model_validate(spec), {}, True)
    return {(o["kind"], o["metadata"]["name"]): o for o in desired.objects}


def test_security_reaches_the_node_without_a_secret_in_the_config_map() -> None:
    objs = _objects(SPEC)
    doc = yaml.safe_load(objs[("ConfigMap", "demo-config")]["data"]["standalone.yaml"])
    assert doc["authorization_enabled"] is True and doc["tls_mode"] == 2
    assert doc["tls_ca"] == "/etc/shoal/tls/ca.crt"
    assert "root_password" not in doc and not any(k for k in doc if "password" in k)
    pod = objs[("Deployment", "demo-standalone")]["spec"]["template"]["spec"]
    box = pod["containers"][0]
    assert {"name": "SHOAL_ROOT_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "demo-root", "key": "password"}}} in box["env"]
    assert {"name": "tls", "mountPath": "/etc/shoal/tls", "readOnly": True} in box["volumeMounts"]
    assert {"name": "tls", "secret": {"secretName": "demo-tls", "defaultMode": 0o400}} in pod["volumes"]
    assert box["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"


def test_the_config_document_is_one_the_node_accepts(tmp_path: Any) -> None:
    objs = _objects({"security": {"authorizationEnabled": True}})
    path = tmp_path / "shoal.yaml"
    path.write_text(objs[("ConfigMap", "demo-config")]["data"]["standalone.yaml"])
    cfg = load_config(path, env={"SHOAL_ROOT_PASSWORD": "from-the-secret"})
    assert cfg.authorization_enabled and cfg.root_password_value() == "from-the-secret"


def test_root_secret_is_generated_only_when_none_is_named() -> None:
    spec = MilvusClusterSpec.model_validate(SPEC)
    assert security.needs_root_secret(spec)
    secret = security.root_secret(REF, "p4ss")
    assert secret["metadata"]["name"] == "demo-root" and secret["stringData"] == {"user": "root", "password": "p4ss"}
    named = MilvusClusterSpec.model_validate({"security": {"authorizationEnabled": True, "rootPasswordSecret": "mine"}})
    assert not security.needs_root_secret(named)
    assert security.env(REF, named)[0]["valueFrom"]["secretKeyRef"]["name"] == "mine"
    off = MilvusClusterSpec.model_validate({})
    assert not security.needs_root_secret(off) and security.env(REF, off) == [] and security.config_keys(off) == {}


def test_cluster_mode_gives_every_proxy_the_security_and_quota_settings() -> None:
    spec = {**SPEC, "mode": "cluster", "config": {"max_insert_bytes": 1000, "search_rate_vps_per_collection": 5.0}}
    objs = _objects(spec)
    data = objs[("ConfigMap", "demo-config")]["data"]
    doc = yaml.safe_load(data["proxy.yaml"])
    assert doc["role"] == "proxy" and doc["authorization_enabled"] is True and doc["tls_mode"] == 2
    assert doc["max_insert_bytes"] == 1000 and doc["search_rate_vps_per_collection"] == 5.0
    assert not any("password" in k for k in doc)
    pod = objs[("Deployment", "demo-proxy")]["spec"]["template"]["spec"]
    box = pod["containers"][0]
    assert any(e["name"] == "SHOAL_ROOT_PASSWORD" for e in box["env"])  # the first proxy creates root with it
    assert {"name": "tls", "mountPath": "/etc/shoal/tls", "readOnly": True} in box["volumeMounts"]
