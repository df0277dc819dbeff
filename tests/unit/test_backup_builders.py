"""MilvusBackup / MilvusRestore builders: the Jobs and CronJobs a user would see, and the
status read back from them (pure functions, no cluster)."""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest
from pydantic import ValidationError

from shoal_operator.builders import backup as b
from shoal_operator.builders.meta import ClusterRef
from shoal_operator.specs.backup import MilvusBackupSpec, MilvusRestoreSpec
from shoal_operator.specs.cluster import MilvusClusterSpec

CLUSTER = ClusterRef(name="demo", namespace="vectors", uid="c-uid")
OWNER = b.Owner(kind="MilvusBackup", name="nightly", namespace="vectors", uid="b-uid")
NOW = "2026-12-05T12:00:00+00:00"


def script(obj: dict[str, Any]) -> list[list[str]]:
    spec = obj["spec"]["jobTemplate"]["spec"] if obj["kind"] == "CronJob" else obj["spec"]
    container = spec["template"]["spec"]["containers"][0]
    assert container["command"][:2] == ["/bin/sh", "-c"]
    return [shlex.split(part) for part in container["command"][2].split(" && ")]


def env(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj["spec"]["jobTemplate"]["spec"] if obj["kind"] == "CronJob" else obj["spec"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in spec["template"]["spec"]["containers"][0]["env"]}


def test_an_on_demand_backup_is_one_job_named_after_the_resource() -> None:
    spec = MilvusBackupSpec.model_validate({
        "clusterRef": "demo", "collections": ["a", "b"],
        "storage": {"endpoint": "http://s3:8333", "bucket": "bk", "prefix": "team/x", "secretRef": "s3-keys"},
        "pod": {"nodeSelector": {"pool": "ops"}, "tolerations": [{"key": "ops", "operator": "Exists"}],
                "resources": {"limits": {"memory": "1Gi"}}},
    })
    job = b.backup_object(OWNER, spec, CLUSTER, MilvusClusterSpec.model_validate({"image": "shoal:dev"}))
    assert job["kind"] == "Job" and job["metadata"]["name"] == "nightly-backup"
    assert job["metadata"]["ownerReferences"][0]["kind"] == "MilvusBackup"
    rule = job["spec"]["podFailurePolicy"]["rules"][0]  # a refusal (exit 3) is not retried
    assert rule["action"] == "FailJob" and rule["onExitCodes"]["values"] == [3]
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["containers"][0]["image"] == "shoal:dev"
    assert pod["containers"][0]["terminationMessagePath"] == "/dev/termination-log"
    assert pod["containers"][0]["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert pod["nodeSelector"] == {"pool": "ops"} and pod["tolerations"][0]["key"] == "ops"
    assert pod["containers"][0]["resources"] == {"limits": {"memory": "1Gi"}}
    (create,) = script(job)
    assert create[:3] == ["shoal", "backup", "create"]
    assert create[create.index("--uri") + 1] == "http://demo-milvus.vectors.svc:9091"
    assert create[create.index("--to") + 1] == "s3://bk/team/x"
    assert create[create.index("--name") + 1] == "nightly"
    assert [create[i + 1] for i, a in enumerate(create) if a == "--collection"] == ["a", "b"]
    e = env(job)
    assert e["SHOAL_S3_ENDPOINT"] == "http://s3:8333"
    assert e["SHOAL_S3_ACCESS_KEY"] == {"secretKeyRef": {"name": "s3-keys", "key": "accessKey"}}
    assert e["SHOAL_S3_SECRET_KEY"] == {"secretKeyRef": {"name": "s3-keys", "key": "secretKey"}}


def test_a_scheduled_backup_is_a_cronjob_that_prunes_per_retention() -> None:
    spec = MilvusBackupSpec.model_validate({
        "clusterRef": "demo", "schedule": "*/5 * * * *", "retention": {"keepLast": 3, "maxAge": "7d"},
        "storage": {"bucket": "bk", "endpoint": "http://s3:8333"},
    })
    cron = b.backup_object(OWNER, spec, CLUSTER, MilvusClusterSpec.model_validate({}))
    assert cron["kind"] == "CronJob" and cron["spec"]["schedule"] == "*/5 * * * *"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    create, prune = script(cron)
    assert create[create.index("--name-prefix") + 1] == "nightly-" and "--name" not in create
    assert prune[:3] == ["shoal", "backup", "prune"]
    assert prune[prune.index("--match") + 1] == "nightly-"
    assert prune[prune.index("--keep-last") + 1] == "3" and prune[prune.index("--max-age") + 1] == "7d"


def test_storage_defaults_to_the_clusters_object_store() -> None:
    cluster = MilvusClusterSpec.model_validate({"mode": "cluster"})
    spec = MilvusBackupSpec.model_validate({"clusterRef": "demo"})
    job = b.backup_object(OWNER, spec, CLUSTER, cluster)
    (create,) = script(job)
    assert create[create.index("--to") + 1] == "s3://shoal/backups"
    e = env(job)
    assert e["SHOAL_S3_ENDPOINT"] == "http://demo-minio.vectors.svc:9000"
    assert e["SHOAL_S3_ACCESS_KEY"]["secretKeyRef"]["name"] == "demo-minio"


def test_a_standalone_without_object_store_needs_a_bucket_or_a_path() -> None:
    with pytest.raises(ValueError, match="storage.bucket is required"):
        b.backup_object(OWNER, MilvusBackupSpec.model_validate({"clusterRef": "demo"}), CLUSTER,
                        MilvusClusterSpec.model_validate({}))
    spec = MilvusBackupSpec.model_validate({"clusterRef": "demo",
                                            "storage": {"path": "/backups", "volumeClaim": "bk-pvc"}})
    job = b.backup_object(OWNER, spec, CLUSTER, MilvusClusterSpec.model_validate({}))
    (create,) = script(job)
    assert create[create.index("--to") + 1] == "/backups"
    pod = job["spec"]["template"]["spec"]
    assert pod["volumes"] == [{"name": "backups", "persistentVolumeClaim": {"claimName": "bk-pvc"}}]
    assert pod["containers"][0]["volumeMounts"] == [{"name": "backups", "mountPath": "/backups"}]


def test_deletion_policy_delete_makes_an_unowned_cleanup_job() -> None:
    spec = MilvusBackupSpec.model_validate({"clusterRef": "demo", "deletionPolicy": "Delete", "schedule": "@daily",
                                            "storage": {"bucket": "bk"}})
    job = b.cleanup_job(OWNER, spec, CLUSTER, MilvusClusterSpec.model_validate({}))
    assert "ownerReferences" not in job["metadata"]
    (delete,) = script(job)
    assert delete[:3] == ["shoal", "backup", "delete"] and delete[delete.index("--match") + 1] == "nightly-"
    assert MilvusBackupSpec.model_validate({"clusterRef": "demo"}).deletion_policy == "Retain"


def test_restore_job_passes_renames_and_options() -> None:
    spec = MilvusRestoreSpec.model_validate({
        "clusterRef": "other", "backupRef": "nightly", "rename": {"b": "b2", "a": "db2.a2"},
        "dropExisting": True, "withIndexes": False,
    })
    owner = b.Owner("MilvusRestore", "back", "vectors", "r-uid")
    storage = b.Storage("s3://bk/backups", [], [], [])
    job = b.restore_job(owner, spec, ClusterRef("other", "vectors", "o"), MilvusClusterSpec.model_validate({}),
                        storage, "nightly")
    (restore,) = script(job)
    assert restore[:3] == ["shoal", "backup", "restore"]
    assert restore[restore.index("--uri") + 1] == "http://other-milvus.vectors.svc:9091"
    assert restore[restore.index("--name") + 1] == "nightly"
    assert [restore[i + 1] for i, a in enumerate(restore) if a == "--rename"] == ["a:db2.a2", "b:b2"]
    assert "--drop-existing" in restore and "--no-indexes" in restore
    with pytest.raises(ValidationError, match="backupRef"):
        MilvusRestoreSpec.model_validate({"clusterRef": "other"})


def _job(name: str, created: str, cond: str | None, start: str = "t0", end: str = "t1") -> dict[str, Any]:
    status: dict[str, Any] = {"startTime": start}
    if cond:
        status["conditions"] = [{"type": cond, "status": "True", "reason": "BackoffLimitExceeded" if cond == "Failed" else "",
                                 "lastTransitionTime": end}]
        if cond == "Complete":
            status["completionTime"] = end
    else:
        status["active"] = 1
    return {"metadata": {"name": name, "creationTimestamp": created}, "status": status}


def _pod(code: int, message: str) -> dict[str, Any]:
    return {"metadata": {"creationTimestamp": "t"},
            "status": {"containerStatuses": [{"state": {"terminated": {"exitCode": code, "message": message}}}]}}


RESULT = json.dumps({"backup": "nightly", "ts": 42, "bytes": 1000, "uploadedBytes": 10, "rows": {"default.a": 7}})


def test_status_of_an_on_demand_backup_follows_its_job_and_pod_result() -> None:
    spec = MilvusBackupSpec.model_validate({"clusterRef": "demo"})
    running = b.backup_status(spec, 1, None, NOW, [_job("nightly-backup", "a", None)], {})
    assert running["phase"] == "Running" and running["conditions"][0]["reason"] == "InProgress"
    done = b.backup_status(spec, 1, None, NOW, [_job("nightly-backup", "a", "Complete")],
                           {"nightly-backup": [_pod(0, RESULT)]})
    assert done["phase"] == "Completed" and done["backupId"] == "nightly" and done["sizeBytes"] == 1000
    assert done["rows"] == {"default.a": 7} and done["startTime"] == "t0" and done["completionTime"] == "t1"
    assert done["conditions"][0]["status"] == "True"
    failed = b.backup_status(spec, 1, None, NOW, [_job("nightly-backup", "a", "Failed")],
                             {"nightly-backup": [_pod(1, "shoal backup: collection x not found")]})
    assert failed["phase"] == "Failed"
    cond = failed["conditions"][0]
    assert cond["status"] == "False" and cond["reason"] == "BackoffLimitExceeded"
    assert cond["message"] == "shoal backup: collection x not found"
    blocked = b.backup_status(spec, 1, None, NOW, [], {}, "MilvusCluster demo not found in vectors")
    assert blocked["phase"] == "Pending" and "not found" in blocked["conditions"][0]["message"]


def test_status_of_a_schedule_reports_the_newest_successful_run() -> None:
    spec = MilvusBackupSpec.model_validate({"clusterRef": "demo", "schedule": "@hourly"})
    jobs = [_job("j1", "1", "Complete", "s1", "e1"), _job("j2", "2", "Complete", "s2", "e2"), _job("j3", "3", None)]
    second = json.dumps({"backup": "nightly-2", "ts": 43, "bytes": 5, "rows": {}})
    st = b.backup_status(spec, 2, None, NOW, jobs, {"j1": [_pod(0, RESULT)], "j2": [_pod(0, second)]})
    assert st["phase"] == "Scheduled" and st["lastBackup"] == "nightly-2" and st["completionTime"] == "e2"
    assert st["runs"] == 3
    jobs.append(_job("j4", "4", "Failed"))
    st = b.backup_status(spec, 2, None, NOW, jobs, {"j2": [_pod(0, second)], "j4": [_pod(1, "boom")]})
    assert st["phase"] == "Failed" and st["conditions"][0]["message"] == "boom" and st["lastBackup"] == "nightly-2"


def test_restore_status() -> None:
    job = _job("back-restore", "1", "Complete")
    st = b.restore_status(1, None, NOW, job, [_pod(0, json.dumps({"backup": "nightly", "rows": {"default.a2": 7}}))],
                          "nightly")
    assert st["phase"] == "Completed" and st["rows"] == {"default.a2": 7} and st["backupId"] == "nightly"
    st = b.restore_status(1, None, NOW, None, [], "", "MilvusBackup nightly has no finished backup yet")
    assert st["phase"] == "Pending" and st["conditions"][0]["reason"] == "Blocked"


class FakeKube:
    """The few Kube calls the backup handlers make, over a dict."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}

    def put(self, obj: dict[str, Any]) -> None:
        self.objects[(obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"])] = obj

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((kind, namespace, name))

    def list(self, api_version: str, kind: str, namespace: str, selector: str) -> list[dict[str, Any]]:
        want = dict(part.split("=", 1) for part in selector.split(","))
        return [o for (k, ns, _), o in self.objects.items() if k == kind and ns == namespace
                and all((o["metadata"].get("labels") or {}).get(a) == v for a, v in want.items())]

    def create(self, obj: dict[str, Any]) -> bool:
        key = (obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"])
        if key in self.objects:
            return False
        self.put(obj)
        return True

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.put(obj)
        return obj


def _body(kind: str, name: str, spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"apiVersion": "shoal.dev/v1alpha1", "kind": kind,
            "metadata": {"name": name, "namespace": "vectors", "uid": f"{name}-uid", "generation": 1},
            "spec": spec, "status": status or {}}


def test_handlers_make_the_job_then_follow_it_into_status_and_feed_the_restore() -> None:
    from shoal_operator.handlers import backup as h

    kube = FakeKube()
    body = _body("MilvusBackup", "once", {"clusterRef": "demo", "storage": {"bucket": "bk", "endpoint": "http://s3"}})
    with pytest.raises(h.Blocked, match="MilvusCluster demo not found"):
        h.ensure_backup(kube, body)  # type: ignore[arg-type]
    kube.put({"kind": "MilvusCluster", "metadata": {"name": "demo", "namespace": "vectors", "uid": "c"}, "spec": {}})
    h.ensure_backup(kube, body)  # type: ignore[arg-type]
    job = kube.get("batch/v1", "Job", "vectors", "once-backup")
    assert job is not None
    assert h.backup_status(kube, body, {})["phase"] == "Pending"  # type: ignore[arg-type]
    job["status"] = _job("once-backup", "1", "Complete")["status"]
    pod = _pod(0, RESULT) | {"kind": "Pod", "metadata": {"name": "once-backup-x", "namespace": "vectors",
                                                          "labels": {"job-name": "once-backup"}}}
    kube.put(pod)
    status = h.backup_status(kube, body, {})  # type: ignore[arg-type]
    assert status["phase"] == "Completed" and status["backupId"] == "nightly"
    kube.put(body | {"kind": "MilvusBackup", "status": status})
    kube.put({"kind": "MilvusCluster", "metadata": {"name": "other", "namespace": "vectors", "uid": "o"}, "spec": {}})
    restore = _body("MilvusRestore", "back", {"clusterRef": "other", "backupRef": "once", "rename": {"a": "b"}})
    assert h.ensure_restore(kube, restore, {}) == "nightly"  # type: ignore[arg-type]
    job = kube.get("batch/v1", "Job", "vectors", "back-restore")
    assert job is not None and "--rename a:b" in job["spec"]["template"]["spec"]["containers"][0]["command"][2]
    assert "s3://bk/backups" in job["spec"]["template"]["spec"]["containers"][0]["command"][2]
