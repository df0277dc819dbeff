"""MilvusCluster status: phase, conditions and their reasons, from observed state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shoal_operator import gpu
from shoal_operator.health import Observed, status
from shoal_operator.upgrade import Rollout, plan

IMG = "shoal/shoal-node:0.2.0"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def rollout(image: str = IMG, ready: bool = True) -> Rollout:
    n = 2 if ready else 1
    return Rollout(image, 2, 2, 2, 2, n, n, (image,) * 2)


def observed(components: dict, deps: bool = True, complaint: str | None = None,
             fallback: bool = False) -> Observed:
    return Observed(
        generation=7,
        target_image=IMG,
        components=components,
        ready={k: (v.available_replicas if v else 0) for k, v in components.items()},
        autoscaled=frozenset(),
        dependencies_ready=deps,
        dependencies_message="ok" if deps else "waiting for demo-etcd",
        plan=plan(tuple(components), IMG, components, None, NOW, 600),
        gpu_unschedulable=complaint,
        gpu_fallback=fallback,
        endpoint="demo-milvus.ns.svc:19530",
        scale_selector="x=y",
        proxy_replicas=2,
    )


def cond(st: dict, kind: str) -> dict:
    return next(c for c in st["conditions"] if c["type"] == kind)


def test_healthy_when_every_pod_runs_the_target() -> None:
    st = status(observed({"coord": rollout(), "proxy": rollout()}), None, NOW)
    assert st["phase"] == "Healthy"
    assert st["ready"] == "4/4"
    assert cond(st, "Ready")["status"] == "True"
    assert cond(st, "Ready")["observedGeneration"] == 7
    assert st["observedGeneration"] == 7
    assert st["components"]["proxy"] == {"desired": 2, "ready": 2, "image": IMG, "rolledOut": True,
                                         "autoscaled": False}


def test_not_ready_while_a_pod_runs_an_old_image() -> None:
    old_pod = Rollout(IMG, 2, 2, 2, 2, 2, 2, (IMG, "shoal/shoal-node:0.1.0"))
    st = status(observed({"coord": rollout(), "proxy": old_pod}), None, NOW)
    assert cond(st, "Ready")["status"] == "False"
    assert cond(st, "Upgrading")["status"] == "True"
    assert st["phase"] == "Upgrading"


def test_dependencies_gate_readiness() -> None:
    st = status(observed({"standalone": rollout()}, deps=False), None, NOW)
    assert cond(st, "Ready")["reason"] == "DependenciesNotReady"
    assert cond(st, "DependenciesReady")["message"] == "waiting for demo-etcd"


def test_gpu_unschedulable_is_a_condition_and_degrades() -> None:
    st = status(observed({"index": rollout(ready=False)}, complaint="p: 0/4 nodes: Insufficient nvidia.com/gpu"),
                None, NOW)
    assert cond(st, "GPUUnschedulable") | {"lastTransitionTime": ""} == {
        "type": "GPUUnschedulable", "status": "True", "reason": "InsufficientGPU",
        "message": "p: 0/4 nodes: Insufficient nvidia.com/gpu", "lastTransitionTime": "",
        "observedGeneration": 7,
    }
    assert st["phase"] == "Degraded"
    with_fallback = status(observed({"index": rollout()}, fallback=True), None, NOW)
    assert cond(with_fallback, "GPUUnschedulable")["reason"] == "FellBackToCPU"
    assert with_fallback["phase"] == "Healthy"


def test_last_transition_time_is_kept_while_status_is_unchanged() -> None:
    first = status(observed({"coord": rollout()}), None, NOW)
    later = status(observed({"coord": rollout()}), first, NOW + timedelta(minutes=5))
    assert cond(later, "Ready")["lastTransitionTime"] == NOW.isoformat()
    flipped = status(observed({"coord": rollout(ready=False)}), first, NOW + timedelta(minutes=6))
    assert cond(flipped, "Ready")["lastTransitionTime"] == (NOW + timedelta(minutes=6)).isoformat()


def unschedulable_pod(message: str) -> dict:
    return {"metadata": {"name": "demo-index-abc"},
            "status": {"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                       "message": message}]}}


def test_gpu_verdict_reads_the_scheduler_message() -> None:
    msg = "0/4 nodes are available: 2 Insufficient nvidia.com/gpu."
    assert gpu.unschedulable([{"status": {"phase": "Running"}}, unschedulable_pod(msg)]) == f"demo-index-abc: {msg}"
    assert gpu.unschedulable([{"status": {"conditions": [{"type": "PodScheduled", "status": "True"}]}}]) is None


def test_gpu_fallback_lasts_for_one_generation() -> None:
    st = {"gpu": {"fallbackToCPU": True, "generation": 3}}
    assert gpu.fallback_active(st, 3)
    assert not gpu.fallback_active(st, 4)
    assert not gpu.fallback_active(None, 3)
