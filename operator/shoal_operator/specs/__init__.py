"""The custom resources' specs as pydantic models: the single source of the CRD schemas.

`crdgen` turns these into CRD YAML; handlers parse resource bodies with them. Field names
follow milvus-operator where the meaning is the same.
"""
