"""Collection handlers: create what is missing, report drift, honour deletionPolicy.

Events and a drift timer run `reconcile`; an unreachable endpoint is reported in status
and retried on the next pass rather than blocking anything.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import kopf
from pydantic import ValidationError

from shoal_operator import collections_client as milvus
from shoal_operator import constants as c
from shoal_operator import metrics
from shoal_operator.collections_diff import diff
from shoal_operator.health import condition
from shoal_operator.kube import Kube
from shoal_operator.milvus_target import TargetMissing, resolve
from shoal_operator.specs.collection import CollectionSpec

RESYNC_SECONDS = float(os.environ.get("SHOAL_OPERATOR_COLLECTION_RESYNC_SECONDS", "30"))


def collection_status(
    generation: int,
    previous: Any,
    now: datetime,
    drift: list[str],
    errors: list[str],
    observed_loaded: bool | None,
    progress: dict[str, Any] | None,
) -> dict[str, Any]:
    prev = list((previous or {}).get("conditions") or [])
    stamp = now.isoformat()
    reachable = progress is not None
    ok = reachable and not errors
    if not reachable:
        phase, reason = "Pending", "Unreachable"
    elif errors:
        phase, reason = "Error", "ActionFailed"
    elif drift:
        phase, reason = "Drifted", "SchemaDrift"
    else:
        phase, reason = "Ready", "InSync"
    out: dict[str, Any] = {
        "phase": phase,
        "observedGeneration": generation,
        "drift": drift,
        "errors": errors,
        "conditions": [
            condition(prev, "Ready", ok and not drift, reason, "; ".join(errors or drift), generation, stamp),
            condition(prev, "SchemaDrift", bool(drift), "SchemaDrift" if drift else "NoDrift",
                      "; ".join(drift), generation, stamp),
        ],
    }
    if progress is not None:
        out["rows"] = progress["rows"]
        out["indexes"] = progress["indexes"]
    if observed_loaded is not None:
        out["loadState"] = "Loaded" if observed_loaded else "Released"
    return out


def reconcile(kube: Kube, body: Any, status: Any, now: datetime) -> dict[str, Any]:
    generation = int(body["metadata"].get("generation", 0))
    try:
        spec = CollectionSpec.model_validate(dict(body.get("spec") or {}))
    except ValidationError as exc:
        raise kopf.PermanentError(f"invalid spec: {exc}") from exc
    try:
        target = resolve(kube, spec.target, body["metadata"]["namespace"])
    except TargetMissing as exc:
        return collection_status(generation, status, now, [], [str(exc)], None, None)
    errors: list[str] = []
    # Any failure talking to the endpoint (pymilvus or gRPC errors alike) becomes status
    # for a human to read; the next pass retries.
    try:
        client = milvus.connect(target.uri, spec.database, target.token, target.user, target.password)
    except Exception as exc:
        return collection_status(generation, status, now, [], [f"cannot reach {target.uri}: {exc}"], None, None)
    try:
        change = diff(spec, milvus.observe(client, spec.name))
        for action in change.actions:
            try:
                milvus.execute(client, spec, action)
                message = f"{spec.name}: {milvus.describe(action)}"
                kopf.event(body, type="Normal", reason="Reconciled", message=message)
            except Exception as exc:
                errors.append(f"{milvus.describe(action)}: {exc}")
                break
        observed = milvus.observe(client, spec.name)
        progress = milvus.progress(client, spec.name) if observed else None
    except Exception as exc:
        return collection_status(generation, status, now, [], [f"{target.uri}: {exc}"], None, None)
    finally:
        client.close()
    return collection_status(
        generation, status, now, change.drift, errors, observed.loaded if observed else None, progress
    )


def _run(memo: Any, body: Any, status: Any, patch: Any) -> None:
    with metrics.reconciling(c.COLLECTION_KIND):
        patch.status.update(reconcile(memo.kube, body, status, datetime.now(UTC)))


@kopf.on.resume(c.GROUP, c.VERSION, c.COLLECTION_PLURAL)
@kopf.on.create(c.GROUP, c.VERSION, c.COLLECTION_PLURAL)
@kopf.on.update(c.GROUP, c.VERSION, c.COLLECTION_PLURAL)
def collection_changed(memo: kopf.Memo, body: kopf.Body, status: kopf.Status, patch: kopf.Patch,
                       **_: Any) -> None:
    _run(memo, body, status, patch)


@kopf.timer(c.GROUP, c.VERSION, c.COLLECTION_PLURAL, interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS)
def collection_drift_check(memo: kopf.Memo, body: kopf.Body, status: kopf.Status, patch: kopf.Patch,
                           **_: Any) -> None:
    _run(memo, body, status, patch)


@kopf.on.delete(c.GROUP, c.VERSION, c.COLLECTION_PLURAL)
def collection_deleted(memo: kopf.Memo, body: kopf.Body, retry: int, logger: kopf.Logger, **_: Any) -> None:
    spec = body.get("spec") or {}
    if spec.get("deletionPolicy", "Retain") != "Delete":
        logger.info(f"{spec.get('name')}: kept (deletionPolicy Retain)")
        return
    parsed = CollectionSpec.model_validate(dict(spec))
    kube: Kube = memo.kube
    try:
        target = resolve(kube, parsed.target, body["metadata"]["namespace"])
        client = milvus.connect(target.uri, parsed.database, target.token, target.user, target.password)
        try:
            client.drop_collection(parsed.name)
        finally:
            client.close()
    except TargetMissing as exc:
        logger.info(f"{parsed.name}: nothing to drop: {exc}")
    except Exception as exc:
        if retry < 5:
            raise kopf.TemporaryError(f"cannot drop {parsed.name} yet: {exc}", delay=10) from exc
        logger.warning(f"{parsed.name}: giving up dropping after {retry} tries: {exc}")
