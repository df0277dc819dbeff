"""MilvusCluster handlers: read the resource, build, apply, prune, write status.

Every event (create, update, resume) and a resync timer run the same idempotent
`reconcile`; nothing waits inside a handler: rollouts and upgrades advance one step per
pass. The deletion handler only enforces `deletionPolicy` on PVCs; owner references let
Kubernetes collect the rest.
"""

from __future__ import annotations

import os
import secrets
import ssl
import threading
import urllib.request
from datetime import UTC, datetime
from typing import Any

import kopf
from pydantic import ValidationError

from shoal_operator import constants as c
from shoal_operator import gpu, health, metrics, observe, upgrade
from shoal_operator.builders import cluster as cluster_builder
from shoal_operator.builders import dependencies, monitoring, networking, security, workloads
from shoal_operator.builders.meta import ClusterRef, child_name, managed_selector, selector_labels
from shoal_operator.kube import Kube, owns_field
from shoal_operator.specs.cluster import MilvusClusterSpec

RESYNC_SECONDS = float(os.environ.get("SHOAL_OPERATOR_RESYNC_SECONDS", "15"))
_locks: dict[tuple[str, str], threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock(ref: ClusterRef) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault((ref.namespace, ref.name), threading.Lock())


def parse_spec(body: Any) -> MilvusClusterSpec:
    try:
        return MilvusClusterSpec.model_validate(dict(body.get("spec") or {}))
    except ValidationError as exc:
        raise kopf.PermanentError(f"invalid spec: {exc}") from exc


def _handover_replicas(kube: Kube, live: dict[str, Any]) -> None:
    """Give `spec.replicas` to a dedicated manager before the main apply stops sending it,
    so the API server keeps the HPA's value instead of resetting it to the default."""
    if not owns_field(live, c.FIELD_MANAGER, "spec", "replicas"):
        return
    meta = live["metadata"]
    kube.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
            "spec": {"replicas": live["spec"].get("replicas", 1)},
        },
        manager=c.HPA_HANDOVER_MANAGER,
    )


def _gpu_state(
    spec: MilvusClusterSpec, generation: int, status: Any, index_pods: list[Any]
) -> tuple[str | None, bool]:
    """(scheduler complaint about GPU index pods, whether to run the index pool on CPU)."""
    if spec.mode != "cluster" or spec.components.index.gpu is None:
        return None, False
    fallback = gpu.fallback_active(status, generation)
    complaint = gpu.unschedulable(index_pods)
    if complaint is not None and spec.components.index.gpu.fallback_to_cpu:
        fallback = True
    return complaint, fallback


def _dependencies_ready(kube: Kube, ref: ClusterRef, desired: list[dict[str, Any]]) -> tuple[bool, str]:
    waiting = []
    for obj in desired:
        if obj["kind"] != "StatefulSet":
            continue
        name = obj["metadata"]["name"]
        if not observe.statefulset_ready(kube.get("apps/v1", "StatefulSet", ref.namespace, name)):
            waiting.append(name)
    if waiting:
        return False, "waiting for " + ", ".join(waiting)
    return True, "dependencies are ready"


def reconcile(kube: Kube, body: Any, status: Any, now: datetime) -> dict[str, Any]:
    """One pass: observe -> plan the upgrade step -> build -> apply -> report status."""
    ref = ClusterRef.from_body(body)
    spec = parse_spec(body)
    generation = int(body["metadata"].get("generation", 0))
    pods = observe.pods_by_component(kube.list("v1", "Pod", ref.namespace, managed_selector(ref)))
    live = {
        n: kube.get("apps/v1", "Deployment", ref.namespace, child_name(ref, n)) for n in spec.component_names
    }
    record = upgrade.Record.from_status((status or {}).get("upgrade"))
    canary_names = {n: workloads.canary_component(n) for n in spec.component_names}
    canary_live = {
        n: kube.get("apps/v1", "Deployment", ref.namespace, child_name(ref, cn))
        if record is not None or spec.upgrade.strategy == "canary" else None
        for n, cn in canary_names.items()
    }
    canary_pods = [p for cn in canary_names.values() for p in pods.get(cn, [])]
    history = list((status or {}).get("upgradeHistory") or [])
    decision = upgrade.decide(
        spec.component_names,
        spec.target_image,
        {n: observe.rollout(d, pods.get(n, [])) if d else None for n, d in live.items()},
        {n: observe.rollout(d, pods.get(canary_names[n], [])) if d else None for n, d in canary_live.items()},
        record,
        history[-1] if history else None,
        (status or {}).get("version"),
        _policy(spec),
        _canary_requests(canary_pods, security.probe_scheme(spec)) if canary_pods else None,
        now,
    )
    plan = decision.plan
    complaint, fallback = _gpu_state(spec, generation, status, pods.get("index", []))
    desired = cluster_builder.desired_objects(
        ref, spec, decision.images, gpu_active=not fallback,
        pod_monitor=kube.serves(monitoring.API_VERSION, monitoring.KIND), canaries=decision.canaries,
    )
    applied = _apply(kube, ref, spec, desired, live)
    _prune(kube, ref, desired.objects)

    deps_ok, deps_msg = _dependencies_ready(kube, ref, desired.objects)
    front = networking.front_component(spec)
    deployed = {n: applied[child_name(ref, n)] for n in spec.component_names}
    obs = health.Observed(
        generation=generation,
        target_image=decision.steering,
        components={n: observe.rollout(d, pods.get(n, [])) for n, d in deployed.items()},
        ready={n: observe.ready_replicas(d) for n, d in deployed.items()},
        autoscaled=frozenset(n for n in spec.component_names if child_name(ref, n) in desired.autoscaled),
        dependencies_ready=deps_ok,
        dependencies_message=deps_msg,
        plan=plan,
        gpu_unschedulable=complaint,
        gpu_fallback=fallback,
        endpoint=networking.endpoint(ref),
        scale_selector=",".join(f"{k}={v}" for k, v in sorted(selector_labels(ref, front).items())),
        proxy_replicas=observe.ready_replicas(deployed[front]),
        version=decision.version,
        held=decision.held,
        upgrade=decision.record.to_status() if decision.record is not None else None,
    )
    out = health.status(obs, status, now)
    if decision.finished:
        out["upgradeHistory"] = (history + decision.finished)[-upgrade.HISTORY_LIMIT:]
    out["gpu"] = {"fallbackToCPU": True, "generation": generation} if fallback else None
    # Status is merge-patched: components that no longer exist (mode switch) need a null.
    for gone in set((status or {}).get("components") or {}) - set(out["components"]):
        out["components"][gone] = None
    return out


def _policy(spec: MilvusClusterSpec) -> upgrade.Policy:
    u = spec.upgrade
    return upgrade.Policy(u.strategy, u.canary.pause_seconds, u.canary.max_error_ratio, u.rollback_on_failure,
                          u.step_timeout_seconds)


def _canary_requests(pods: list[Any], scheme: str) -> upgrade.Requests | None:
    """The Ready canaries' request counters, summed from each pod's own /metrics; None when
    none answers (the verdict then rests on readiness alone)."""
    total = failed = 0.0
    answered = False
    context = ssl._create_unverified_context() if scheme == "HTTPS" else None  # pod IPs are not in the cert
    for pod in pods:
        ip = (pod.get("status") or {}).get("podIP")
        if not ip or not observe.pod_ready(pod):
            continue
        try:
            with urllib.request.urlopen(f"{scheme.lower()}://{ip}:{c.HTTP_PORT}/metrics", timeout=3,
                                        context=context) as resp:
                counts = observe.request_counts(resp.read().decode(errors="replace"))
        except (OSError, ValueError):
            continue
        total, failed, answered = total + counts.total, failed + counts.failed, True
    return upgrade.Requests(total, failed) if answered else None


def _apply(
    kube: Kube,
    ref: ClusterRef,
    spec: MilvusClusterSpec,
    desired: cluster_builder.Desired,
    live: dict[str, dict[str, Any] | None],
) -> dict[str, dict[str, Any]]:
    """Server-side apply everything; returns the Deployments as the API server now has
    them (new generation included), so status never judges a template it did not see."""
    if dependencies.needs_minio_secret(spec):
        kube.create(dependencies.minio_secret(ref, secrets.token_hex(10), secrets.token_urlsafe(30)))
    if security.needs_root_secret(spec):  # created once; a later pass never replaces it
        kube.create(security.root_secret(ref, secrets.token_urlsafe(24)))
    live_by_name = {d["metadata"]["name"]: d for d in live.values() if d}
    applied: dict[str, dict[str, Any]] = {}
    for obj in desired.objects:
        name = obj["metadata"]["name"]
        if obj["kind"] == "Deployment" and name in desired.autoscaled and name in live_by_name:
            _handover_replicas(kube, live_by_name[name])
        result = kube.apply(obj)
        if obj["kind"] == "Deployment":
            applied[name] = result
    return applied


def _prune(kube: Kube, ref: ClusterRef, desired: list[dict[str, Any]]) -> None:
    live: list[dict[str, Any]] = []
    for api_version, kind in cluster_builder.OWNED_KINDS:
        live += kube.list(api_version, kind, ref.namespace, managed_selector(ref))
    for obj in cluster_builder.stale_objects(desired, live):
        kube.delete(obj["apiVersion"], obj["kind"], ref.namespace, obj["metadata"]["name"])


def _run(memo: Any, body: Any, status: Any, patch: Any, logger: Any) -> None:
    ref = ClusterRef.from_body(body)
    with _lock(ref), metrics.reconciling(c.CLUSTER_KIND):
        try:
            new_status = reconcile(memo.kube, body, status, datetime.now(UTC))
        except kopf.PermanentError as exc:
            patch.status["phase"] = "Degraded"
            patch.status["conditions"] = [
                health.condition([], "Ready", False, "InvalidSpec", str(exc), 0, datetime.now(UTC).isoformat())
            ]
            raise
    patch.status.update(new_status)
    _announce(body, status, new_status)
    logger.debug(f"{ref.name}: phase {new_status['phase']}, ready {new_status['ready']}")


def _announce(body: Any, old: Any, new: dict[str, Any]) -> None:
    """Kubernetes Events for what changed: upgrade steps, phase transitions."""
    old = old or {}
    record = new.get("upgrade") or {}
    step = record.get("component")
    if step and (step, record.get("phase")) != ((old.get("upgrade") or {}).get("component"),
                                                (old.get("upgrade") or {}).get("phase")):
        if record.get("phase") == "RollingBack":
            message = f"rolling back {step} to {record.get('from')}: {record.get('reason')}"
        elif step == upgrade.CANARY_STEP:
            message = f"canary pods on {record.get('to')}"
        else:
            message = f"rolling {step} to {record.get('to') or new['version']}"
        kopf.event(body, type="Normal", reason="UpgradeStep", message=message)
    for entry in new.get("upgradeHistory") or []:
        if entry not in (old.get("upgradeHistory") or []):
            kind = "Normal" if entry["outcome"] == "Succeeded" else "Warning"
            message = f"{entry['from']} -> {entry['to']}: {entry['outcome']} {entry['reason']}".strip()
            kopf.event(body, type=kind, reason=f"Upgrade{entry['outcome']}", message=message)
    if new["phase"] != old.get("phase"):
        reasons = {c["type"]: c for c in new["conditions"]}
        if new["phase"] == "Degraded":
            degraded = reasons["Degraded"]
            kopf.warn(body, reason=degraded["reason"], message=degraded["message"])
        else:
            kopf.event(body, type="Normal", reason=new["phase"], message=reasons["Ready"]["message"])


@kopf.on.resume(c.GROUP, c.VERSION, c.CLUSTER_PLURAL)
@kopf.on.create(c.GROUP, c.VERSION, c.CLUSTER_PLURAL)
@kopf.on.update(c.GROUP, c.VERSION, c.CLUSTER_PLURAL)
def cluster_changed(memo: kopf.Memo, body: kopf.Body, status: kopf.Status, patch: kopf.Patch,
                    logger: kopf.Logger, **_: Any) -> None:
    _run(memo, body, status, patch, logger)


@kopf.timer(c.GROUP, c.VERSION, c.CLUSTER_PLURAL, interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS)
def cluster_resync(memo: kopf.Memo, body: kopf.Body, status: kopf.Status, patch: kopf.Patch,
                   logger: kopf.Logger, **_: Any) -> None:
    _run(memo, body, status, patch, logger)


@kopf.on.delete(c.GROUP, c.VERSION, c.CLUSTER_PLURAL)
def cluster_deleted(memo: kopf.Memo, body: kopf.Body, patch: kopf.Patch, logger: kopf.Logger,
                    **_: Any) -> None:
    ref = ClusterRef.from_body(body)
    patch.status["phase"] = "Deleting"
    policy = (body.get("spec") or {}).get("deletionPolicy", "Retain")
    kube: Kube = memo.kube
    claims = kube.list("v1", "PersistentVolumeClaim", ref.namespace, managed_selector(ref))
    if policy == "Delete":
        for claim in claims:
            kube.delete("v1", "PersistentVolumeClaim", ref.namespace, claim["metadata"]["name"])
        logger.info(f"{ref.name}: deleted {len(claims)} PVCs (deletionPolicy Delete)")
    else:
        logger.info(f"{ref.name}: kept {len(claims)} PVCs (deletionPolicy Retain)")
