"""Names the operator shares across modules: API group, kinds, labels, ports, paths.

A leaf module: no imports from the rest of the operator.
"""

from __future__ import annotations

GROUP = "shoal.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

CLUSTER_KIND = "MilvusCluster"
CLUSTER_PLURAL = "milvusclusters"
COLLECTION_KIND = "Collection"
COLLECTION_PLURAL = "collections"
BACKUP_KIND = "MilvusBackup"
BACKUP_PLURAL = "milvusbackups"
RESTORE_KIND = "MilvusRestore"
RESTORE_PLURAL = "milvusrestores"

FIELD_MANAGER = "shoal-operator"
# A second field manager that only ever owns `spec.replicas` of autoscaled Deployments, so
# that the main manager can stop sending the field without the API server resetting it.
HPA_HANDOVER_MANAGER = "shoal-operator-hpa-handover"
FINALIZER = f"{GROUP}/finalizer"
PEERING_NAME = "shoal-operator"

NAME_LABEL = "app.kubernetes.io/name"
INSTANCE_LABEL = "app.kubernetes.io/instance"
COMPONENT_LABEL = "app.kubernetes.io/component"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
PART_OF_LABEL = "app.kubernetes.io/part-of"
APP_NAME = "shoal"
MANAGED_BY = "shoal-operator"
CONFIG_CHECKSUM_ANNOTATION = f"{GROUP}/config-checksum"
CANARY_LABEL = f"{GROUP}/canary"
CANARY_SUFFIX = "-canary"

DEFAULT_IMAGE_REPOSITORY = "shoal/shoal-node"
GRPC_PORT = 19530
HTTP_PORT = 9091
CONFIG_DIR = "/etc/shoal"
CONFIG_FILE = f"{CONFIG_DIR}/shoal.yaml"
DATA_DIR = "/var/lib/shoal"
NODE_CONTAINER = "shoal"

GPU_RESOURCE = "nvidia.com/gpu"

PROXY_DRAIN_SECONDS = 10
"""A terminating proxy keeps serving this long before its SIGTERM (a preStop sleep), so that
every kube-proxy drops it from the Service before it stops listening."""
