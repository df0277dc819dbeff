"""`MilvusBackup` and `MilvusRestore` specs.

Read by `crdgen`, by `builders.backup` (the Jobs and CronJobs that run `shoal backup`) and by
`handlers.backup`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from shoal_operator.specs.common import KubeList, Resources, SpecModel, StringMap, cel_rules


class BackupStorage(SpecModel):
    endpoint: str | None = Field(
        None, description="S3 endpoint URL; absent means the cluster's own object store (or AWS when it has none)."
    )
    bucket: str | None = Field(None, description="S3 bucket; absent means the cluster's object store bucket.")
    prefix: str = Field("backups", description="Key prefix inside the bucket.")
    region: str | None = None
    secret_ref: str | None = Field(None, description="Secret with keys accessKey and secretKey.")
    path: str | None = Field(
        None, description="A directory instead of S3 (on a volume given by volumeClaim), e.g. /backups."
    )
    volume_claim: str | None = Field(None, description="PersistentVolumeClaim mounted at `path`.")


class JobPod(SpecModel):
    """Placement and resources of the pod that runs `shoal backup`."""

    node_selector: StringMap | None = None
    tolerations: KubeList | None = None
    resources: Resources | None = None


class Retention(SpecModel):
    keep_last: int | None = Field(None, ge=1, description="Keep this many newest backups of this resource.")
    max_age: str | None = Field(
        None, pattern=r"^\d+[smhd]?$", description="Delete backups older than this (e.g. 7d, 12h)."
    )


class MilvusBackupSpec(SpecModel):
    cluster_ref: str = Field(min_length=1, description="The MilvusCluster to back up (same namespace).")
    collections: list[str] = Field(default_factory=list, description="Empty means every collection of the database.")
    database: str = Field("default", description="Database of the collections; '*' backs up every database.")
    schedule: str | None = Field(None, description="Cron schedule; absent means one backup, now.")
    storage: BackupStorage = Field(default_factory=BackupStorage)
    retention: Retention | None = None
    deletion_policy: Literal["Retain", "Delete"] = Field(
        "Retain", description="What deleting this resource does to its backup files."
    )
    suspend: bool = Field(False, description="Pause a schedule.")
    pod: JobPod | None = None


class MilvusRestoreSpec(SpecModel):
    model_config = {
        "json_schema_extra": cel_rules(
            ("has(self.backupRef) || (has(self.backupName) && has(self.storage))",
             "give backupRef, or backupName with storage")
        )
    }

    cluster_ref: str = Field(min_length=1, description="The MilvusCluster to restore into (same namespace).")
    backup_ref: str | None = Field(
        None, description="A MilvusBackup in this namespace (its newest finished backup when scheduled)."
    )
    backup_name: str | None = Field(None, description="A backup's name in `storage` (with storage instead of backupRef).")
    storage: BackupStorage | None = None
    collections: list[str] = Field(default_factory=list, description="Restore only these; empty means all.")
    rename: StringMap | None = Field(None, description="Old collection name -> new name (NEW may be DB.NAME).")
    database: str | None = Field(None, description="Restore into this database.")
    drop_existing: bool = Field(False, description="Replace collections that already exist.")
    with_indexes: bool = Field(True, description="Restore index files (false: the node rebuilds them).")
    pod: JobPod | None = None

    @model_validator(mode="after")
    def _source(self) -> MilvusRestoreSpec:
        if not self.backup_ref and not (self.backup_name and self.storage):
            raise ValueError("give backupRef, or backupName with storage")
        return self
