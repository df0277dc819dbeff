"""GPU scheduling verdicts for the index pool, from observed pods. Pure.

The handler asks `unschedulable` about the index pods; when it answers and the spec
allows it, the operator records a CPU fallback for the current generation in status, and
`builders` then drop the GPU request. A spec change (new generation) tries GPUs again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def unschedulable(pods: Iterable[Mapping[str, Any]]) -> str | None:
    """The scheduler's complaint about the first unschedulable pod, if any."""
    for pod in pods:
        if pod.get("metadata", {}).get("deletionTimestamp"):
            continue
        for cond in pod.get("status", {}).get("conditions") or []:
            if (
                cond.get("type") == "PodScheduled"
                and cond.get("status") == "False"
                and cond.get("reason") == "Unschedulable"
            ):
                name = pod.get("metadata", {}).get("name", "?")
                return f"{name}: {cond.get('message') or 'unschedulable'}"
    return None


def fallback_active(status: Mapping[str, Any] | None, generation: int) -> bool:
    gpu = (status or {}).get("gpu") or {}
    return bool(gpu.get("fallbackToCPU")) and gpu.get("generation") == generation
