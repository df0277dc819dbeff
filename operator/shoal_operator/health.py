"""A MilvusCluster's status from what is live: phase, conditions, per-component rows.

Conditions turn True only when `observedGeneration` is current and every pod of every
component runs the target image; each carries a reason a human can act on. A condition
keeps its lastTransitionTime while its status is unchanged. Pure: neighbours `upgrade`
(the plan) and `gpu` (the verdict) are computed first and passed in, with the clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shoal_operator.upgrade import Plan, Rollout


@dataclass(frozen=True)
class Observed:
    """Everything health needs about one reconcile pass."""

    generation: int
    target_image: str
    components: Mapping[str, Rollout | None]
    ready: Mapping[str, int]
    autoscaled: frozenset[str]
    dependencies_ready: bool
    dependencies_message: str
    plan: Plan
    gpu_unschedulable: str | None
    gpu_fallback: bool
    endpoint: str
    scale_selector: str
    proxy_replicas: int
    version: str | None = None
    """The image every pod runs (upgrade.Decision.version); None keeps the last reported."""
    held: str = ""
    """Why the spec's image is not applied (a rolled-back upgrade)."""
    upgrade: dict[str, Any] | None = None
    """The upgrade in flight (upgrade.Record.to_status())."""


def condition(
    previous: list[Mapping[str, Any]],
    kind: str,
    ok: bool,
    reason: str,
    message: str,
    generation: int,
    now: str,
) -> dict[str, Any]:
    status = "True" if ok else "False"
    since = now
    for old in previous:
        if old.get("type") == kind and old.get("status") == status and old.get("lastTransitionTime"):
            since = old["lastTransitionTime"]
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since,
        "observedGeneration": generation,
    }


def component_rows(obs: Observed) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for name, rollout in sorted(obs.components.items()):
        rows[name] = {
            "desired": rollout.replicas if rollout else 0,
            "ready": obs.ready.get(name, 0),
            "image": rollout.template_image if rollout else "",
            "rolledOut": bool(rollout and rollout.done(obs.target_image)),
            "autoscaled": name in obs.autoscaled,
        }
    return rows


def status(obs: Observed, previous: Mapping[str, Any] | None, now: datetime) -> dict[str, Any]:
    prev_conditions = list((previous or {}).get("conditions") or [])
    stamp = now.isoformat()
    gen = obs.generation
    rows = component_rows(obs)
    rolled_out = all(r["rolledOut"] for r in rows.values()) and bool(rows)
    ready = rolled_out and obs.dependencies_ready
    not_rolled = [n for n, r in rows.items() if not r["rolledOut"]]
    plan = obs.plan
    gpu_blocked = obs.gpu_unschedulable is not None and not obs.gpu_fallback
    degraded = plan.stalled or gpu_blocked or bool(obs.held)
    if ready:
        ready_reason, ready_msg = "AllComponentsReady", f"every pod runs {obs.target_image}"
    elif not obs.dependencies_ready:
        ready_reason, ready_msg = "DependenciesNotReady", obs.dependencies_message
    else:
        ready_reason, ready_msg = "ComponentsNotReady", "waiting for " + ", ".join(not_rolled)
    if plan.stalled:
        degraded_reason, degraded_msg = "UpgradeStalled", plan.message
    elif gpu_blocked:
        degraded_reason, degraded_msg = "GPUUnschedulable", obs.gpu_unschedulable or ""
    elif obs.held:
        degraded_reason, degraded_msg = "UpgradeRolledBack", obs.held
    else:
        degraded_reason, degraded_msg = "AsExpected", ""
    if plan.stalled:
        upgrading_reason = "UpgradeStalled"
    elif plan.upgrading:
        upgrading_reason = "UpgradeInProgress"
    else:
        upgrading_reason = "UpToDate"
    if obs.gpu_unschedulable is not None:
        gpu_reason = "FellBackToCPU" if obs.gpu_fallback else "InsufficientGPU"
        gpu_msg = obs.gpu_unschedulable
    elif obs.gpu_fallback:
        gpu_reason, gpu_msg = "FellBackToCPU", "index pool runs on CPU for this generation"
    else:
        gpu_reason, gpu_msg = "Schedulable", ""
    conditions = [
        condition(prev_conditions, "Ready", ready, ready_reason, ready_msg, gen, stamp),
        condition(prev_conditions, "Progressing", not rolled_out, "Rollout" if not rolled_out else "Complete",
                  plan.message, gen, stamp),
        condition(prev_conditions, "Upgrading", plan.upgrading, upgrading_reason, plan.message, gen, stamp),
        condition(prev_conditions, "DependenciesReady", obs.dependencies_ready,
                  "Ready" if obs.dependencies_ready else "NotReady", obs.dependencies_message, gen, stamp),
        condition(prev_conditions, "Degraded", degraded, degraded_reason, degraded_msg, gen, stamp),
        condition(prev_conditions, "GPUUnschedulable",
                  obs.gpu_unschedulable is not None or obs.gpu_fallback, gpu_reason, gpu_msg, gen, stamp),
    ]
    total_ready = sum(r["ready"] for r in rows.values())
    total_desired = sum(r["desired"] for r in rows.values())
    if plan.upgrading and not plan.stalled:
        phase = "Upgrading"
    elif ready:
        phase = "Healthy"
    elif degraded:
        phase = "Degraded"
    elif total_ready == 0:
        phase = "Pending"
    else:
        phase = "Deploying"
    out: dict[str, Any] = {
        "phase": phase,
        "observedGeneration": gen,
        "version": obs.version if obs.version is not None else (previous or {}).get("version"),
        "ready": f"{total_ready}/{total_desired}",
        "endpoint": obs.endpoint,
        "components": rows,
        "conditions": conditions,
        "upgrade": obs.upgrade if obs.upgrade is not None else (
            {"component": plan.step.component, "startedAt": plan.step.started_at}
            if plan.step is not None and plan.upgrading
            else None
        ),
        "scale": {"replicas": obs.proxy_replicas, "selector": obs.scale_selector},
    }
    return out
