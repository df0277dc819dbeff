"""`MilvusCluster` spec: mode, version, components, autoscaling, GPU, dependencies, config.

Read by `builders/` (what to create), `upgrade` (the target image) and `crdgen`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shoal_operator.constants import DEFAULT_IMAGE_REPOSITORY, GPU_RESOURCE
from shoal_operator.specs.common import KubeList, KubeObject, Resources, SpecModel, StringMap, cel_rules

CLUSTER_COMPONENTS = ("coord", "streaming", "query", "index", "proxy")
STANDALONE_COMPONENTS = ("standalone",)


class Probes(SpecModel):
    """Replacements for the default `/healthz` probes (Kubernetes probe objects)."""

    liveness: KubeObject | None = None
    readiness: KubeObject | None = None
    startup: KubeObject | None = None


class Autoscaling(SpecModel):
    """An operator-owned HorizontalPodAutoscaler; the operator then never sets replicas."""

    model_config = {
        "json_schema_extra": cel_rules(
            ("self.minReplicas <= self.maxReplicas", "minReplicas must not exceed maxReplicas")
        )
    }

    min_replicas: int = Field(1, ge=1, le=1000)
    max_replicas: int = Field(ge=1, le=1000)
    target_cpu_utilization: int | None = Field(None, ge=1, le=100, alias="targetCPUUtilization")
    target_memory_utilization: int | None = Field(None, ge=1, le=100)
    behavior: KubeObject | None = None


class Component(SpecModel):
    """One role's Deployment: size, resources, scheduling, env, probes, extra config."""

    replicas: int = Field(1, ge=0, le=1000)
    resources: Resources | None = None
    node_selector: StringMap | None = None
    affinity: KubeObject | None = None
    tolerations: KubeList | None = None
    topology_spread_constraints: KubeList | None = None
    env: KubeList | None = None
    probes: Probes | None = None
    autoscaling: Autoscaling | None = None
    config: KubeObject | None = Field(
        None, description="Node config keys for this component only, merged over spec.config."
    )


class Gpu(SpecModel):
    """GPUs for the index pool: resource limits, placement, and the CPU fallback."""

    count: int = Field(1, ge=1, le=16)
    resource_name: str = GPU_RESOURCE
    node_selector: StringMap | None = None
    tolerations: KubeList | None = None
    fallback_to_cpu: bool = Field(
        False,
        alias="fallbackToCPU",
        description="Rebuild the index pool without GPUs when its pods cannot be scheduled.",
    )


class IndexComponent(Component):
    gpu: Gpu | None = None


class Components(SpecModel):
    coord: Component = Field(default_factory=Component)
    proxy: Component = Field(default_factory=Component)
    streaming: Component = Field(default_factory=Component)
    query: Component = Field(default_factory=Component)
    index: IndexComponent = Field(default_factory=IndexComponent)
    standalone: Component = Field(default_factory=Component)

    def get(self, name: str) -> Component:
        component: Component = getattr(self, name)
        return component


class InClusterStore(SpecModel):
    """A small single-replica StatefulSet with a PVC, for development clusters."""

    image: str | None = None
    storage_size: str = "1Gi"
    storage_class_name: str | None = None
    resources: Resources | None = None
    node_selector: StringMap | None = None
    tolerations: KubeList | None = None


class ExternalEtcd(SpecModel):
    endpoints: list[str] = Field(min_length=1)
    secret_ref: str | None = Field(None, description="Secret with optional keys username, password.")


class EtcdDependency(SpecModel):
    model_config = {
        "json_schema_extra": cel_rules(
            ("has(self.external) != has(self.inCluster)", "set exactly one of external or inCluster")
        )
    }

    external: ExternalEtcd | None = None
    in_cluster: InClusterStore | None = None


class ExternalStorage(SpecModel):
    endpoint: str = Field(min_length=1)
    bucket: str = "shoal"
    secret_ref: str | None = Field(None, description="Secret with keys accessKey and secretKey.")


class InClusterStorage(InClusterStore):
    bucket: str = "shoal"
    server: Literal["minio", "seaweedfs"] = Field(
        "minio",
        description="The S3 server the image runs: its command line and probe follow it "
        "(default image minio/minio or chrislusf/seaweedfs). The Service stays <name>-minio:9000.",
    )


class StorageDependency(SpecModel):
    model_config = {
        "json_schema_extra": cel_rules(
            ("has(self.external) != has(self.inCluster)", "set exactly one of external or inCluster")
        )
    }

    external: ExternalStorage | None = None
    in_cluster: InClusterStorage | None = None


class ExternalKafka(SpecModel):
    bootstrap_servers: list[str] = Field(min_length=1, description="host:port of one or more brokers.")
    secret_ref: str | None = Field(
        None, description="Secret with keys username and password (SASL PLAIN/SCRAM over the listener)."
    )


class KafkaDependency(SpecModel):
    """The write-ahead log of cluster mode. In-cluster: one KRaft broker for development."""

    model_config = {
        "json_schema_extra": cel_rules(
            ("has(self.external) != has(self.inCluster)", "set exactly one of external or inCluster")
        )
    }

    external: ExternalKafka | None = None
    in_cluster: InClusterStore | None = None


class Dependencies(SpecModel):
    """Meta store, object store and (cluster mode) the Kafka log. Cluster mode defaults each to in-cluster."""

    etcd: EtcdDependency | None = None
    storage: StorageDependency | None = None
    kafka: KafkaDependency | None = None


class Persistence(SpecModel):
    """The standalone node's data volume (a PVC), or an emptyDir when disabled."""

    enabled: bool = True
    size: str = "10Gi"
    storage_class_name: str | None = None


class Tls(SpecModel):
    """TLS on the node's gRPC and HTTP ports from a `kubernetes.io/tls` Secret."""

    secret_ref: str = Field(min_length=1, description="Secret with keys tls.crt, tls.key and (mode 2) ca.crt.")
    mode: Literal[1, 2] = Field(1, description="1: server TLS; 2: mutual TLS (clients need a cert from ca.crt).")


class Security(SpecModel):
    """Users, roles and TLS. The root password lives only in a Secret, never in the
    ConfigMap or status: `rootPasswordSecret` (key `password`), or one the operator
    generates once as `<name>-root` (keys `user` and `password`) when none is named."""

    authorization_enabled: bool = False
    root_password_secret: str | None = Field(None, description="Secret with key password, read at first start.")
    tls: Tls | None = None


class CanaryPolicy(SpecModel):
    """How long a canary must stay healthy before the rest of the pods move."""

    pause_seconds: int = Field(
        60, ge=0, le=86400, description="Every canary Ready and under maxErrorRatio for this long, then roll the rest."
    )
    max_error_ratio: float = Field(
        0.01, ge=0, le=1, description="Failed / total requests on the canaries' own /metrics above this fails it."
    )


class UpgradePolicy(SpecModel):
    """How a change of version or image reaches the pods (see docs/operator.md)."""

    strategy: Literal["rolling", "canary"] = Field(
        "rolling",
        description="rolling: one role at a time. canary: one pod per role on the new image first "
        "(<name>-<role>-canary), held for canary.pauseSeconds, then rolling.",
    )
    canary: CanaryPolicy = Field(default_factory=CanaryPolicy)
    rollback_on_failure: bool = Field(
        False, description="A stalled step or an unhealthy canary returns every role to the previous image."
    )
    step_timeout_seconds: int = Field(
        600, ge=10, le=86400, description="A step (or the canary) not rolled out by then has failed."
    )


class MilvusClusterSpec(SpecModel):
    model_config = {
        "json_schema_extra": cel_rules(
            (
                "self.mode != 'standalone' || !has(self.components) || !has(self.components.standalone)"
                " || (self.components.standalone.replicas <= 1 && !has(self.components.standalone.autoscaling))",
                "standalone runs one replica and cannot autoscale; use mode: cluster",
            ),
        )
    }

    mode: Literal["standalone", "cluster"] = "standalone"
    version: str = Field("0.1.0", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    image: str | None = Field(None, description="Overrides shoal/shoal-node:<version>.")
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    components: Components = Field(default_factory=Components)
    dependencies: Dependencies = Field(default_factory=Dependencies)
    config: KubeObject | None = Field(None, description="Node config keys merged into every component.")
    persistence: Persistence = Field(default_factory=Persistence)
    upgrade: UpgradePolicy = Field(default_factory=UpgradePolicy)
    security: Security = Field(default_factory=Security)
    deletion_policy: Literal["Retain", "Delete"] = "Retain"

    @property
    def target_image(self) -> str:
        return self.image or f"{DEFAULT_IMAGE_REPOSITORY}:{self.version}"

    @property
    def component_names(self) -> tuple[str, ...]:
        return CLUSTER_COMPONENTS if self.mode == "cluster" else STANDALONE_COMPONENTS

    @property
    def etcd(self) -> EtcdDependency | None:
        """The meta store in use: as given, or in-cluster by default in cluster mode."""
        if self.dependencies.etcd is not None or self.mode == "standalone":
            return self.dependencies.etcd
        return EtcdDependency(in_cluster=InClusterStore())

    @property
    def kafka(self) -> KafkaDependency | None:
        """The WAL's Kafka: only cluster mode has one; in-cluster unless given."""
        if self.mode == "standalone":
            return None
        return self.dependencies.kafka or KafkaDependency(in_cluster=InClusterStore())

    @property
    def storage(self) -> StorageDependency | None:
        if self.dependencies.storage is not None or self.mode == "standalone":
            return self.dependencies.storage
        return StorageDependency(in_cluster=InClusterStorage())
