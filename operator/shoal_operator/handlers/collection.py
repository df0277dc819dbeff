"""Collection handlers: create what is missing, report drift, migrate, honour deletionPolicy.

Events and a drift timer run `reconcile`; an unreachable endpoint is reported in status
and retried on the next pass rather than blocking anything.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf
from pydantic import ValidationError

from shoal_operator import collections_client as milvus
from shoal_operator import collections_migration as migration
from shoal_operator import constants as c
from shoal_operator import metrics
from shoal_operator.collections_diff import diff
from shoal_operator.health import condition
from shoal_operator.kube import Kube
from shoal_operator.milvus_target import TargetMissing, resolve
from shoal_operator.specs.collection import CollectionSpec

RESYNC_SECONDS = float(os.environ.get("SHOAL_OPERATOR_COLLECTION_RESYNC_SECONDS", "30"))
# A pass copies for about this long, then records its progress; the next pass resumes.
MIGRATION_PASS_SECONDS = 20.0


def collection_status(
    generation: int,
    previous: Any,
    now: datetime,
    drift: list[str],
    errors: list[str],
    observed_loaded: bool | None,
    progress: dict[str, Any] | None,
    live: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """`live`: activeCollection, migration and retained, carried from pass to pass."""
    prev = list((previous or {}).get("conditions") or [])
    stamp = now.isoformat()
    live = dict(live if live is not None else _live_state(previous))
    reachable = progress is not None
    ok = reachable and not errors
    migrating = migration.in_progress(live.get("migration"))
    if not reachable:
        phase, reason = "Pending", "Unreachable"
    elif errors:
        phase, reason = "Error", "ActionFailed"
    elif migrating:
        phase, reason = "Migrating", "BlueGreenMigration"
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
            condition(prev, "Ready", ok and not drift and not migrating, reason, "; ".join(errors or drift),
                      generation, stamp),
            condition(prev, "SchemaDrift", bool(drift), "SchemaDrift" if drift else "NoDrift",
                      "; ".join(drift), generation, stamp),
        ],
        **live,
    }
    if progress is not None:
        out["rows"] = progress["rows"]
        out["indexes"] = progress["indexes"]
    if observed_loaded is not None:
        out["loadState"] = "Loaded" if observed_loaded else "Released"
    return out


def _live_state(status: Any) -> dict[str, Any]:
    status = status or {}
    out: dict[str, Any] = {}
    for key in ("activeCollection", "migration", "retained"):
        if status.get(key) is not None:
            out[key] = status[key]
    return out


def _migrate(client: Any, spec: CollectionSpec, body: Any, live: dict[str, Any], now: datetime) -> None:
    """Run the migration's steps until it is done or this pass's time is spent (resumed next pass)."""
    deadline = time.monotonic() + MIGRATION_PASS_SECONDS
    while (step := migration.next_step(live.get("migration"), now)) is not None:
        copied, last_key = milvus.migrate(client, spec, step)
        live["migration"] = migration.after(live["migration"], step, now, copied, last_key)
        if isinstance(step, migration.Switch):
            live["activeCollection"] = step.target
            live["retained"] = migration.retain(list(live.get("retained") or []), step.source, spec, now)
            kopf.event(body, type="Normal", reason="Migrated", message=f"{spec.name}: {migration.describe(step)}")
        elif isinstance(step, migration.CreateTarget):
            kopf.event(body, type="Normal", reason="Migrating", message=f"{spec.name}: {migration.describe(step)}")
        if time.monotonic() > deadline:
            return


def _drop_expired(client: Any, spec: CollectionSpec, body: Any, live: dict[str, Any], now: datetime) -> None:
    retained = list(live.get("retained") or [])
    for name in migration.expired(retained, now):
        client.drop_collection(name)
        kopf.event(body, type="Normal", reason="Dropped", message=f"{spec.name}: dropped {name} (retention passed)")
        retained = [r for r in retained if r.get("name") != name]
    live["retained"] = retained


def reconcile(kube: Kube, body: Any, status: Any, now: datetime) -> dict[str, Any]:
    generation = int(body["metadata"].get("generation", 0))
    try:
        spec = CollectionSpec.model_validate(dict(body.get("spec") or {}))
    except ValidationError as exc:
        raise kopf.PermanentError(f"invalid spec: {exc}") from exc
    live = _live_state(status)
    try:
        target = resolve(kube, spec.target, body["metadata"]["namespace"])
    except TargetMissing as exc:
        return collection_status(generation, status, now, [], [str(exc)], None, None, live)
    errors: list[str] = []
    # Any failure talking to the endpoint (pymilvus or gRPC errors alike) becomes status
    # for a human to read; the next pass retries.
    try:
        client = milvus.connect(target.uri, spec.database, target.token, target.user, target.password)
    except Exception as exc:
        return collection_status(generation, status, now, [], [f"cannot reach {target.uri}: {exc}"], None, None, live)
    try:
        active = str(live.get("activeCollection") or spec.name)
        drift: list[str] = []
        if migration.in_progress(live.get("migration")):
            try:
                _migrate(client, spec, body, live, now)
            except migration.MigrationRefused as exc:
                live["migration"] = {**live["migration"], "phase": "Failed", "reason": str(exc)}
                errors.append(f"migration: {exc}")
            active = str(live.get("activeCollection") or spec.name)
        else:
            observed = milvus.observe(client, active)
            elsewhere = spec.alias is not None and milvus.alias_target(client, spec.alias) not in (None, active)
            change = diff(spec, observed, elsewhere)
            drift = change.drift
            failed_here = (live.get("migration") or {}).get("phase") == "Failed" and \
                (live.get("migration") or {}).get("generation") == generation
            if change.offline and spec.migration == "blueGreen" and observed is not None and not failed_here:
                refused = migration.refusals(spec, observed)
                if refused:
                    errors.append("migration refused: " + "; ".join(refused))
                else:
                    rows = milvus.progress(client, active)["rows"]
                    live["migration"] = {**migration.start(active, spec, now, rows), "generation": generation}
                    _migrate(client, spec, body, live, now)
                    active = str(live.get("activeCollection") or spec.name)
                    drift = []
            for action in change.actions:
                try:
                    milvus.execute(client, spec, action, active)
                    message = f"{active}: {milvus.describe(action)}"
                    kopf.event(body, type="Normal", reason="Reconciled", message=message)
                except Exception as exc:
                    errors.append(f"{milvus.describe(action)}: {exc}")
                    break
        _drop_expired(client, spec, body, live, now)
        observed = milvus.observe(client, active)
        progress = milvus.progress(client, active) if observed else None
    except Exception as exc:
        return collection_status(generation, status, now, [], [f"{target.uri}: {exc}"], None, None, live)
    finally:
        client.close()
    if active != spec.name:
        live["activeCollection"] = active
    return collection_status(
        generation, status, now, drift, errors, observed.loaded if observed else None, progress, live
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


def owned_collections(spec: CollectionSpec, status: Any) -> list[str]:
    """Every collection this resource made: the live one, a migration's target, the retained."""
    live = _live_state(status)
    names = [str(live.get("activeCollection") or spec.name)]
    target = (live.get("migration") or {}).get("target")
    names += [str(target)] if target else []
    names += [str(r["name"]) for r in live.get("retained") or []]
    return list(dict.fromkeys(names))


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
            for name in owned_collections(parsed, body.get("status")):
                if not client.has_collection(name):
                    continue
                for alias in client.list_aliases(name).get("aliases") or ():
                    client.drop_alias(alias)  # Milvus refuses to drop a collection an alias names
                client.drop_collection(name)
        finally:
            client.close()
    except TargetMissing as exc:
        logger.info(f"{parsed.name}: nothing to drop: {exc}")
    except Exception as exc:
        if retry < 5:
            raise kopf.TemporaryError(f"cannot drop {parsed.name} yet: {exc}", delay=10) from exc
        logger.warning(f"{parsed.name}: giving up dropping after {retry} tries: {exc}")
