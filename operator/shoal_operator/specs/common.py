"""Shared pydantic base and schema-annotated types for Kubernetes-shaped fields.

Kubernetes' own structures (affinity, tolerations, env, probes, behavior) are passed
through untouched, so their schema says "preserve unknown fields" instead of repeating
the upstream OpenAPI. Neighbours: every `specs` module; read by `crdgen`.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, WithJsonSchema
from pydantic.alias_generators import to_camel

_FREE_OBJECT = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
_QUANTITY = {
    "anyOf": [{"type": "integer"}, {"type": "string"}],
    "x-kubernetes-int-or-string": True,
}

KubeObject = Annotated[dict[str, Any], WithJsonSchema(_FREE_OBJECT)]
"""Any Kubernetes object-shaped value (affinity, probe, HPA behavior...)."""

KubeList = Annotated[list[dict[str, Any]], WithJsonSchema({"type": "array", "items": _FREE_OBJECT})]
"""A list of Kubernetes object-shaped values (tolerations, env, constraints...)."""

StringMap = Annotated[
    dict[str, str], WithJsonSchema({"type": "object", "additionalProperties": {"type": "string"}})
]

Resources = Annotated[
    dict[str, dict[str, int | str]],
    WithJsonSchema(
        {
            "type": "object",
            "properties": {
                "limits": {"type": "object", "additionalProperties": _QUANTITY},
                "requests": {"type": "object", "additionalProperties": _QUANTITY},
            },
        }
    ),
]
"""Container resources: `{limits: {...}, requests: {...}}` with Kubernetes quantities."""


def cel_rules(*pairs: tuple[str, str]) -> dict[str, Any]:
    """`x-kubernetes-validations` (CEL) for a model: the API server rejects bad specs
    with `message` before the operator ever sees them."""
    return {"x-kubernetes-validations": [{"rule": r, "message": m} for r, m in pairs]}


class SpecModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown keys ignored (the API server
    already prunes them, and an older operator must tolerate a newer CRD)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def dump(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)
