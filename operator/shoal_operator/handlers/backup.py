"""MilvusBackup / MilvusRestore: accepted and validated, not reconciled yet; status says so."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import kopf

from shoal_operator import constants as c
from shoal_operator.health import condition

NOT_YET = "accepted; this operator version does not run backups or restores yet"


def pending_status(generation: int, now: datetime) -> dict[str, Any]:
    return {
        "phase": "Pending",
        "observedGeneration": generation,
        "conditions": [
            condition([], "Reconciled", False, "NotImplemented", NOT_YET, generation, now.isoformat())
        ],
    }


@kopf.on.resume(c.GROUP, c.VERSION, c.BACKUP_PLURAL)
@kopf.on.create(c.GROUP, c.VERSION, c.BACKUP_PLURAL)
@kopf.on.resume(c.GROUP, c.VERSION, c.RESTORE_PLURAL)
@kopf.on.create(c.GROUP, c.VERSION, c.RESTORE_PLURAL)
def not_reconciled_yet(meta: kopf.Meta, patch: kopf.Patch, **_: Any) -> None:
    patch.status.update(pending_status(int(meta.get("generation", 0)), datetime.now(UTC)))
