"""The checked-in CRDs match the pydantic specs, and the schemas are structural."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from shoal_operator import crdgen
from shoal_operator.specs.cluster import MilvusClusterSpec
from shoal_operator.specs.collection import CollectionSpec


@pytest.mark.parametrize("rel", crdgen.OUTPUTS)
def test_checked_in_crds_are_fresh(rel: str) -> None:
    path = crdgen.REPO_ROOT / rel
    assert path.read_text() == crdgen.render(), (
        f"{rel} is stale: run `python -m shoal_operator.crdgen --write`"
    )


def walk(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Every schema node below `schema` (properties, items, additionalProperties, anyOf)."""
    out = [schema]
    for sub in schema.get("properties", {}).values():
        out += walk(sub)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            out += walk(schema[key])
    for sub in schema.get("anyOf", []):
        out += walk(sub)
    return out


def crds() -> dict[str, dict[str, Any]]:
    return {d["spec"]["names"]["kind"]: d for d in yaml.safe_load_all(crdgen.render())}


def test_schemas_are_structural() -> None:
    for kind, crd in crds().items():
        for node in walk(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]):
            assert "$ref" not in node and "title" not in node, kind
            if "anyOf" in node:
                assert node.get("x-kubernetes-int-or-string"), (kind, node)
            for sub in node.get("properties", {}).values():
                assert "type" in sub or "x-kubernetes-int-or-string" in sub, (kind, sub)


def test_milvuscluster_crd_surface() -> None:
    crd = crds()["MilvusCluster"]
    assert crd["spec"]["names"]["shortNames"] == ["mc", "shoalmc"]
    version = crd["spec"]["versions"][0]
    assert [c["name"] for c in version["additionalPrinterColumns"]][:4] == ["Phase", "Mode", "Version", "Ready"]
    assert version["additionalPrinterColumns"][-1]["name"] == "Age"
    assert "status" in version["subresources"] and "scale" in version["subresources"]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert spec["mode"]["enum"] == ["standalone", "cluster"]
    assert spec["deletionPolicy"]["default"] == "Retain"
    query = spec["components"]["properties"]["query"]["properties"]
    assert query["replicas"]["minimum"] == 0
    assert query["autoscaling"]["x-kubernetes-validations"][0]["rule"] == "self.minReplicas <= self.maxReplicas"


def test_all_kinds_and_kopf_peering_are_generated() -> None:
    assert set(crds()) == {"MilvusCluster", "Collection", "MilvusBackup", "MilvusRestore",
                           "KopfPeering", "ClusterKopfPeering"}


def test_specs_reject_what_the_crd_rejects() -> None:
    with pytest.raises(ValidationError):
        MilvusClusterSpec.model_validate({"mode": "sharded"})
    with pytest.raises(ValidationError):
        MilvusClusterSpec.model_validate({"components": {"query": {"replicas": -1}}})
    with pytest.raises(ValidationError):
        CollectionSpec.model_validate({"name": "bad name", "schema": {"primaryKey": "id", "fields": []},
                                       "target": {"endpoint": "x"}})


def test_acronyms_keep_their_kubernetes_spelling() -> None:
    spec = MilvusClusterSpec.model_validate({"mode": "cluster", "components": {
        "index": {"gpu": {"fallbackToCPU": True}},
        "query": {"autoscaling": {"maxReplicas": 3, "targetCPUUtilization": 50}},
    }})
    assert spec.components.index.gpu is not None and spec.components.index.gpu.fallback_to_cpu
    assert spec.components.query.autoscaling is not None
    assert spec.components.query.autoscaling.target_cpu_utilization == 50
    text = crdgen.render()
    assert "fallbackToCPU:" in text and "targetCPUUtilization:" in text
