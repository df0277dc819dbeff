"""Where a `Collection` lives: a MilvusCluster's proxy Service or an explicit endpoint,
plus credentials from an optional Secret (keys `token`, or `user` and `password`)."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from shoal_operator import constants as c
from shoal_operator.kube import Kube
from shoal_operator.specs.collection import CollectionTarget


@dataclass(frozen=True)
class Target:
    uri: str
    token: str = ""
    user: str = ""
    password: str = ""


def uri_for(target: CollectionTarget, namespace: str) -> str:
    if target.endpoint:
        return target.endpoint
    return f"http://{target.cluster_ref}-milvus.{namespace}.svc:{c.GRPC_PORT}"


class TargetMissing(LookupError):
    """The referenced MilvusCluster or Secret does not exist (yet)."""


def resolve(kube: Kube, target: CollectionTarget, namespace: str) -> Target:
    if target.cluster_ref and kube.get(c.API_VERSION, c.CLUSTER_KIND, namespace, target.cluster_ref) is None:
        raise TargetMissing(f"MilvusCluster {target.cluster_ref} not found in {namespace}")
    creds: dict[str, str] = {}
    if target.secret_ref:
        secret = kube.get("v1", "Secret", namespace, target.secret_ref)
        if secret is None:
            raise TargetMissing(f"Secret {target.secret_ref} not found in {namespace}")
        creds = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    return Target(
        uri=uri_for(target, namespace),
        token=creds.get("token", ""),
        user=creds.get("user", creds.get("username", "")),
        password=creds.get("password", ""),
    )
