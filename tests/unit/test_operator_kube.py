"""The operator's API-server helpers that need no server: URL paths and field ownership."""

from __future__ import annotations

from shoal_operator.kube import owns_field, path


def test_paths_for_core_grouped_and_custom_kinds() -> None:
    assert path("v1", "Pod", "ns") == "/api/v1/namespaces/ns/pods"
    assert path("apps/v1", "Deployment", "ns", "demo-query") == "/apis/apps/v1/namespaces/ns/deployments/demo-query"
    assert (
        path("shoal.dev/v1alpha1", "MilvusCluster", "ns", "demo", "status")
        == "/apis/shoal.dev/v1alpha1/namespaces/ns/milvusclusters/demo/status"
    )


def deployment(*entries: dict) -> dict:
    return {"metadata": {"managedFields": list(entries)}}


REPLICAS = {"f:spec": {"f:replicas": {}, "f:template": {}}}


def test_owns_field_reads_the_apply_entry_of_that_manager() -> None:
    dep = deployment({"manager": "shoal-operator", "operation": "Apply", "fieldsV1": REPLICAS})
    assert owns_field(dep, "shoal-operator", "spec", "replicas")
    assert not owns_field(dep, "kube-controller-manager", "spec", "replicas")


def test_replicas_taken_over_by_the_hpa_are_not_ours() -> None:
    dep = deployment(
        {"manager": "shoal-operator", "operation": "Apply", "fieldsV1": {"f:spec": {"f:template": {}}}},
        {"manager": "kube-controller-manager", "operation": "Update", "subresource": "scale",
         "fieldsV1": {"f:spec": {"f:replicas": {}}}},
    )
    assert not owns_field(dep, "shoal-operator", "spec", "replicas")


def test_update_entries_of_the_same_manager_do_not_count() -> None:
    dep = deployment({"manager": "shoal-operator", "operation": "Update", "fieldsV1": REPLICAS})
    assert not owns_field(dep, "shoal-operator", "spec", "replicas")
