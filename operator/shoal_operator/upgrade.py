"""The rolling-upgrade plan: which image each component runs now, in one ordered list.

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
from dataclasses import dataclass
from datetime import datetime

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
) -> Plan:
    images: dict[str, str] = {}
    order = ordered(components)
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
