"""Reading live Deployments and pods into rollout facts."""

from __future__ import annotations

from shoal_operator.observe import pods_by_component, request_counts, rollout, statefulset_ready
from shoal_operator.upgrade import Requests

NEW, OLD = "shoal/shoal-node:0.2.0", "shoal/shoal-node:0.1.0"


def pod(image: str, terminating: bool = False, phase: str = "Running") -> dict:
    meta: dict = {"name": "p"}
    if terminating:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "spec": {"containers": [{"name": "shoal", "image": image}]},
            "status": {"phase": phase}}


DEPLOYMENT = {
    "metadata": {"generation": 4},
    "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "shoal", "image": NEW}]}}},
    "status": {"observedGeneration": 4, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2},
}


def test_rolled_out_when_counters_and_every_pod_agree() -> None:
    assert rollout(DEPLOYMENT, [pod(NEW), pod(NEW)]).done(NEW)
    assert not rollout(DEPLOYMENT, [pod(NEW), pod(OLD)]).done(NEW)
    assert not rollout(DEPLOYMENT, [pod(NEW)]).done(NEW)


def test_terminating_and_finished_pods_do_not_hold_a_rollout_back() -> None:
    pods = [pod(NEW), pod(NEW), pod(OLD, terminating=True), pod(OLD, phase="Failed")]
    assert rollout(DEPLOYMENT, pods).done(NEW)


def test_stale_observed_generation_is_not_rolled_out() -> None:
    stale = {**DEPLOYMENT, "metadata": {"generation": 5}}
    assert not rollout(stale, [pod(NEW), pod(NEW)]).done(NEW)


def test_statefulset_ready_needs_ready_replicas_for_the_current_generation() -> None:
    sts = {"metadata": {"generation": 2}, "spec": {"replicas": 1},
           "status": {"observedGeneration": 2, "readyReplicas": 1}}
    assert statefulset_ready(sts)
    assert not statefulset_ready({**sts, "status": {"observedGeneration": 1, "readyReplicas": 1}})
    assert not statefulset_ready(None)


def test_canary_pods_are_kept_apart_from_their_role() -> None:
    role = {"metadata": {"labels": {"app.kubernetes.io/component": "proxy"}}}
    canary = {"metadata": {"labels": {"app.kubernetes.io/component": "proxy", "shoal.dev/canary": "true"}}}
    dry = {"metadata": {"labels": {"app.kubernetes.io/component": "standalone-canary", "shoal.dev/canary": "true"}}}
    assert pods_by_component([role, canary, dry]) == {"proxy": [role], "proxy-canary": [canary],
                                                       "standalone-canary": [dry]}


def test_request_counts_sum_totals_and_failures_of_every_method() -> None:
    page = (
        "# TYPE milvus_proxy_req_count counter\n"
        'milvus_proxy_req_count{collection_name="a",db_name="default",function_name="Search",node_id="1",'
        'status="total"} 10.0\n'
        'milvus_proxy_req_count{collection_name="a",db_name="default",function_name="Search",node_id="1",'
        'status="fail"} 2.0\n'
        'milvus_proxy_req_count{collection_name="a",db_name="default",function_name="Insert",node_id="1",'
        'status="total"} 5.0\n'
        'milvus_proxy_req_count{collection_name="a",db_name="default",function_name="Insert",node_id="1",'
        'status="success"} 5.0\n'
        'milvus_proxy_req_count_other{status="fail"} 9\n'
    )
    assert request_counts(page) == Requests(15.0, 2.0)
    assert request_counts("") == Requests(0.0, 0.0)
