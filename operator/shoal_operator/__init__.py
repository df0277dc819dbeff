"""Shoal's Kubernetes operator: MilvusCluster, Collection, MilvusBackup and MilvusRestore.

Layout: `specs/` (pydantic models, the source of the CRDs), `crdgen` (CRD YAML from the
models), `builders/` (pure spec -> Kubernetes objects), `upgrade`, `health` and `gpu`
(pure decisions from observed state), `kube` (the only module that talks to the API
server), `handlers/` (thin Kopf handlers wiring those together) and `main` (entry point).
Nothing here imports the node package `shoal`.
"""
