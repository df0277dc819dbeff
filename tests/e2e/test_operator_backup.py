"""MilvusBackup / MilvusRestore end to end on the real control plane, with the Jobs' commands
really run: their pods land on a stand-in kubelet's node (`standin_kubelet`), which runs
`shoal backup` against two local `shoal run` processes standing in for the two
MilvusClusters' Services, and a real SeaweedFS S3 with the keys from a Secret."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from shoal_operator.constants import API_VERSION
from shoal_operator.kube import Kube
from shoal_operator.testing import OperatorProcess, install_crds

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixtures_services import SeaweedS3, seaweedfs_s3_fixture, subprocess_env  # noqa: E402, F401
from standin_kubelet import POOL, TAINT_KEY, StandInKubelet  # noqa: E402

_LISTEN = re.compile(r"Shoal listening on ([\d.]+):(\d+) \(http [\d.]+:(\d+)\)")
PLACEMENT = {"nodeSelector": {"shoal.dev/pool": POOL},
             "tolerations": [{"key": TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}]}


class LocalNode:
    """`shoal run` on free ports, standing in for one MilvusCluster's Service."""

    def __init__(self, base: Path) -> None:
        base.mkdir(parents=True, exist_ok=True)
        self.log = base / "shoal.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "shoal.cli", "run", "--data", str(base / "data"), "--host", "127.0.0.1",
                 "--port", "0", "--http-port", "0"], stdout=log, stderr=subprocess.STDOUT, env=subprocess_env())
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            found = _LISTEN.findall(self.log.read_text(errors="replace"))
            if found:
                self.uri = f"http://127.0.0.1:{found[0][1]}"
                self.http = f"127.0.0.1:{found[0][2]}"
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"shoal did not start:\n{self.log.read_text(errors='replace')[-3000:]}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture(scope="module")
def env(k8s_cluster: Any, seaweedfs_s3: SeaweedS3, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    install_crds(k8s_cluster.kubectl)
    base = tmp_path_factory.mktemp("backup-e2e")
    ns = f"bk-{uuid.uuid4().hex[:8]}"
    nodes = {"demo": LocalNode(base / "demo"), "other": LocalNode(base / "other")}
    api = k8s_cluster.api_client()
    kube = Kube(api)

    def rewrite(text: str) -> str:
        for cluster, node in nodes.items():
            text = text.replace(f"{cluster}-milvus.{ns}.svc:9091", node.http)
        return text

    standin = StandInKubelet(kube, f"standin-{ns}", base / "standin", rewrite).start()
    op = OperatorProcess(k8s_cluster.kubeconfig, base / "operator.log",
                         env={"SHOAL_OPERATOR_BACKUP_STATUS_SECONDS": "1"})
    op.start()
    k8s_cluster.kubectl("create", "namespace", ns)
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s3-keys"},
              "data": {"accessKey": base64.b64encode(seaweedfs_s3.access_key.encode()).decode(),
                       "secretKey": base64.b64encode(seaweedfs_s3.secret_key.encode()).decode()}}
    clusters = [{"apiVersion": API_VERSION, "kind": "MilvusCluster", "metadata": {"name": n}, "spec": {}}
                for n in nodes]
    k8s_cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all([secret, *clusters]))
    try:
        yield {"ns": ns, "kube": kube, "nodes": nodes, "standin": standin, "s3": seaweedfs_s3, "operator": op,
               "storage": {"endpoint": seaweedfs_s3.endpoint_url, "bucket": "e2e-backups", "prefix": ns,
                           "secretRef": "s3-keys"}}
    finally:
        # while the operator runs: its finalizers must not keep the namespace alive
        k8s_cluster.kubectl("delete", "-n", ns, "milvusbackups,milvusrestores", "--all", "--timeout=60s",
                            check=False, timeout=90)
        k8s_cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
        op.stop()
        standin.stop()
        for node in nodes.values():
            node.stop()
        api.close()


def destination(env: dict[str, Any]) -> Any:
    from shoal.backup.destination import S3Options, open_destination

    s3 = env["s3"]
    return open_destination(f"s3://e2e-backups/{env['ns']}", S3Options(s3.endpoint_url, s3.access_key, s3.secret_key))


def apply(k8s_cluster: Any, env: dict[str, Any], kind: str, name: str, spec: dict[str, Any]) -> None:
    doc = {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name}, "spec": spec}
    k8s_cluster.kubectl("apply", "-n", env["ns"], "-f", "-", input=yaml.safe_dump(doc))


def wait_status(k8s_cluster: Any, env: dict[str, Any], kind: str, name: str, phases: tuple[str, ...],
                timeout: float = 180) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        obj = env["kube"].get(API_VERSION, kind, env["ns"], name) or {}
        status = obj.get("status") or {}
        return status if status.get("phase") in phases else None

    try:
        return k8s_cluster.wait_for(done, timeout=timeout, what=f"{kind} {name} {phases}")
    except Exception:
        standin = env["standin"]
        print("stand-in ran:", standin.ran, "foreign:", standin.foreign, "errors:", standin.errors)
        print(env["operator"].log_tail())
        raise


def wait_job(k8s_cluster: Any, env: dict[str, Any], name: str) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        job = env["kube"].get("batch/v1", "Job", env["ns"], name) or {}
        conds = (job.get("status") or {}).get("conditions") or []
        return job if any(c["type"] in ("Complete", "Failed") and c["status"] == "True" for c in conds) else None

    job = k8s_cluster.wait_for(finished, timeout=180, what=f"Job {name} finished")
    assert any(c["type"] == "Complete" for c in job["status"]["conditions"]), (
        job["status"], env["standin"].log_of(env["ns"], name))
    return job


def check_standin(env: dict[str, Any]) -> None:
    standin = env["standin"]
    assert not standin.foreign, f"pods finished by someone other than the stand-in (kwok?): {standin.foreign}"
    assert not standin.errors, standin.errors


def test_scheduled_backups_expire_per_retention_and_restore_into_a_second_cluster(
    k8s_cluster: Any, env: dict[str, Any]
) -> None:
    from pymilvus import MilvusClient

    source = MilvusClient(uri=env["nodes"]["demo"].uri)
    source.create_collection("docs", dimension=4, consistency_level="Strong")
    source.insert("docs", [{"id": i, "vector": [i / 7, 1.0, 0.5, -1.0]} for i in range(300)])
    apply(k8s_cluster, env, "MilvusBackup", "nightly", {
        "clusterRef": "demo", "collections": ["docs"], "schedule": "0 3 * * *", "retention": {"keepLast": 2},
        "storage": env["storage"], "pod": PLACEMENT,
    })
    k8s_cluster.wait_for(lambda: env["kube"].get("batch/v1", "CronJob", env["ns"], "nightly-backup"),
                         timeout=120, what="the CronJob")
    for run in range(3):
        # the CronJob's own template, run now rather than at 03:00
        k8s_cluster.kubectl("create", "job", f"nightly-run-{run}", "--from=cronjob/nightly-backup", "-n", env["ns"])
        wait_job(k8s_cluster, env, f"nightly-run-{run}")
        source.insert("docs", [{"id": 1000 + run * 10 + i, "vector": [0.0, 0.0, 1.0, float(i)]} for i in range(10)])
    names = [n for n in destination(env).names() if n.startswith("nightly-")]
    assert len(names) == 2, names  # keepLast 2: the first run's backup expired
    status = wait_status(k8s_cluster, env, "MilvusBackup", "nightly", ("Scheduled",))
    # status follows the Jobs on the operator's next reconcile: it may first count the third run
    # while that Job is still finishing, so wait for the newest backup rather than the count
    k8s_cluster.wait_for(lambda: (lambda st: st.get("runs") == 3 and st.get("lastBackup") == max(names))(
        (env["kube"].get(API_VERSION, "MilvusBackup", env["ns"], "nightly") or {}).get("status", {})),
        timeout=120, what="three runs and the newest backup in status")
    status = env["kube"].get(API_VERSION, "MilvusBackup", env["ns"], "nightly")["status"]
    assert status["rows"] == {"default.docs": 320}
    assert status["sizeBytes"] > 0 and status["conditions"][0]["reason"] == "BackupCompleted"

    apply(k8s_cluster, env, "MilvusRestore", "back", {
        "clusterRef": "other", "backupRef": "nightly", "rename": {"docs": "docs_copy"}, "pod": PLACEMENT,
    })
    status = wait_status(k8s_cluster, env, "MilvusRestore", "back", ("Completed", "Failed"))
    assert status["phase"] == "Completed", status
    assert status["backupId"] == max(names) and status["rows"] == {"default.docs_copy": 320}
    target = MilvusClient(uri=env["nodes"]["other"].uri)
    target.load_collection("docs_copy")
    got = sorted(r["id"] for r in target.query("docs_copy", filter="id >= 0", output_fields=["id"], limit=1000))
    assert got == sorted([*range(300), *range(1000, 1020)])
    check_standin(env)


def test_a_refused_backup_fails_at_once_with_the_reason_and_delete_policy_removes_the_files(
    k8s_cluster: Any, env: dict[str, Any]
) -> None:
    apply(k8s_cluster, env, "MilvusBackup", "broken", {
        "clusterRef": "demo", "collections": ["nope"], "storage": env["storage"], "pod": PLACEMENT,
    })
    status = wait_status(k8s_cluster, env, "MilvusBackup", "broken", ("Failed",))
    cond = status["conditions"][0]
    from shoal.errors import collection_not_found

    assert cond["status"] == "False" and cond["reason"] == "PodFailurePolicy", cond
    assert cond["message"] == f"shoal backup: {collection_not_found('nope').message}"
    pods = env["kube"].list("v1", "Pod", env["ns"], "job-name=broken-backup")
    assert len(pods) == 1  # exit 3 (refused) fails the Job without retries

    apply(k8s_cluster, env, "MilvusBackup", "once", {
        "clusterRef": "demo", "storage": env["storage"], "pod": PLACEMENT, "deletionPolicy": "Delete",
    })
    status = wait_status(k8s_cluster, env, "MilvusBackup", "once", ("Completed", "Failed"))
    assert status["phase"] == "Completed" and status["backupId"] == "once", status
    dest = destination(env)
    assert dest.has_manifest("once")
    k8s_cluster.kubectl("delete", "-n", env["ns"], "milvusbackup", "once", "--timeout=120s", timeout=150)
    wait_job(k8s_cluster, env, "once-backup-cleanup")
    assert not dest.has_manifest("once")
    check_standin(env)
