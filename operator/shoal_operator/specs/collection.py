"""`Collection` spec: a declarative Milvus collection and where it lives.

Read by `collections_diff` (desired vs observed), `milvus_target` (how to connect) and
`crdgen`. Data type names are Milvus's `DataType` names.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shoal_operator.specs.common import SpecModel, StringMap, cel_rules

DataTypeName = Literal[
    "BOOL",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FLOAT",
    "DOUBLE",
    "VARCHAR",
    "JSON",
    "ARRAY",
    "BINARY_VECTOR",
    "FLOAT_VECTOR",
    "FLOAT16_VECTOR",
    "BFLOAT16_VECTOR",
    "SPARSE_FLOAT_VECTOR",
    "INT8_VECTOR",
]
DENSE_VECTOR_TYPES = (
    "BINARY_VECTOR",
    "FLOAT_VECTOR",
    "FLOAT16_VECTOR",
    "BFLOAT16_VECTOR",
    "INT8_VECTOR",
)
_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,254}$"


class FieldSpec(SpecModel):
    model_config = {
        "json_schema_extra": cel_rules(
            (
                "!(self.dataType in " + str(list(DENSE_VECTOR_TYPES)) + ") || has(self.dim)",
                "dense vector fields need dim",
            ),
            ("self.dataType != 'VARCHAR' || has(self.maxLength)", "VARCHAR fields need maxLength"),
            ("self.dataType != 'ARRAY' || has(self.elementType)", "ARRAY fields need elementType"),
        )
    }

    name: str = Field(pattern=_NAME, max_length=255)
    data_type: DataTypeName
    dim: int | None = Field(None, ge=1, le=32768)
    max_length: int | None = Field(None, ge=1, le=65535)
    element_type: DataTypeName | None = None
    max_capacity: int | None = Field(None, ge=1, le=4096)
    nullable: bool = False
    default_value: str | None = Field(
        None, description="Default for rows without the field, written as text and read as the field's type."
    )
    description: str = ""


class CollectionSchema(SpecModel):
    model_config = {
        "json_schema_extra": cel_rules(
            ("self.fields.exists(f, f.name == self.primaryKey)", "primaryKey must name a field"),
            (
                "!has(self.partitionKey) || self.fields.exists(f, f.name == self.partitionKey)",
                "partitionKey must name a field",
            ),
        )
    }

    fields: list[FieldSpec] = Field(min_length=1, max_length=64)
    primary_key: str = Field(max_length=255)
    auto_id: bool = False
    enable_dynamic_field: bool = False
    partition_key: str | None = Field(None, max_length=255)
    description: str = ""


class IndexSpec(SpecModel):
    field_name: str = Field(pattern=_NAME)
    index_name: str | None = Field(None, pattern=_NAME)
    index_type: str = Field("AUTOINDEX", pattern=r"^[A-Z0-9_]+$")
    metric_type: Literal["L2", "IP", "COSINE", "HAMMING", "JACCARD", "BM25"] | None = None
    params: StringMap | None = Field(None, description="Index build parameters, e.g. {M: '16'}.")

    @property
    def name(self) -> str:
        return self.index_name or self.field_name


class CollectionTarget(SpecModel):
    model_config = {
        "json_schema_extra": cel_rules(
            ("has(self.clusterRef) != has(self.endpoint)", "set exactly one of clusterRef or endpoint")
        )
    }

    cluster_ref: str | None = Field(None, description="A MilvusCluster in this namespace.")
    endpoint: str | None = Field(None, description="Any Milvus-compatible URI, e.g. http://host:19530.")
    secret_ref: str | None = Field(None, description="Secret with key token, or user and password.")


class CollectionSpec(SpecModel):
    model_config = {
        "json_schema_extra": cel_rules(
            ("self.migration != 'blueGreen' || has(self.alias)", "migration blueGreen needs the alias applications use"),
        )
    }

    name: str = Field(pattern=_NAME)
    database: str = Field("default", pattern=_NAME)
    collection_schema: CollectionSchema = Field(alias="schema")
    indexes: list[IndexSpec] = Field(default_factory=list)
    partitions: list[str] = Field(default_factory=list, max_length=1024)
    load_state: Literal["Loaded", "Released"] = "Loaded"
    properties: StringMap | None = None
    target: CollectionTarget
    deletion_policy: Literal["Retain", "Delete"] = "Retain"
    alias: str | None = Field(
        None, pattern=_NAME, description="The alias applications use; the operator points it at the live collection."
    )
    migration: Literal["none", "blueGreen"] = Field(
        "none",
        description="blueGreen: a change Milvus cannot make online is made on a copy, then the alias switches.",
    )
    migration_retention_seconds: int = Field(
        86400, ge=0, description="How long the collection a migration replaced is kept before it is dropped."
    )
