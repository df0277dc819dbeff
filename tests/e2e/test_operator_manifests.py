"""What the API server says about our YAML: invalid specs are rejected with a readable
message, and every shipped manifest (CRDs, kustomize base, examples, Helm chart output)
passes a server-side dry run."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from shoal_operator.constants import API_VERSION
from shoal_operator.testing import install_crds

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "manifests" / "examples").glob("*.yaml"))


@pytest.fixture(scope="module")
def ns(k8s_cluster: Any) -> Iterator[str]:
    install_crds(k8s_cluster.kubectl)
    name = f"manifests-{uuid.uuid4().hex[:6]}"
    k8s_cluster.kubectl("create", "namespace", name)
    yield name
    k8s_cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def rejected(k8s_cluster: Any, ns: str, kind: str, spec: dict[str, Any]) -> str:
    doc = {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": "bad"}, "spec": spec}
    proc = k8s_cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(doc), check=False)
    assert proc.returncode != 0, f"{kind} {spec} was accepted"
    return str(proc.stderr)


COLLECTION = {
    "name": "docs",
    "target": {"endpoint": "http://127.0.0.1:19530"},
    "schema": {"primaryKey": "id", "fields": [{"name": "id", "dataType": "INT64"},
                                              {"name": "v", "dataType": "FLOAT_VECTOR", "dim": 4}]},
}


@pytest.mark.parametrize(
    ("kind", "spec", "message"),
    [
        ("MilvusCluster", {"mode": "sharded"}, 'Unsupported value: "sharded"'),
        ("MilvusCluster", {"components": {"query": {"replicas": -1}}}, "should be greater than or equal to 0"),
        ("MilvusCluster", {"mode": "cluster", "components": {"query": {"autoscaling": {
            "minReplicas": 5, "maxReplicas": 2}}}}, "minReplicas must not exceed maxReplicas"),
        ("MilvusCluster", {"mode": "cluster", "dependencies": {"etcd": {
            "external": {"endpoints": ["http://e:2379"]}, "inCluster": {}}}},
         "set exactly one of external or inCluster"),
        ("MilvusCluster", {"components": {"standalone": {"replicas": 2}}},
         "standalone runs one replica and cannot autoscale"),
        ("MilvusCluster", {"deletionPolicy": "Sometimes"}, 'Unsupported value: "Sometimes"'),
        ("MilvusCluster", {"mode": "cluster", "components": {"index": {"gpu": {"count": 0}}}},
         "should be greater than or equal to 1"),
        ("Collection", {**COLLECTION, "schema": {"primaryKey": "id", "fields": [
            {"name": "id", "dataType": "INT64"}, {"name": "v", "dataType": "FLOAT_VECTOR"}]}},
         "dense vector fields need dim"),
        ("Collection", {**COLLECTION, "schema": {**COLLECTION["schema"], "primaryKey": "pk"}},
         "primaryKey must name a field"),
        ("Collection", {**COLLECTION, "target": {}}, "set exactly one of clusterRef or endpoint"),
        ("Collection", {**COLLECTION, "loadState": "Hot"}, 'Unsupported value: "Hot"'),
    ],
)
def test_invalid_specs_are_rejected_with_a_readable_message(
    k8s_cluster: Any, ns: str, kind: str, spec: dict[str, Any], message: str
) -> None:
    assert message in rejected(k8s_cluster, ns, kind, spec)


def test_defaults_are_filled_in_by_the_api_server(k8s_cluster: Any, ns: str) -> None:
    doc = {"apiVersion": API_VERSION, "kind": "MilvusCluster", "metadata": {"name": "defaults"},
           "spec": {"components": {"standalone": {}}}}
    out = k8s_cluster.kubectl("apply", "-n", ns, "--dry-run=server", "-o", "yaml", "-f", "-",
                              input=yaml.safe_dump(doc)).stdout
    spec = yaml.safe_load(out)["spec"]
    assert (spec["mode"], spec["deletionPolicy"], spec["imagePullPolicy"]) == ("standalone", "Retain", "IfNotPresent")
    assert spec["components"]["standalone"]["replicas"] == 1


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_examples_pass_server_side_dry_run(k8s_cluster: Any, ns: str, example: Path) -> None:
    if example.name == "kustomization.yaml":
        k8s_cluster.kubectl("apply", "-n", ns, "--dry-run=server", "-k", str(example.parent))
    else:
        k8s_cluster.kubectl("apply", "-n", ns, "--dry-run=server", "-f", str(example))


def test_kustomize_base_passes_server_side_dry_run(k8s_cluster: Any, ns: str) -> None:
    k8s_cluster.kubectl("create", "namespace", "shoal-system", check=False)
    rendered = k8s_cluster.kubectl("kustomize", str(REPO / "manifests" / "base")).stdout
    kinds = {d["kind"] for d in yaml.safe_load_all(rendered) if d}
    assert {"Namespace", "CustomResourceDefinition", "ClusterRole", "Deployment", "ClusterKopfPeering"} <= kinds
    k8s_cluster.kubectl("apply", "--server-side", "--dry-run=server", "--force-conflicts", "-f", "-", input=rendered)


def test_argocd_application_points_at_the_kustomize_base() -> None:
    app = yaml.safe_load((REPO / "manifests" / "argocd" / "application.yaml").read_text())
    assert app["kind"] == "Application"
    assert (REPO / app["spec"]["source"]["path"] / "kustomization.yaml").exists()


@pytest.fixture(scope="module")
def helm() -> str:
    proc = subprocess.run([str(REPO / "e2e" / "tools" / "helm.sh")], capture_output=True, text=True,
                          timeout=1800, check=False)
    if proc.returncode != 0:
        pytest.fail(f"e2e/tools/helm.sh failed:\n{proc.stderr[-3000:]}")
    return proc.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("values", [[], ["--set", "watchNamespace=team-a", "--set", "replicaCount=1"]],
                         ids=["cluster-wide", "one-namespace"])
def test_helm_chart_renders_and_passes_server_side_dry_run(
    k8s_cluster: Any, ns: str, helm: str, values: list[str]
) -> None:
    chart = REPO / "charts" / "shoal-operator"
    lint = subprocess.run([helm, "lint", str(chart), *values], capture_output=True, text=True, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    rendered = subprocess.run(
        [helm, "template", "shoal", str(chart), "--namespace", ns, "--include-crds", *values],
        capture_output=True, text=True, check=True,
    ).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    deploy = next(d for d in docs if d["kind"] == "Deployment")
    assert deploy["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert any(d["kind"] == "Service" and d["metadata"]["name"].endswith("-metrics") for d in docs)
    if values:
        k8s_cluster.kubectl("create", "namespace", "team-a", check=False)
    k8s_cluster.kubectl("apply", "--server-side", "--dry-run=server", "--force-conflicts", "-f", "-", input=rendered)


def token_kubeconfig(k8s_cluster: Any, token: str, path: Path) -> Path:
    """A kubeconfig for the same API server that authenticates with `token` only."""
    raw = yaml.safe_load(k8s_cluster.kubectl("config", "view", "--raw", "--minify").stdout)
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "e2e", "cluster": raw["clusters"][0]["cluster"]}],
        "users": [{"name": "operator", "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": "e2e", "user": "operator"}}],
        "current-context": "operator",
    }))
    return path


@pytest.mark.timeout(900)
def test_operator_runs_with_the_charts_least_privilege_rbac(
    k8s_cluster: Any, ns: str, helm: str, tmp_path: Path
) -> None:
    from shoal_operator.kube import Kube
    from shoal_operator.testing import OperatorProcess

    home = f"rbac-{uuid.uuid4().hex[:6]}"
    k8s_cluster.kubectl("create", "namespace", home)
    rendered = subprocess.run(
        [helm, "template", "shoal-operator", str(REPO / "charts" / "shoal-operator"), "--namespace", home,
         "--set", "replicaCount=0"],
        capture_output=True, text=True, check=True,
    ).stdout
    k8s_cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=rendered)
    token = k8s_cluster.kubectl("create", "token", "shoal-operator", "-n", home).stdout.strip()
    kubeconfig = token_kubeconfig(k8s_cluster, token, tmp_path / "operator.kubeconfig")
    denied = k8s_cluster.kubectl("--kubeconfig", str(kubeconfig), "auth", "can-i", "delete", "nodes", check=False)
    assert denied.stdout.strip() == "no"

    doc = {"apiVersion": API_VERSION, "kind": "MilvusCluster", "metadata": {"name": "rbac"},
           "spec": {"mode": "cluster", "deletionPolicy": "Delete",
                    "dependencies": {"etcd": {"inCluster": {}}, "storage": {"inCluster": {}}},
                    "components": {"query": {"autoscaling": {"maxReplicas": 2}}}}}
    api = k8s_cluster.api_client()
    kube = Kube(api)
    try:
        with OperatorProcess(kubeconfig, tmp_path / "operator.log",
                             env={"SHOAL_OPERATOR_RESYNC_SECONDS": "2"}) as op:
            k8s_cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(doc))

            def ready() -> bool:
                obj = kube.get(API_VERSION, "MilvusCluster", ns, "rbac") or {}
                conds = (obj.get("status") or {}).get("conditions") or []
                return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)

            try:
                k8s_cluster.wait_for(ready, timeout=300, interval=1, what="Ready under chart RBAC")
                k8s_cluster.kubectl("delete", "-n", ns, "milvuscluster", "rbac", "--timeout=120s", timeout=150)
                k8s_cluster.wait_for(
                    lambda: not kube.list("v1", "PersistentVolumeClaim", ns, "app.kubernetes.io/instance=rbac"),
                    timeout=120, what="PVCs deleted under chart RBAC",
                )
            except (TimeoutError, subprocess.CalledProcessError):
                raise AssertionError(op.log_tail(60)) from None
            assert "Forbidden" not in op.log_tail(2000)
    finally:
        api.close()
        # the chart's ClusterRole and binding are cluster-scoped: left behind, they block a later
        # `helm install` of the same release (the pods tier's) as objects Helm does not own
        k8s_cluster.kubectl("delete", "--ignore-not-found", "--wait=false", "-f", "-", input=rendered, check=False)
        k8s_cluster.kubectl("delete", "namespace", home, "--wait=false", check=False)
