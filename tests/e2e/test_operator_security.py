"""`spec.security` end to end: the real operator against a real API server.

kwok runs no containers, so the node is started here exactly as its pod would start it:
the component's document from the operator's ConfigMap as `--config`, and
`SHOAL_ROOT_PASSWORD` resolved from the Deployment's `secretKeyRef`. pymilvus without the
Secret's password is refused, with it served; the password is in no ConfigMap, status,
Event, operator log or node log, and later reconciles keep the generated Secret as it was.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from pymilvus import MilvusClient, MilvusException

from shoal_operator.constants import API_VERSION
from shoal_operator.kube import Kube
from shoal_operator.testing import OperatorProcess

ROOT = Path(__file__).resolve().parents[2]
_LISTEN = re.compile(r"Shoal listening on [\d.]+:(\d+)")


def _secret_value(kube: Kube, ns: str, name: str, key: str) -> str:
    secret = kube.get("v1", "Secret", ns, name)
    assert secret is not None, f"Secret {name} missing"
    return base64.b64decode(secret["data"][key]).decode()


def _run_node(tmp: Path, document: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int, Path]:
    config = tmp / "shoal.yaml"
    config.write_text(document)
    log = tmp / "node.log"
    cmd = [sys.executable, "-m", "shoal.cli", "run", "--config", str(config), "--data", str(tmp / "data"),
           "--host", "127.0.0.1", "--port", "0", "--http-port", "0"]
    full_env = {**os.environ, "PYTHONPATH": str(ROOT / "node"), "PYTHONUNBUFFERED": "1", **env}
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=full_env)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        found = _LISTEN.search(log.read_text(errors="replace"))
        if found:
            return proc, int(found.group(1)), log
        assert proc.poll() is None, log.read_text()
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"the node did not start:\n{log.read_text()}")


def test_security_on_a_standalone_cluster(k8s_cluster: Any, kube: Kube, operator: OperatorProcess,
                                          tmp_path: Path) -> None:
    ns, name = f"sec-{uuid.uuid4().hex[:8]}", "vault"
    k8s_cluster.kubectl("create", "namespace", ns)
    try:
        doc = {"apiVersion": API_VERSION, "kind": "MilvusCluster", "metadata": {"name": name},
               "spec": {"persistence": {"enabled": False}, "security": {"authorizationEnabled": True}}}
        k8s_cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(doc))
        deploy = k8s_cluster.wait_for(
            lambda: kube.get("apps/v1", "Deployment", ns, f"{name}-standalone"), timeout=120, what="Deployment"
        )
        k8s_cluster.wait_for(lambda: kube.get("v1", "Secret", ns, f"{name}-root"), timeout=60, what="root Secret")
        password = _secret_value(kube, ns, f"{name}-root", "password")
        assert len(password) >= 20

        # the pod's view: its ConfigMap document and the env its secretKeyRef resolves to
        box = deploy["spec"]["template"]["spec"]["containers"][0]
        ref = next(e for e in box["env"] if e["name"] == "SHOAL_ROOT_PASSWORD")["valueFrom"]["secretKeyRef"]
        config_map = kube.get("v1", "ConfigMap", ns, f"{name}-config")
        assert config_map is not None
        document = config_map["data"]["standalone.yaml"]
        assert yaml.safe_load(document)["authorization_enabled"] is True
        node, port, node_log = _run_node(
            tmp_path, document, {"SHOAL_ROOT_PASSWORD": _secret_value(kube, ns, ref["name"], ref["key"])}
        )
        try:
            uri = f"http://127.0.0.1:{port}"
            with pytest.raises(MilvusException):
                MilvusClient(uri=uri, timeout=30, dedicated=True)
            with pytest.raises(MilvusException):
                MilvusClient(uri=uri, token="root:Milvus", timeout=30, dedicated=True)
            c = MilvusClient(uri=uri, token=f"root:{password}", timeout=60, dedicated=True)
            c.create_collection("guarded", dimension=4)
            assert c.list_collections() == ["guarded"]
            c.close()
        finally:
            node.terminate()
            node.wait(60)

        # nowhere but the Secret
        for cm in kube.list("v1", "ConfigMap", ns, ""):
            assert password not in json.dumps(cm.get("data") or {})
        cluster = kube.get(API_VERSION, "MilvusCluster", ns, name)
        assert cluster is not None and password not in json.dumps(cluster)
        events = k8s_cluster.kubectl("get", "events", "-n", ns, "-o", "json").stdout
        assert password not in events
        assert password not in operator.log_path.read_text(errors="replace")
        assert password not in node_log.read_text(errors="replace")
        # generated once: later reconciles (every 2 s) keep it
        time.sleep(5)
        assert _secret_value(kube, ns, f"{name}-root", "password") == password
    finally:
        k8s_cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
