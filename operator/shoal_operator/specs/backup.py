"""`MilvusBackup` and `MilvusRestore` specs. Accepted and validated; not reconciled yet.

Read by `crdgen` and by the handlers that report "not reconciled yet" in status.
"""

from __future__ import annotations

from pydantic import Field

from shoal_operator.specs.common import SpecModel, StringMap


class BackupStorage(SpecModel):
    bucket: str | None = Field(None, description="Defaults to the cluster's object store bucket.")
    prefix: str = "backups"
    secret_ref: str | None = None


class MilvusBackupSpec(SpecModel):
    cluster_ref: str = Field(min_length=1)
    collections: list[str] = Field(default_factory=list, description="Empty means all collections.")
    database: str = "default"
    schedule: str | None = Field(None, description="Cron schedule; absent means once, on demand.")
    storage: BackupStorage = Field(default_factory=BackupStorage)


class MilvusRestoreSpec(SpecModel):
    cluster_ref: str = Field(min_length=1)
    backup_name: str = Field(min_length=1, description="A MilvusBackup in this namespace.")
    collections: list[str] = Field(default_factory=list)
    rename: StringMap | None = Field(None, description="Old collection name -> new name.")
