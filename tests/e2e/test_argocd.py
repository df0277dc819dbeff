"""GitOps for real: Argo CD's own application controller and repo server (built from its Go
module, e2e/argocd/build.sh) sync a MilvusCluster from a local git repository into the real
control plane, roll it on a commit, and judge its health with the Lua check Shoal ships
(manifests/argocd/health/). The pods are kwok's; the Shoal operator is the real one."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from shoal_operator.constants import API_VERSION
from shoal_operator.kube import Kube
from shoal_operator.testing import OperatorProcess, install_crds

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "e2e" / "argocd" / "build.sh"
HEALTH = ROOT / "manifests" / "argocd" / "health"
ARGO_NS = "argocd"
OLD, NEW = "0.1.0", "0.2.0"
EXTERNAL = {
    "etcd": {"external": {"endpoints": ["http://etcd.example:2379"]}},
    "storage": {"external": {"endpoint": "http://s3.example:9000"}},
    "kafka": {"external": {"bootstrapServers": ["kafka.example:9092"]}},
}


def build_argocd() -> Path:
    """The built Argo CD (cached); the e2e conftest runs this before tests start."""
    proc = subprocess.run(["bash", str(BUILD)], capture_output=True, text=True, timeout=7200, check=False)
    if proc.returncode != 0:
        pytest.fail(f"e2e/argocd/build.sh failed:\n{proc.stderr[-4000:]}", pytrace=False)
    return Path(proc.stdout.strip().splitlines()[-1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _git(repo: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "e2e", "GIT_AUTHOR_EMAIL": "e2e@shoal.dev",
           "GIT_COMMITTER_NAME": "e2e", "GIT_COMMITTER_EMAIL": "e2e@shoal.dev"}
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env)


@dataclass
class ArgoCD:
    run_dir: Path
    procs: list[subprocess.Popen[bytes]]

    def logs(self) -> str:
        out = []
        for name in ("repo-server.log", "controller.log"):
            path = self.run_dir / name
            if path.exists():
                out.append(f"--- {name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-25:]))
        return "\n".join(out)


def health_config() -> dict[str, str]:
    return {
        "resource.customizations.health.shoal.dev_MilvusCluster": (HEALTH / "milvuscluster.lua").read_text(),
        "resource.customizations.health.shoal.dev_Collection": (HEALTH / "collection.lua").read_text(),
    }


@pytest.fixture(scope="module")
def argocd(k8s_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArgoCD]:
    root = build_argocd()
    redis = shutil.which("redis-server")
    if redis is None:
        pytest.fail("redis-server is missing (Argo CD's cache): scripts/setup.sh --test installs it", pytrace=False)
    run = tmp_path_factory.mktemp("argocd")
    k8s_cluster.kubectl("create", "namespace", ARGO_NS, check=False)
    k8s_cluster.kubectl("apply", "--server-side", "-f", str(root / "crds"))
    established = 'jsonpath={.status.conditions[?(@.type=="Established")].status}'
    for crd in ("applications.argoproj.io", "appprojects.argoproj.io"):
        k8s_cluster.wait_for(
            lambda crd=crd: k8s_cluster.kubectl("get", "crd", crd, "-o", established).stdout == "True",
            timeout=120, what=f"CRD {crd} established")
    config = [
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "argocd-cm", "namespace": ARGO_NS,
                      "labels": {"app.kubernetes.io/part-of": "argocd"}},
         "data": health_config()},
        {"apiVersion": "v1", "kind": "Secret",
         "metadata": {"name": "argocd-secret", "namespace": ARGO_NS,
                      "labels": {"app.kubernetes.io/part-of": "argocd"}},
         "stringData": {"server.secretkey": uuid.uuid4().hex}},
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
         "metadata": {"name": "default", "namespace": ARGO_NS},
         "spec": {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "*"}],
                  "clusterResourceWhitelist": [{"group": "*", "kind": "*"}]}},
    ]
    k8s_cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(config))
    redis_port, repo_port = _free_port(), _free_port()
    env = {**os.environ, "KUBECONFIG": str(k8s_cluster.kubeconfig), "ARGOCD_FAKE_IN_CLUSTER": "true",
           "ARGOCD_GPG_ENABLED": "false", "HOME": str(run), "TMPDIR": str(run)}
    commands = {
        "redis.log": [redis, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                      "--dir", str(run)],
        "repo-server.log": [str(root / "bin" / "argocd-repo-server"), "--port", str(repo_port),
                            "--metrics-port", str(_free_port()), "--disable-tls",
                            "--redis", f"127.0.0.1:{redis_port}", "--loglevel", "info"],
        "controller.log": [str(root / "bin" / "argocd-application-controller"), "--namespace", ARGO_NS,
                           "--kubeconfig", str(k8s_cluster.kubeconfig),
                           "--repo-server", f"127.0.0.1:{repo_port}", "--repo-server-plaintext",
                           "--redis", f"127.0.0.1:{redis_port}", "--metrics-port", str(_free_port()),
                           "--app-resync", "5", "--app-resync-jitter", "0", "--self-heal-timeout-seconds", "2",
                           "--status-processors", "2", "--operation-processors", "2", "--loglevel", "info"],
    }
    procs = []
    for log_name, cmd in commands.items():
        with (run / log_name).open("wb") as log:
            procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=run,
                                          start_new_session=True))
    argo = ArgoCD(run, procs)
    try:
        yield argo
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        k8s_cluster.kubectl("delete", "applications.argoproj.io", "--all", "-n", ARGO_NS, "--wait=false",
                            check=False)


def _repo(tmp: Path, ns: str, version: str) -> Path:
    repo = tmp / "gitops"
    (repo / "clusters").mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    _write_cluster(repo, ns, version)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "a Shoal cluster")
    return repo


def _write_cluster(repo: Path, ns: str, version: str) -> None:
    doc = {"apiVersion": API_VERSION, "kind": "MilvusCluster", "metadata": {"name": "search", "namespace": ns},
           "spec": {"mode": "cluster", "version": version, "dependencies": EXTERNAL}}
    (repo / "clusters" / "search.yaml").write_text(yaml.safe_dump(doc))


def _app(k8s_cluster: Any) -> dict[str, Any]:
    got = k8s_cluster.kubectl("get", "applications.argoproj.io", "search", "-n", ARGO_NS, "-o", "json", check=False)
    return json.loads(got.stdout) if got.returncode == 0 else {}


def _state(k8s_cluster: Any) -> tuple[str, str, str]:
    status = _app(k8s_cluster).get("status") or {}
    return ((status.get("sync") or {}).get("status", ""), (status.get("health") or {}).get("status", ""),
            (status.get("sync") or {}).get("revision", ""))


def test_argocd_syncs_rolls_and_reports_health_from_the_operator(
    k8s_cluster: Any, kube: Kube, argocd: ArgoCD, tmp_path: Path
) -> None:
    ns = f"gitops-{uuid.uuid4().hex[:6]}"
    k8s_cluster.kubectl("create", "namespace", ns)
    install_crds(k8s_cluster.kubectl)
    repo = _repo(tmp_path, ns, OLD)
    app = {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": "search", "namespace": ARGO_NS},
        "spec": {
            "project": "default",
            "source": {"repoURL": f"file://{repo}", "targetRevision": "main", "path": "clusters"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": ns},
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True}},
        },
    }
    k8s_cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(app))
    try:
        # Synced from git, but no operator runs yet: the cluster cannot be Ready, so not Healthy.
        k8s_cluster.wait_for(lambda: _state(k8s_cluster)[0] == "Synced", timeout=180, interval=1,
                             what=f"Application Synced\n{argocd.logs()}")
        assert kube.get(API_VERSION, "MilvusCluster", ns, "search") is not None
        time.sleep(8)  # more than one resync: the health stays what the missing status says
        assert _state(k8s_cluster)[1] == "Progressing"

        log = tmp_path / "operator.log"
        with OperatorProcess(k8s_cluster.kubeconfig, log, env={"SHOAL_OPERATOR_RESYNC_SECONDS": "2"}):
            k8s_cluster.wait_for(lambda: _state(k8s_cluster)[1] == "Healthy", timeout=180, interval=1,
                                 what="Application Healthy once the operator reports Ready")
            obj = kube.get(API_VERSION, "MilvusCluster", ns, "search") or {}
            ready = [c for c in obj["status"]["conditions"] if c["type"] == "Ready"]
            assert ready[0]["status"] == "True"

            # A commit rolls the cluster: Argo CD applies it, the operator upgrades in order,
            # and the Application is Healthy again only once every role runs the new version.
            _write_cluster(repo, ns, NEW)
            _git(repo, "commit", "-q", "-am", f"upgrade to {NEW}")
            head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                                  check=True).stdout.strip()
            k8s_cluster.wait_for(lambda: _state(k8s_cluster)[2] == head and _state(k8s_cluster)[0] == "Synced", timeout=180,
                                 interval=1, what="the new commit synced")
            k8s_cluster.wait_for(lambda: _state(k8s_cluster)[1] == "Healthy", timeout=240, interval=1,
                                 what="Healthy after the upgrade")
            for role in ("coord", "streaming", "query", "index", "proxy"):
                dep = kube.get("apps/v1", "Deployment", ns, f"search-{role}") or {}
                image = dep["spec"]["template"]["spec"]["containers"][0]["image"]
                assert image.endswith(f":{NEW}"), (role, image)
            obj = kube.get(API_VERSION, "MilvusCluster", ns, "search") or {}
            assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    finally:
        k8s_cluster.kubectl("delete", "application.argoproj.io", "search", "-n", ARGO_NS, "--timeout=60s",
                            check=False, timeout=90)
        k8s_cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_the_shipped_argocd_cm_carries_the_same_lua() -> None:
    shipped = yaml.safe_load((ROOT / "manifests" / "argocd" / "argocd-cm.yaml").read_text())
    assert shipped["data"] == health_config()
