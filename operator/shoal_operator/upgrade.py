"""Upgrades: which image each component (and each canary) runs now, and what happened.

`plan` is one ordered roll; `decide` is the whole upgrade around it (strategy, canary,
rollback, history), described below it.


Order: coord -> streaming -> query -> index -> proxy. A component gets the target image
only once every component before it has rolled out completely (Deployment observed,
all replicas updated and available, every pod running the target image). Progress is
recomputed from what is live, so the plan resumes after an operator restart; the time
the current step started is kept in status so a stuck step becomes `UpgradeStalled`
after `spec.upgrade.stepTimeoutSeconds` instead of wedging anything. Pure: observed
state and the clock come in as arguments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

UPGRADE_ORDER: tuple[str, ...] = ("coord", "streaming", "query", "index", "proxy")


@dataclass(frozen=True)
class Rollout:
    """What is live for one component's Deployment."""

    template_image: str
    generation: int
    observed_generation: int
    replicas: int
    status_replicas: int
    updated_replicas: int
    available_replicas: int
    pod_images: tuple[str, ...]

    def done(self, image: str) -> bool:
        return (
            self.template_image == image
            and self.observed_generation >= self.generation
            and self.updated_replicas == self.replicas
            and self.available_replicas == self.replicas
            and self.status_replicas == self.replicas
            and len(self.pod_images) == self.replicas
            and all(i == image for i in self.pod_images)
        )

    def on_image(self, image: str) -> bool:
        """Template and every pod already run `image` (rolled out or not)."""
        return self.template_image == image and all(i == image for i in self.pod_images)

    def describe(self, image: str) -> str:
        on_target = sum(1 for i in self.pod_images if i == image)
        return (
            f"{self.updated_replicas}/{self.replicas} updated, {self.available_replicas} available, "
            f"{on_target}/{len(self.pod_images)} pods on {image}"
        )


@dataclass(frozen=True)
class Step:
    component: str
    started_at: str
    """ISO-8601, kept in status so restarts do not reset the stall timer."""


@dataclass(frozen=True)
class Plan:
    images: dict[str, str]
    """component -> image to apply now."""
    step: Step | None
    """The component being rolled now; None when nothing is in flight."""
    upgrading: bool
    """Some deployed component's template or pods still run another image."""
    stalled: bool
    message: str


def ordered(components: Sequence[str]) -> list[str]:
    """Components in upgrade order; unknown names (standalone) keep their given order."""
    known = [c for c in UPGRADE_ORDER if c in components]
    return known + [c for c in components if c not in UPGRADE_ORDER]


def plan(
    components: Sequence[str],
    target: str,
    live: Mapping[str, Rollout | None],
    previous: Step | None,
    now: datetime,
    step_timeout_seconds: int,
    reverse: bool = False,
) -> Plan:
    images: dict[str, str] = {}
    order = ordered(components)
    if reverse:  # a rollback: proxy first, coord last
        order.reverse()
    upgrading = any(r is not None and not r.on_image(target) for r in live.values())
    for i, name in enumerate(order):
        rollout = live.get(name)
        if rollout is None or rollout.done(target):
            # Not deployed yet (a fresh deploy has nothing to wait for) or already done.
            images[name] = target
            continue
        images[name] = target
        for later in order[i + 1 :]:
            later_rollout = live.get(later)
            images[later] = target if later_rollout is None else later_rollout.template_image
        started = previous.started_at if previous and previous.component == name else now.isoformat()
        elapsed = (now - datetime.fromisoformat(started)).total_seconds()
        stalled = upgrading and elapsed > step_timeout_seconds
        detail = rollout.describe(target)
        if stalled:
            message = f"{name} did not roll out to {target} within {step_timeout_seconds}s: {detail}"
        else:
            message = f"rolling {name} to {target}: {detail}"
        return Plan(images, Step(name, started), upgrading, stalled, message)
    return Plan(images, None, False, False, f"all components run {target}")


# ---- the whole upgrade: strategy, canary, rollback, history -----------------------------
#
# An upgrade starts when the target image differs from what the deployed components run;
# it is kept in `status.upgrade` (a `Record`) until it ends, then appended to
# `status.upgradeHistory`. Phases:
#   Canary       (strategy canary) a one-replica `<name>-<role>-canary` Deployment per
#                role runs the target beside the old pods; once every canary is Ready it
#                must stay Ready, with an error ratio (failed / total requests on its own
#                /metrics) at most `maxErrorRatio`, for `pauseSeconds`; then Rolling.
#   Rolling      `plan` to the target, one role at a time; all done -> Succeeded.
#   RollingBack  (a failed canary or a stalled step, with `rollbackOnFailure`) canaries
#                removed, `plan` back to the previous image in reverse order -> RolledBack.
# Without `rollbackOnFailure` a failure is recorded once as Stalled and the operator keeps
# what it has (today's behaviour: the stalled step stays applied, later roles untouched).
# A rolled-back target is not retried: the cluster stays on the previous image until the
# spec names another one. `version` is reported only when every pod runs one image.

HISTORY_LIMIT = 10
CANARY_STEP = "canary"


@dataclass(frozen=True)
class Policy:
    strategy: str = "rolling"
    pause_seconds: int = 60
    max_error_ratio: float = 0.01
    rollback_on_failure: bool = False
    step_timeout_seconds: int = 600


@dataclass(frozen=True)
class Requests:
    """A canary's request counters (Milvus's `milvus_proxy_req_count`, summed)."""

    total: float
    failed: float


@dataclass(frozen=True)
class Record:
    """The upgrade in flight, as kept in `status.upgrade`."""

    from_image: str
    to_image: str
    strategy: str
    phase: str
    started: str
    step: Step | None = None
    canary_ready_at: str | None = None
    baseline: Requests | None = None
    reason: str = ""
    stall_reported: bool = False

    def to_status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "from": self.from_image, "to": self.to_image, "strategy": self.strategy,
            "phase": self.phase, "started": self.started, "reason": self.reason,
            "stallReported": self.stall_reported,
            "component": self.step.component if self.step else None,
            "startedAt": self.step.started_at if self.step else None,
            "canaryReadyAt": self.canary_ready_at,
            "baseline": {"total": self.baseline.total, "failed": self.baseline.failed} if self.baseline else None,
        }
        return out

    @classmethod
    def from_status(cls, raw: Mapping[str, Any] | None) -> Record | None:
        if not raw or not raw.get("to") or not raw.get("phase"):
            return None  # nothing in flight, or a step written by an older operator
        base = raw.get("baseline") or None
        return cls(
            from_image=str(raw.get("from") or ""), to_image=str(raw["to"]), strategy=str(raw.get("strategy")),
            phase=str(raw["phase"]), started=str(raw.get("started") or ""),
            step=Step(raw["component"], raw["startedAt"]) if raw.get("component") and raw.get("startedAt") else None,
            canary_ready_at=raw.get("canaryReadyAt") or None,
            baseline=Requests(float(base["total"]), float(base["failed"])) if base else None,
            reason=str(raw.get("reason") or ""), stall_reported=bool(raw.get("stallReported")),
        )


@dataclass(frozen=True)
class Decision:
    images: dict[str, str]
    """component -> image of its main Deployment."""
    canaries: dict[str, str]
    """component -> image of its canary Deployment; absent: no canary (pruned)."""
    plan: Plan
    """What `health` reports: the step, whether upgrading or stalled, a message."""
    steering: str
    """The image every pod should end on: the target, or the previous one when rolling back."""
    record: Record | None
    finished: list[dict[str, Any]] = field(default_factory=list)
    """History entries that ended in this pass."""
    version: str | None = None
    """The image every pod runs now; None while they differ (keep reporting the last)."""
    held: str = ""
    """Why the target is not being applied (a rolled-back target), for Degraded."""


def _elapsed(since: str, now: datetime) -> float:
    return (now - datetime.fromisoformat(since)).total_seconds()


def _entry(record: Record, outcome: str, reason: str, now: datetime) -> dict[str, Any]:
    return {
        "from": record.from_image, "to": record.to_image, "strategy": record.strategy,
        "outcome": outcome, "reason": reason, "started": record.started, "finished": now.isoformat(),
    }


def _starting_image(target: str, live: Mapping[str, Rollout | None], version: str | None) -> str | None:
    """The image an upgrade to `target` starts from, or None when nothing runs another.

    The last whole version counts first: between a Recreate's old pod going and its new
    pod coming no pod runs anything, and that gap must not look like the end."""
    deployed = [r for r in live.values() if r is not None]
    if deployed and version and version != target:
        return version
    off = [r for r in deployed if not r.on_image(target)]
    if not off:
        return None
    return next((r.template_image for r in off if r.template_image != target), off[0].template_image)


def error_ratio(baseline: Requests | None, current: Requests | None) -> float | None:
    """Failed / total requests since the baseline; None without traffic or metrics."""
    if baseline is None or current is None:
        return None
    total = current.total - baseline.total
    if total <= 0:
        return None
    return max(0.0, current.failed - baseline.failed) / total


def decide(
    components: Sequence[str],
    target: str,
    live: Mapping[str, Rollout | None],
    canaries: Mapping[str, Rollout | None],
    record: Record | None,
    last: Mapping[str, Any] | None,
    version: str | None,
    policy: Policy,
    canary_requests: Requests | None,
    now: datetime,
) -> Decision:
    """One pass of the upgrade. `last` is the newest history entry; `version` the one
    reported so far; `canary_requests` the canaries' summed counters (None: unreadable)."""
    stamp = now.isoformat()
    order = ordered(components)
    timeout = policy.step_timeout_seconds

    def whole(image: str) -> str | None:
        """`image` when every component's pods run it, else None."""
        return image if live and all(r is not None and r.done(image) for r in live.values()) else None

    if record is not None and record.to_image != target:
        # The spec moved on mid-upgrade: start again from the last image that was whole.
        record = None if record.from_image == target else replace(
            record, to_image=target, phase="Canary" if policy.strategy == "canary" else "Rolling",
            started=stamp, step=None, canary_ready_at=None, baseline=None, reason="", stall_reported=False,
        )
    if record is None:
        if last and last.get("to") == target and last.get("outcome") == "RolledBack" and last.get("from"):
            previous = str(last["from"])
            p = plan(order, previous, live, None, now, timeout)
            held = _held(target, str(last.get("reason")))
            return Decision(p.images, {}, replace(p, upgrading=False, stalled=False), previous, None,
                            version=whole(previous), held=held)
        start = _starting_image(target, live, version)
        if start is None:  # steady, or a fresh deploy: nothing to protect
            p = plan(order, target, live, None, now, timeout)
            return Decision(p.images, {}, p, target, None, version=whole(target))
        record = Record(start, target, policy.strategy, "Canary" if policy.strategy == "canary" else "Rolling",
                        stamp)
    finished: list[dict[str, Any]] = []

    if record.phase == "Canary":
        main = {n: record.from_image for n in order}
        wanted = {n: target for n in order}
        step = record.step or Step(CANARY_STEP, stamp)
        not_ready = [n for n in order if not ((r := canaries.get(n)) is not None and r.done(target))]
        failure = ""
        if not_ready:
            if record.canary_ready_at is not None:
                failure = f"canary {', '.join(not_ready)} lost readiness on {target}"
            elif _elapsed(step.started_at, now) > timeout:
                failure = f"canary {', '.join(not_ready)} not Ready on {target} within {timeout}s"
            message = f"canary: waiting for {', '.join(not_ready)} on {target}"
        else:
            ready_at = record.canary_ready_at or stamp
            baseline = record.baseline or canary_requests
            ratio = error_ratio(baseline, canary_requests)
            record = replace(record, canary_ready_at=ready_at, baseline=baseline)
            held_for = _elapsed(ready_at, now)
            if ratio is not None and ratio > policy.max_error_ratio:
                failure = f"canary error ratio {ratio:.3f} above {policy.max_error_ratio} on {target}"
            elif held_for >= policy.pause_seconds:
                record = replace(record, phase="Rolling", step=None)
            message = f"canary healthy on {target} for {held_for:.0f}s of {policy.pause_seconds}s"
        if failure:
            record, finished = _fail(record, failure, policy, now)
        if record.phase == "Canary":
            record = replace(record, step=step)
            p = Plan(main, step, True, bool(failure), failure or message)
            return Decision(main, wanted, p, target, record, finished)

    if record.phase == "Rolling":
        p = plan(order, target, live, record.step, now, timeout)
        if p.step is None:
            finished.append(_entry(record, "Succeeded", "", now))
            return Decision(p.images, {}, p, target, None, finished, version=whole(target))
        record = replace(record, step=p.step)
        p = replace(p, upgrading=True)  # also while no pod exists (Recreate)
        if p.stalled:
            record, more = _fail(record, p.message, policy, now)
            finished += more
        if record.phase == "Rolling":
            return Decision(p.images, {}, p, target, record, finished)

    # RollingBack
    p = plan(order, record.from_image, live, record.step, now, timeout, reverse=True)
    if p.step is None:
        finished.append(_entry(record, "RolledBack", record.reason, now))
        return Decision(p.images, {}, replace(p, upgrading=False), record.from_image, None, finished,
                        version=whole(record.from_image), held=_held(record.to_image, record.reason))
    record = replace(record, step=p.step)
    message = f"rolling back to {record.from_image} ({record.reason}): {p.message}"
    return Decision(p.images, {}, replace(p, message=message, upgrading=True), record.from_image, record, finished)


def _held(target: str, reason: str) -> str:
    return f"upgrade to {target} was rolled back ({reason}); set another version to retry"


def _fail(record: Record, reason: str, policy: Policy, now: datetime) -> tuple[Record, list[dict[str, Any]]]:
    """A failed canary or stalled step: roll back, or record Stalled once and hold."""
    if policy.rollback_on_failure:
        return replace(record, phase="RollingBack", step=None, reason=reason), []
    if record.stall_reported:
        return record, []
    return replace(record, reason=reason, stall_reported=True), [_entry(record, "Stalled", reason, now)]
