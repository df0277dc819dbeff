"""Collection reconciliation: what gets added, and what is reported as drift instead."""

from __future__ import annotations

from shoal_operator.collections_diff import (
    CreateCollection,
    CreateIndex,
    CreatePartition,
    Load,
    ObservedCollection,
    ObservedField,
    ObservedIndex,
    Release,
    SetProperties,
    diff,
)
from shoal_operator.specs.collection import CollectionSpec

SPEC = {
    "name": "docs",
    "schema": {
        "primaryKey": "id",
        "fields": [
            {"name": "id", "dataType": "INT64"},
            {"name": "title", "dataType": "VARCHAR", "maxLength": 256},
            {"name": "embedding", "dataType": "FLOAT_VECTOR", "dim": 8},
        ],
    },
    "indexes": [{"fieldName": "embedding", "indexType": "HNSW", "metricType": "COSINE", "params": {"M": "16"}}],
    "partitions": ["2024", "2025"],
    "properties": {"collection.ttl.seconds": "3600"},
    "target": {"endpoint": "http://127.0.0.1:19530"},
}


def spec(**changes: object) -> CollectionSpec:
    return CollectionSpec.model_validate({**SPEC, **changes})


def live(**changes: object) -> ObservedCollection:
    base = {
        "fields": (
            ObservedField("id", "INT64", is_primary=True),
            ObservedField("title", "VARCHAR", max_length=256),
            ObservedField("embedding", "FLOAT_VECTOR", dim=8),
        ),
        "partitions": ("_default", "2024", "2025"),
        "indexes": (ObservedIndex("embedding", "embedding", "HNSW", "COSINE"),),
        "loaded": True,
        "properties": {"collection.ttl.seconds": "3600"},
    }
    return ObservedCollection(**{**base, **changes})  # type: ignore[arg-type]


def test_absent_collection_is_created_then_partitioned_indexed_and_loaded() -> None:
    d = diff(spec(), None)
    assert [type(a) for a in d.actions] == [CreateCollection, CreatePartition, CreatePartition, CreateIndex,
                                            SetProperties, Load]
    assert d.drift == []


def test_in_sync_collection_needs_nothing() -> None:
    assert diff(spec(), live()) == diff(spec(), live())
    d = diff(spec(), live())
    assert d.actions == [] and d.drift == []


def test_missing_partitions_indexes_and_properties_are_added() -> None:
    d = diff(spec(), live(partitions=("_default", "2024"), indexes=(), properties={}, loaded=False))
    assert d.actions == [
        CreatePartition("2025"),
        CreateIndex(spec().indexes[0]),
        SetProperties({"collection.ttl.seconds": "3600"}),
        Load(),
    ]


def test_release_when_spec_says_released() -> None:
    assert diff(spec(loadState="Released"), live()).actions == [Release()]


def test_changed_field_type_is_drift_not_an_action() -> None:
    fields = (
        ObservedField("id", "INT64", is_primary=True),
        ObservedField("title", "INT32"),
        ObservedField("embedding", "FLOAT_VECTOR", dim=16),
        ObservedField("extra", "BOOL"),
    )
    d = diff(spec(), live(fields=fields))
    assert d.actions == []
    assert d.drift == [
        "field title is INT32 in the collection, spec says VARCHAR",
        "field embedding has dim 16, spec says 8",
        "field extra exists in the collection but not in the spec",
    ]


def test_a_different_index_type_is_drift() -> None:
    d = diff(spec(), live(indexes=(ObservedIndex("embedding", "embedding", "IVF_FLAT", "COSINE"),)))
    assert d.drift == ["index embedding is IVF_FLAT, spec says HNSW"]


def test_extra_live_partitions_are_left_alone() -> None:
    d = diff(spec(), live(partitions=("_default", "2024", "2025", "archive")))
    assert d.actions == [] and d.drift == []


def test_status_reports_drift_errors_and_unreachable_endpoints() -> None:
    from datetime import UTC, datetime

    from shoal_operator.handlers.collection import collection_status

    now = datetime(2026, 1, 1, tzinfo=UTC)
    progress = {"rows": 10, "indexes": {"embedding": {"indexedRows": 10, "totalRows": 10, "state": "Finished"}}}
    ready = collection_status(3, None, now, [], [], True, progress)
    assert (ready["phase"], ready["rows"], ready["loadState"]) == ("Ready", 10, "Loaded")
    drifted = collection_status(3, ready, now, ["field title is INT32 in the collection, spec says VARCHAR"],
                                [], True, progress)
    drift = next(c for c in drifted["conditions"] if c["type"] == "SchemaDrift")
    assert drifted["phase"] == "Drifted" and drift["status"] == "True" and "INT32" in drift["message"]
    down = collection_status(3, None, now, [], ["cannot reach http://x:19530: timeout"], None, None)
    assert down["phase"] == "Pending" and "rows" not in down
    assert next(c for c in down["conditions"] if c["type"] == "Ready")["reason"] == "Unreachable"
