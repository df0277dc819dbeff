"""Jobs and CronJobs for `MilvusBackup` / `MilvusRestore`, and their status, as pure functions.

A backup or restore is `shoal backup ...` run in a pod of the cluster's own image, against the
cluster's HTTP port (`<cluster>-milvus:9091`). CronJobs rather than operator timers: the
schedule survives operator restarts and upgrades, Kubernetes keeps the run history, and
`concurrencyPolicy: Forbid` keeps two runs of one schedule apart. Retention is the same pod's
next step (`shoal backup prune`), so it runs exactly when a backup finished. The pod writes a
JSON summary of what it did to its termination message, which becomes the resource's status.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any

from shoal_operator import constants as c
from shoal_operator.builders.dependencies import connections
from shoal_operator.builders.meta import ClusterRef, service_name
from shoal_operator.specs.backup import BackupStorage, JobPod, MilvusBackupSpec, MilvusRestoreSpec
from shoal_operator.specs.cluster import MilvusClusterSpec

BACKUP_COMPONENT = "backup"
RESTORE_COMPONENT = "restore"
RESULT_PATH = "/dev/termination-log"
JOB_BACKOFF_LIMIT = 2
EXIT_REFUSED = 3  # `shoal backup`: the request was refused; a retry cannot help
HISTORY = 3


@dataclass(frozen=True)
class Owner:
    """The MilvusBackup / MilvusRestore a Job belongs to."""

    kind: str
    name: str
    namespace: str
    uid: str

    @classmethod
    def from_body(cls, kind: str, body: Any) -> Owner:
        meta = body["metadata"]
        return cls(kind, meta["name"], meta["namespace"], meta.get("uid", ""))


@dataclass(frozen=True)
class Storage:
    """Where the files go, as `shoal backup` flags, env and volumes."""

    dest: str
    env: list[dict[str, Any]]
    volumes: list[dict[str, Any]]
    mounts: list[dict[str, Any]]


def _secret_env(var: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def storage_for(storage: BackupStorage, cluster: ClusterRef, cluster_spec: MilvusClusterSpec) -> Storage:
    """Explicit storage wins field by field; the cluster's own object store fills the gaps."""
    if storage.path:
        volumes, mounts = [], []
        if storage.volume_claim:
            volumes = [{"name": "backups", "persistentVolumeClaim": {"claimName": storage.volume_claim}}]
            mounts = [{"name": "backups", "mountPath": storage.path}]
        return Storage(storage.path, [], volumes, mounts)
    own = connections(cluster, cluster_spec)
    s3 = own.config.get("s3") or {}
    bucket = storage.bucket or s3.get("bucket")
    if not bucket:
        raise ValueError("storage.bucket is required: the cluster has no object store to default to")
    env: list[dict[str, Any]] = []
    own_store = not storage.bucket and not storage.endpoint
    endpoint = storage.endpoint or (s3.get("endpoint") if own_store else None)
    if endpoint:
        env.append({"name": "SHOAL_S3_ENDPOINT", "value": endpoint})
    if storage.region:
        env.append({"name": "SHOAL_S3_REGION", "value": storage.region})
    if storage.secret_ref:
        env += [_secret_env("SHOAL_S3_ACCESS_KEY", storage.secret_ref, "accessKey"),
                _secret_env("SHOAL_S3_SECRET_KEY", storage.secret_ref, "secretKey")]
    elif own_store:
        env += [e for e in own.env if e["name"].startswith("SHOAL_S3_")]
    prefix = storage.prefix.strip("/")
    return Storage(f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}", env, [], [])


def node_uri(cluster: ClusterRef) -> str:
    return f"http://{service_name(cluster)}.{cluster.namespace}.svc:{c.HTTP_PORT}"


def _labels(owner: Owner, component: str) -> dict[str, str]:
    return {
        c.NAME_LABEL: c.APP_NAME,
        c.INSTANCE_LABEL: owner.name,
        c.COMPONENT_LABEL: component,
        c.MANAGED_BY_LABEL: c.MANAGED_BY,
        c.PART_OF_LABEL: c.APP_NAME,
    }


def _owner_reference(owner: Owner) -> dict[str, Any]:
    return {"apiVersion": c.API_VERSION, "kind": owner.kind, "name": owner.name, "uid": owner.uid,
            "controller": True, "blockOwnerDeletion": True}


def _metadata(owner: Owner, name: str, component: str, owned: bool = True) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": owner.namespace, "labels": _labels(owner, component)}
    if owned:
        meta["ownerReferences"] = [_owner_reference(owner)]
    return meta


def _pod_spec(image: str, pull: str, script: str, storage: Storage, placement: JobPod | None) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "shoal-backup",
        "image": image,
        "imagePullPolicy": pull,
        "command": ["/bin/sh", "-c", script],
        "env": list(storage.env),
        "terminationMessagePath": RESULT_PATH,
        # on failure the last log lines (the one-line error) become the message
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if storage.mounts:
        container["volumeMounts"] = list(storage.mounts)
    if placement and placement.resources:
        container["resources"] = placement.resources
    pod: dict[str, Any] = {"restartPolicy": "Never", "containers": [container]}
    if storage.volumes:
        pod["volumes"] = list(storage.volumes)
    if placement and placement.node_selector:
        pod["nodeSelector"] = dict(sorted(placement.node_selector.items()))
    if placement and placement.tolerations:
        pod["tolerations"] = list(placement.tolerations)
    return pod


def _job_spec(owner: Owner, component: str, pod: dict[str, Any]) -> dict[str, Any]:
    """Retry what may pass next time (node unreachable, pod killed); fail at once on a refusal."""
    return {
        "backoffLimit": JOB_BACKOFF_LIMIT,
        "podFailurePolicy": {"rules": [{
            "action": "FailJob",
            "onExitCodes": {"containerName": "shoal-backup", "operator": "In", "values": [EXIT_REFUSED]},
        }]},
        "template": {"metadata": {"labels": _labels(owner, component)}, "spec": pod},
    }


def backup_name_prefix(owner: Owner) -> str:
    return f"{owner.name}-"


def backup_script(owner: Owner, spec: MilvusBackupSpec, cluster: ClusterRef, storage: Storage) -> str:
    create = ["shoal", "backup", "create", "--uri", node_uri(cluster), "--to", storage.dest,
              "--database", spec.database, "--no-progress", "--result-file", RESULT_PATH]
    for name in spec.collections:
        create += ["--collection", name]
    if spec.schedule:
        create += ["--name-prefix", backup_name_prefix(owner)]
    else:
        create += ["--name", owner.name]
    script = shlex.join(create)
    retention = spec.retention
    if spec.schedule and retention and (retention.keep_last or retention.max_age):
        prune = ["shoal", "backup", "prune", "--from", storage.dest, "--match", backup_name_prefix(owner)]
        if retention.keep_last:
            prune += ["--keep-last", str(retention.keep_last)]
        if retention.max_age:
            prune += ["--max-age", retention.max_age]
        script += " && " + shlex.join(prune) + " >&2"
    return script


def backup_job_name(owner: Owner) -> str:
    return f"{owner.name}-backup"[:63]


def backup_object(
    owner: Owner, spec: MilvusBackupSpec, cluster: ClusterRef, cluster_spec: MilvusClusterSpec
) -> dict[str, Any]:
    """The Job (on demand) or CronJob (scheduled) that runs the backup."""
    storage = storage_for(spec.storage, cluster, cluster_spec)
    pod = _pod_spec(cluster_spec.target_image, cluster_spec.image_pull_policy,
                    backup_script(owner, spec, cluster, storage), storage, spec.pod)
    job_spec = _job_spec(owner, BACKUP_COMPONENT, pod)
    name = backup_job_name(owner)
    if not spec.schedule:
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": _metadata(owner, name, BACKUP_COMPONENT),
                "spec": job_spec}
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": _metadata(owner, name, BACKUP_COMPONENT),
        "spec": {
            "schedule": spec.schedule,
            "suspend": spec.suspend,
            "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": HISTORY,
            "failedJobsHistoryLimit": HISTORY,
            "jobTemplate": {"metadata": {"labels": _labels(owner, BACKUP_COMPONENT)}, "spec": job_spec},
        },
    }


def cleanup_job(owner: Owner, spec: MilvusBackupSpec, cluster: ClusterRef, cluster_spec: MilvusClusterSpec) -> dict[str, Any]:
    """deletionPolicy Delete: a Job (not owned: it outlives the resource) that deletes its backups."""
    storage = storage_for(spec.storage, cluster, cluster_spec)
    args = ["shoal", "backup", "delete", "--from", storage.dest]
    args += ["--match", backup_name_prefix(owner)] if spec.schedule else ["--name", owner.name, "--missing-ok"]
    pod = _pod_spec(cluster_spec.target_image, cluster_spec.image_pull_policy, shlex.join(args), storage, spec.pod)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(owner, f"{owner.name}-backup-cleanup"[:63], BACKUP_COMPONENT, owned=False),
        "spec": {**_job_spec(owner, BACKUP_COMPONENT, pod), "ttlSecondsAfterFinished": 3600},
    }


def restore_job_name(owner: Owner) -> str:
    return f"{owner.name}-restore"[:63]


def restore_job(
    owner: Owner, spec: MilvusRestoreSpec, cluster: ClusterRef, cluster_spec: MilvusClusterSpec,
    storage: Storage, backup_name: str,
) -> dict[str, Any]:
    args = ["shoal", "backup", "restore", "--uri", node_uri(cluster), "--from", storage.dest, "--name", backup_name,
            "--no-progress", "--result-file", RESULT_PATH]
    for name in spec.collections:
        args += ["--collection", name]
    for old, new in sorted((spec.rename or {}).items()):
        args += ["--rename", f"{old}:{new}"]
    if spec.database:
        args += ["--database", spec.database]
    if spec.drop_existing:
        args.append("--drop-existing")
    if not spec.with_indexes:
        args.append("--no-indexes")
    pod = _pod_spec(cluster_spec.target_image, cluster_spec.image_pull_policy, shlex.join(args), storage, spec.pod)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(owner, restore_job_name(owner), RESTORE_COMPONENT),
        "spec": _job_spec(owner, RESTORE_COMPONENT, pod),
    }


# ---- status


def pod_result(pods: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, str]:
    """(the JSON summary of the newest pod that finished, the newest failure message)."""
    result, failure = None, ""
    ordered = sorted(pods, key=lambda p: p.get("metadata", {}).get("creationTimestamp") or "")
    for pod in ordered:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            term = (cs.get("state") or {}).get("terminated") or {}
            message = (term.get("message") or "").strip()
            if not term:
                continue
            if term.get("exitCode") == 0:
                try:
                    result = json.loads(message) if message else result
                except ValueError:
                    pass
            else:
                failure = message.splitlines()[-1] if message else f"exit code {term.get('exitCode')} ({term.get('reason', '')})"
    return result, failure


def job_phase(job: dict[str, Any] | None) -> tuple[str, str, str | None, str | None]:
    """(phase, reason, startTime, completionTime) of a Job."""
    if job is None:
        return "Pending", "JobNotCreated", None, None
    st = job.get("status") or {}
    for cond in st.get("conditions") or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Complete":
            return "Completed", "Completed", st.get("startTime"), st.get("completionTime") or cond.get("lastTransitionTime")
        if cond.get("type") == "Failed":
            return "Failed", cond.get("reason") or "Failed", st.get("startTime"), cond.get("lastTransitionTime")
    if st.get("active") or st.get("startTime"):
        return "Running", "Running", st.get("startTime"), None
    return "Pending", "JobCreated", None, None


def _conditions(previous: Any, kind: str, ok: bool, reason: str, message: str, generation: int, now: str) -> list[dict[str, Any]]:
    from shoal_operator.health import condition

    return [condition(list((previous or {}).get("conditions") or []), kind, ok, reason, message, generation, now)]


def backup_status(
    spec: MilvusBackupSpec, generation: int, previous: Any, now: str,
    jobs: list[dict[str, Any]], pods_of: dict[str, list[dict[str, Any]]], problem: str = "",
) -> dict[str, Any]:
    """Status of a MilvusBackup from its Job(s) and their pods.

    On demand: the one Job's phase, times and result. Scheduled: phase `Scheduled` (or
    `Failed` when the newest finished run failed), with the newest successful run's result."""
    if problem:
        return {"phase": "Pending", "observedGeneration": generation,
                "conditions": _conditions(previous, "Succeeded", False, "Blocked", problem, generation, now)}
    runs = sorted(jobs, key=lambda j: (j.get("metadata") or {}).get("creationTimestamp") or "")
    out: dict[str, Any] = {"observedGeneration": generation}
    last_ok = None
    last_finished: tuple[str, str, str] | None = None
    for job in runs:
        phase, reason, start, end = job_phase(job)
        result, failure = pod_result(pods_of.get(job["metadata"]["name"], []))
        if phase == "Completed":
            last_ok = (job, start, end, result)
            last_finished = (phase, reason, "")
        elif phase == "Failed":
            last_finished = (phase, reason, failure)
    if last_ok is not None:
        job, start, end, result = last_ok
        out.update({"startTime": start, "completionTime": end})
        if result:
            out.update({"backupId": result.get("backup"), "backupTimestamp": result.get("ts"),
                        "sizeBytes": result.get("bytes"), "uploadedBytes": result.get("uploadedBytes"),
                        "rows": result.get("rows") or {}})
    if spec.schedule:
        out["phase"] = "Failed" if last_finished and last_finished[0] == "Failed" else "Scheduled"
        out["lastBackup"] = out.get("backupId")
        out["runs"] = len(runs)
    else:
        phase, reason, start, end = job_phase(runs[-1] if runs else None)
        out["phase"] = phase
        if phase != "Completed":
            out["startTime"] = start
            if end:
                out["completionTime"] = end
        last_finished = (phase, reason, pod_result(pods_of.get(runs[-1]["metadata"]["name"], []))[1] if runs else "")
    if last_finished and last_finished[0] == "Failed":
        message = last_finished[2] or f"the backup Job failed ({last_finished[1]})"
        out["conditions"] = _conditions(previous, "Succeeded", False, last_finished[1] or "Failed", message, generation, now)
    elif last_ok is not None:
        out["conditions"] = _conditions(previous, "Succeeded", True, "BackupCompleted",
                                        f"backup {out.get('backupId')} completed", generation, now)
    else:
        waiting = "waiting for the first scheduled run" if spec.schedule else "the backup Job is running"
        out["conditions"] = _conditions(previous, "Succeeded", False, "InProgress", waiting, generation, now)
    return out


def restore_status(
    generation: int, previous: Any, now: str, job: dict[str, Any] | None, pods: list[dict[str, Any]],
    backup_name: str, problem: str = "",
) -> dict[str, Any]:
    if problem:
        return {"phase": "Pending", "observedGeneration": generation,
                "conditions": _conditions(previous, "Succeeded", False, "Blocked", problem, generation, now)}
    phase, reason, start, end = job_phase(job)
    result, failure = pod_result(pods)
    out: dict[str, Any] = {"phase": phase, "observedGeneration": generation, "backupId": backup_name,
                           "startTime": start, "completionTime": end}
    if result:
        out["rows"] = result.get("rows") or {}
    if phase == "Completed":
        conds = _conditions(previous, "Succeeded", True, "RestoreCompleted", f"restored backup {backup_name}", generation, now)
    elif phase == "Failed":
        conds = _conditions(previous, "Succeeded", False, reason, failure or "the restore Job failed", generation, now)
    else:
        conds = _conditions(previous, "Succeeded", False, "InProgress", "the restore Job is running", generation, now)
    out["conditions"] = conds
    return out
