"""Generates the CRD YAML from the pydantic specs: `python -m shoal_operator.crdgen`.

Prints every CRD (ours plus the KopfPeering CRDs that operator peering needs) as one
multi-document YAML; `--write` refreshes the checked-in copies (`crds/`, the Helm chart,
the kustomize base). A unit test fails when those copies are stale. Pydantic's JSON
schema is turned into a Kubernetes structural schema here: references inlined, `Optional`
unwrapped, titles dropped, defaults kept only for scalars.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from shoal_operator import constants as c
from shoal_operator.specs.backup import MilvusBackupSpec, MilvusRestoreSpec
from shoal_operator.specs.cluster import MilvusClusterSpec
from shoal_operator.specs.collection import CollectionSpec

REPO_ROOT = Path(__file__).resolve().parents[2]
OUTPUTS = (
    "crds/shoal-crds.yaml",
    "charts/shoal-operator/crds/shoal-crds.yaml",
    "manifests/base/crds.yaml",
)
_DROP = {"title", "$defs"}


def structural(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """One pydantic JSON-schema node -> a Kubernetes structural-schema node."""
    if "$ref" in schema:
        target = defs[schema["$ref"].split("/")[-1]]
        merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return structural(merged, defs)
    any_of = schema.get("anyOf")
    if any_of is not None:
        non_null = [s for s in any_of if s.get("type") != "null"]
        if len(non_null) == 1:
            rest = {k: v for k, v in schema.items() if k != "anyOf"}
            return structural({**non_null[0], **rest}, defs)
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _DROP:
            continue
        if key == "default" and (value is None or isinstance(value, dict | list)):
            continue
        if key == "properties":
            out[key] = {name: structural(sub, defs) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = structural(value, defs)
        elif key == "anyOf":
            out[key] = [structural(s, defs) for s in value]
        else:
            out[key] = value
    return out


def spec_schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True)
    return structural(raw, raw.get("$defs", {}))


def _column(name: str, path: str, kind: str = "string", priority: int = 0) -> dict[str, Any]:
    col: dict[str, Any] = {"name": name, "type": kind, "jsonPath": path}
    if priority:
        col["priority"] = priority
    return col


_AGE = _column("Age", ".metadata.creationTimestamp", "date")


def crd(
    kind: str,
    plural: str,
    model: type[BaseModel],
    short_names: list[str],
    columns: list[dict[str, Any]],
    scale: dict[str, str] | None = None,
) -> dict[str, Any]:
    subresources: dict[str, Any] = {"status": {}}
    if scale:
        subresources["scale"] = scale
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{c.GROUP}", "labels": {c.PART_OF_LABEL: c.APP_NAME}},
        "spec": {
            "group": c.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": short_names,
                "categories": ["shoal"],
            },
            "versions": [
                {
                    "name": c.VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "required": ["spec"],
                            "properties": {
                                "spec": spec_schema(model),
                                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                            },
                        }
                    },
                    "subresources": subresources,
                    "additionalPrinterColumns": columns,
                }
            ],
        },
    }


def peering_crd(scope: str, kind: str, plural: str) -> dict[str, Any]:
    """Kopf's own peering resources, needed for `settings.peering` leader election."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.kopf.dev", "labels": {c.PART_OF_LABEL: c.APP_NAME}},
        "spec": {
            "group": "kopf.dev",
            "scope": scope,
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                }
            ],
        },
    }


def all_crds() -> list[dict[str, Any]]:
    phase = _column("Phase", ".status.phase")
    return [
        crd(
            c.CLUSTER_KIND,
            c.CLUSTER_PLURAL,
            MilvusClusterSpec,
            ["mc", "shoalmc"],
            [
                phase,
                _column("Mode", ".spec.mode"),
                _column("Version", ".spec.version"),
                _column("Ready", ".status.ready"),
                _column("Endpoint", ".status.endpoint", priority=1),
                _AGE,
            ],
            scale={
                "specReplicasPath": ".spec.components.proxy.replicas",
                "statusReplicasPath": ".status.scale.replicas",
                "labelSelectorPath": ".status.scale.selector",
            },
        ),
        crd(
            c.COLLECTION_KIND,
            c.COLLECTION_PLURAL,
            CollectionSpec,
            ["mcol"],
            [
                phase,
                _column("Collection", ".spec.name"),
                _column("Load", ".status.loadState"),
                _column("Rows", ".status.rows", "integer"),
                _AGE,
            ],
        ),
        crd(
            c.BACKUP_KIND,
            c.BACKUP_PLURAL,
            MilvusBackupSpec,
            ["mbak"],
            [phase, _column("Cluster", ".spec.clusterRef"), _column("Schedule", ".spec.schedule"),
             _column("Backup", ".status.backupId"), _column("Size", ".status.sizeBytes", "integer"), _AGE],
        ),
        crd(
            c.RESTORE_KIND,
            c.RESTORE_PLURAL,
            MilvusRestoreSpec,
            ["mrestore"],
            [phase, _column("Cluster", ".spec.clusterRef"), _column("Backup", ".status.backupId"), _AGE],
        ),
        peering_crd("Cluster", "ClusterKopfPeering", "clusterkopfpeerings"),
        peering_crd("Namespaced", "KopfPeering", "kopfpeerings"),
    ]


class _NoAliasDumper(yaml.SafeDumper):
    """Repeated sub-schemas are written out in full: anchors confuse kubectl diff and humans."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render() -> str:
    header = "# Generated by `python -m shoal_operator.crdgen`; do not edit by hand.\n"
    body = yaml.dump_all(all_crds(), Dumper=_NoAliasDumper, sort_keys=False, width=100)
    return header + body


def main(argv: list[str]) -> int:
    text = render()
    if "--write" in argv:
        for rel in OUTPUTS:
            path = REPO_ROOT / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
