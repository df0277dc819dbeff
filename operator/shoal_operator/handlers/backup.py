"""MilvusBackup / MilvusRestore: create the Job or CronJob that runs `shoal backup`, follow it
into status, honour deletionPolicy.

The objects and the status come from `builders.backup` (pure); this module reads the cluster,
the Jobs and their pods, and writes. A timer refreshes status; a missing cluster or backup is
reported in status and retried on the next pass.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import kopf
from pydantic import ValidationError

from shoal_operator import constants as c
from shoal_operator.builders import backup as b
from shoal_operator.builders.meta import ClusterRef
from shoal_operator.kube import Kube
from shoal_operator.specs.backup import MilvusBackupSpec, MilvusRestoreSpec
from shoal_operator.specs.cluster import MilvusClusterSpec

STATUS_SECONDS = float(os.environ.get("SHOAL_OPERATOR_BACKUP_STATUS_SECONDS", "5"))


class Blocked(Exception):
    """Something the resource needs is missing; said in status, retried later."""


def _cluster(kube: Kube, namespace: str, name: str) -> tuple[ClusterRef, MilvusClusterSpec]:
    body = kube.get(c.API_VERSION, c.CLUSTER_KIND, namespace, name)
    if body is None:
        raise Blocked(f"MilvusCluster {name} not found in {namespace}")
    return ClusterRef.from_body(body), MilvusClusterSpec.model_validate(dict(body.get("spec") or {}))


def _pods(kube: Kube, namespace: str, job_name: str) -> list[dict[str, Any]]:
    return kube.list("v1", "Pod", namespace, f"job-name={job_name}")


def _now() -> str:
    return datetime.now(UTC).isoformat()


# ---- MilvusBackup


def _backup_spec(body: Any) -> MilvusBackupSpec:
    try:
        return MilvusBackupSpec.model_validate(dict(body.get("spec") or {}))
    except ValidationError as exc:
        raise kopf.PermanentError(f"invalid spec: {exc}") from exc


def ensure_backup(kube: Kube, body: Any) -> None:
    spec = _backup_spec(body)
    owner = b.Owner.from_body(c.BACKUP_KIND, body)
    cluster, cluster_spec = _cluster(kube, owner.namespace, spec.cluster_ref)
    try:
        obj = b.backup_object(owner, spec, cluster, cluster_spec)
    except ValueError as exc:
        raise Blocked(str(exc)) from exc
    if obj["kind"] == "CronJob":
        kube.apply(obj)
    else:
        kube.create(obj)  # a Job's template is immutable: an on-demand backup runs once


def backup_status(kube: Kube, body: Any, status: Any, problem: str = "") -> dict[str, Any]:
    spec = _backup_spec(body)
    owner = b.Owner.from_body(c.BACKUP_KIND, body)
    generation = int(body["metadata"].get("generation", 0))
    if problem:
        return b.backup_status(spec, generation, status, _now(), [], {}, problem)
    if spec.schedule:
        selector = f"{c.INSTANCE_LABEL}={owner.name},{c.COMPONENT_LABEL}={b.BACKUP_COMPONENT}"
        jobs = [j for j in kube.list("batch/v1", "Job", owner.namespace, selector)
                if not j["metadata"]["name"].endswith("-cleanup")]
    else:
        job = kube.get("batch/v1", "Job", owner.namespace, b.backup_job_name(owner))
        jobs = [job] if job else []
    pods = {j["metadata"]["name"]: _pods(kube, owner.namespace, j["metadata"]["name"]) for j in jobs}
    return b.backup_status(spec, generation, status, _now(), jobs, pods)


@kopf.on.resume(c.GROUP, c.VERSION, c.BACKUP_PLURAL)
@kopf.on.create(c.GROUP, c.VERSION, c.BACKUP_PLURAL)
@kopf.on.update(c.GROUP, c.VERSION, c.BACKUP_PLURAL, field="spec")
def backup_changed(memo: kopf.Memo, body: kopf.Body, status: kopf.Status, patch: kopf.Patch, **_: Any) -> None:
    problem = ""
    try:
        ensure_backup(memo.kube, body)
    except Blocked as exc:
        problem = str(exc)
    patch.status.update(backup_status(memo.kube, body, status, problem))


@kopf.timer(c.GROUP, c.VERSION, c.BACKUP_PLURAL, interval=STATUS_SECONDS, initial_delay=STATUS_SECONDS)
def backup_progress(memo: kopf.Memo, body: kopf.Body, status: kopf.Status, patch: kopf.Patch, **_: Any) -> None:
    problem = ""
    try:
        ensure_backup(memo.kube, body)  # a cluster that appeared later, a deleted Job
    except Blocked as exc:
        problem = str(exc)
    new = backup_status(memo.kube, body, status, problem)
    if {k: v for k, v in new.items()} != {k: (status or {}).get(k) for k in new}:
        patch.status.update(new)


@kopf.on.delete(c.GROUP, c.VERSION, c.BACKUP_PLURAL)
def backup_deleted(memo: kopf.Memo, body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
    spec = body.get("spec") or {}
    if spec.get("deletionPolicy", "Retain") != "Delete":
        logger.info("backup files kept (deletionPolicy Retain)")
        return
    parsed = MilvusBackupSpec.model_validate(dict(spec))
    owner = b.Owner.from_body(c.BACKUP_KIND, body)
    try:
        cluster, cluster_spec = _cluster(memo.kube, owner.namespace, parsed.cluster_ref)
        memo.kube.create(b.cleanup_job(owner, parsed, cluster, cluster_spec))
    except (Blocked, ValueError) as exc:
        logger.warning(f"cannot delete the backup files: {exc}")


# ---- MilvusRestore


def _restore_spec(body: Any) -> MilvusRestoreSpec:
    try:
        return MilvusRestoreSpec.model_validate(dict(body.get("spec") or {}))
    except ValidationError as exc:
        raise kopf.PermanentError(f"invalid spec: {exc}") from exc


def ensure_restore(kube: Kube, body: Any, status: Any) -> str:
    """Create the restore Job once; returns the backup's name."""
    spec = _restore_spec(body)
    owner = b.Owner.from_body(c.RESTORE_KIND, body)
    cluster, cluster_spec = _cluster(kube, owner.namespace, spec.cluster_ref)
    chosen = (status or {}).get("backupId")
    if spec.backup_ref:
        source = kube.get(c.API_VERSION, c.BACKUP_KIND, owner.namespace, spec.backup_ref)
        if source is None:
            raise Blocked(f"MilvusBackup {spec.backup_ref} not found in {owner.namespace}")
        backup_spec = MilvusBackupSpec.model_validate(dict(source.get("spec") or {}))
        source_status = source.get("status") or {}
        name = chosen or source_status.get("backupId")
        if not name or not source_status.get("completionTime"):
            raise Blocked(f"MilvusBackup {spec.backup_ref} has no finished backup yet")
        source_cluster, source_cluster_spec = _cluster(kube, owner.namespace, backup_spec.cluster_ref)
        storage = b.storage_for(backup_spec.storage, source_cluster, source_cluster_spec)
    else:
        assert spec.storage is not None and spec.backup_name is not None
        name = spec.backup_name
        try:
            storage = b.storage_for(spec.storage, cluster, cluster_spec)
        except ValueError as exc:
            raise Blocked(str(exc)) from exc
    kube.create(b.restore_job(owner, spec, cluster, cluster_spec, storage, str(name)))
    return str(name)


def restore_status(kube: Kube, body: Any, status: Any, name: str, problem: str) -> dict[str, Any]:
    owner = b.Owner.from_body(c.RESTORE_KIND, body)
    generation = int(body["metadata"].get("generation", 0))
    if problem:
        return b.restore_status(generation, status, _now(), None, [], "", problem)
    job_name = b.restore_job_name(owner)
    job = kube.get("batch/v1", "Job", owner.namespace, job_name)
    return b.restore_status(generation, status, _now(), job, _pods(kube, owner.namespace, job_name), name)


def _restore_pass(kube: Kube, body: Any, status: Any) -> dict[str, Any]:
    try:
        name = ensure_restore(kube, body, status)
    except Blocked as exc:
        return restore_status(kube, body, status, "", str(exc))
    return restore_status(kube, body, status, name, "")


@kopf.on.resume(c.GROUP, c.VERSION, c.RESTORE_PLURAL)
@kopf.on.create(c.GROUP, c.VERSION, c.RESTORE_PLURAL)
def restore_changed(memo: kopf.Memo, body: kopf.Body, status: kopf.Status, patch: kopf.Patch, **_: Any) -> None:
    patch.status.update(_restore_pass(memo.kube, body, status))


@kopf.timer(c.GROUP, c.VERSION, c.RESTORE_PLURAL, interval=STATUS_SECONDS, initial_delay=STATUS_SECONDS)
def restore_progress(memo: kopf.Memo, body: kopf.Body, status: kopf.Status, patch: kopf.Patch, **_: Any) -> None:
    if (status or {}).get("phase") in ("Completed", "Failed"):
        return
    patch.status.update(_restore_pass(memo.kube, body, status))
