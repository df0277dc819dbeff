"""Schema changes through a Collection resource: what is done online, what needs a blue-green
migration, what a migration refuses, and the migration's steps. Pure functions only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shoal_operator import collections_migration as m
from shoal_operator.collections_diff import AddField, ObservedCollection, ObservedField, PointAlias, diff
from shoal_operator.specs.collection import CollectionSpec, FieldSpec

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
LIVE = ObservedCollection(
    fields=(
        ObservedField("id", "INT64", is_primary=True),
        ObservedField("year", "INT32"),
        ObservedField("title", "VARCHAR", max_length=64),
        ObservedField("embedding", "FLOAT_VECTOR", dim=8),
    ),
    aliases=("docs",),
)


def spec(*fields: dict[str, Any], **extra: Any) -> CollectionSpec:
    base = [
        {"name": "id", "dataType": "INT64"},
        {"name": "year", "dataType": "INT32"},
        {"name": "title", "dataType": "VARCHAR", "maxLength": 64},
        {"name": "embedding", "dataType": "FLOAT_VECTOR", "dim": 8},
    ]
    by_name = {f["name"]: f for f in base}
    for f in fields:
        by_name[f["name"]] = f
    return CollectionSpec.model_validate({
        "name": "docs_store",
        "alias": "docs",
        "target": {"endpoint": "http://x:19530"},
        "schema": {"primaryKey": "id", "fields": [f for f in by_name.values() if not f.get("drop")]},
        **extra,
    })


def test_a_nullable_new_field_is_added_online_and_nothing_drifts() -> None:
    change = diff(spec({"name": "tag", "dataType": "VARCHAR", "maxLength": 16, "nullable": True,
                        "defaultValue": "none"}), LIVE)
    assert change.drift == [] and change.offline == []
    [add] = [a for a in change.actions if isinstance(a, AddField)]
    assert add.field.name == "tag" and add.field.default_value == "none"


def test_a_non_nullable_new_field_and_a_type_change_are_offline_drift() -> None:
    change = diff(spec({"name": "year", "dataType": "INT64"}, {"name": "rank", "dataType": "INT32"}), LIVE)
    assert not [a for a in change.actions if isinstance(a, AddField)]
    assert change.offline == change.drift
    assert "field year is INT32 in the collection, spec says INT64" in change.drift
    assert "field rank is missing from the collection and Milvus adds only nullable fields" in change.drift


def test_the_alias_is_pointed_at_the_live_collection_when_missing_or_elsewhere() -> None:
    unaliased = ObservedCollection(fields=LIVE.fields)
    assert [a for a in diff(spec(), unaliased).actions if isinstance(a, PointAlias)] == [PointAlias("docs", False)]
    assert [a for a in diff(spec(), unaliased, True).actions if isinstance(a, PointAlias)] == [PointAlias("docs", True)]
    assert not [a for a in diff(spec(), LIVE).actions if isinstance(a, PointAlias)]


def test_blue_green_needs_an_alias() -> None:
    with_alias = spec(migration="blueGreen")
    assert with_alias.migration == "blueGreen"
    from shoal_operator.crdgen import spec_schema
    rules = spec_schema(CollectionSpec)["x-kubernetes-validations"]
    assert {"rule": "self.migration != 'blueGreen' || has(self.alias)",
            "message": "migration blueGreen needs the alias applications use"} in rules


@pytest.mark.parametrize(("fields", "reason"), [
    ([{"name": "year", "dataType": "INT64"}], None),
    ([{"name": "year", "dataType": "DOUBLE"}], None),
    ([{"name": "year", "dataType": "VARCHAR", "maxLength": 8}], None),
    ([{"name": "title", "dataType": "VARCHAR", "maxLength": 256}], None),
    ([{"name": "year", "dataType": "INT8"}], "field year: INT32 -> INT8 is not a lossless conversion"),
    ([{"name": "year", "dataType": "FLOAT"}], "field year: INT32 -> FLOAT is not a lossless conversion"),
    ([{"name": "title", "dataType": "INT64"}], "field title: VARCHAR -> INT64 is not a lossless conversion"),
    ([{"name": "title", "dataType": "VARCHAR", "maxLength": 8}],
     "field title: maxLength shrinks (64 -> 8), values may not fit"),
    ([{"name": "embedding", "dataType": "FLOAT_VECTOR", "dim": 16}],
     "field embedding: vectors cannot change dim (8 -> 16)"),
    ([{"name": "rank", "dataType": "INT32"}], "field rank is new, not nullable and has no defaultValue"),
    ([{"name": "rank", "dataType": "INT32", "defaultValue": "3"}], None),
    ([{"name": "year", "drop": True}], None),
])
def test_a_migration_copies_only_what_converts_without_loss(fields: list[dict[str, Any]], reason: str | None) -> None:
    assert m.refusals(spec(*fields), LIVE) == ([reason] if reason else [])


def test_rows_are_converted_defaulted_and_trimmed_to_the_new_schema() -> None:
    new = spec({"name": "year", "dataType": "VARCHAR", "maxLength": 8},
               {"name": "rank", "dataType": "INT32", "defaultValue": "3"},
               {"name": "title", "drop": True})
    old_types = {f.name: f.data_type for f in LIVE.fields}
    row = {"id": 7, "year": 2024, "title": "gone", "embedding": [0.0] * 8}
    assert m.convert_row(row, new, old_types) == {"id": 7, "year": "2024", "embedding": [0.0] * 8, "rank": 3}
    too_long = FieldSpec.model_validate({"name": "year", "dataType": "VARCHAR", "maxLength": 2})
    with pytest.raises(m.MigrationRefused, match="longer than maxLength 2"):
        m.convert(2024, "INT32", too_long)
    assert m.convert(True, "BOOL", too_long.model_copy(update={"max_length": 8})) == "true"
    assert m.convert(2.0, "FLOAT", FieldSpec.model_validate({"name": "x", "dataType": "DOUBLE"})) == 2.0


def test_defaults_are_read_as_the_field_type() -> None:
    def field(kind: str, text: str) -> FieldSpec:
        return FieldSpec.model_validate({"name": "f", "dataType": kind, "defaultValue": text, "maxLength": 9})

    assert m.parse_default(field("BOOL", "True")) is True
    assert m.parse_default(field("INT16", "-4")) == -4
    assert m.parse_default(field("DOUBLE", "0.5")) == 0.5
    assert m.parse_default(field("VARCHAR", "aa")) == "aa"
    with pytest.raises(m.MigrationRefused, match="defaultValue 'x' is not a INT64"):
        m.parse_default(field("INT64", "x"))


def test_versions_follow_the_live_collection() -> None:
    assert m.next_name("docs_store", "docs_store") == "docs_store_v2"
    assert m.next_name("docs_store", "docs_store_v2") == "docs_store_v3"


def test_the_steps_create_copy_until_empty_then_switch() -> None:
    s = spec(migration="blueGreen")
    state = m.start("docs_store", s, NOW, rows_total=2500)
    assert m.next_step(state, NOW) == m.CreateTarget("docs_store_v2")
    state = m.after(state, m.CreateTarget("docs_store_v2"), NOW)
    assert m.next_step(state, NOW) == m.CopyBatch("docs_store", "docs_store_v2", None)
    state = m.after(state, m.next_step(state, NOW), NOW, copied=1000, last_key=999)
    assert m.next_step(state, NOW) == m.CopyBatch("docs_store", "docs_store_v2", 999)
    state = m.after(state, m.next_step(state, NOW), NOW, copied=0, last_key=999)
    assert state["phase"] == "Switching" and state["rowsCopied"] == 1000
    switch = m.next_step(state, NOW)
    assert switch == m.Switch("docs_store", "docs_store_v2", 999)
    state = m.after(state, switch, NOW, copied=5, last_key=1004)
    assert state["phase"] == "Succeeded" and state["rowsCopied"] == 1005
    assert not m.in_progress(state) and m.next_step(state, NOW) is None


def test_the_replaced_collection_is_dropped_only_after_the_retention() -> None:
    s = spec(migration="blueGreen", migrationRetentionSeconds=600)
    retained = m.retain([], "docs_store", s, NOW)
    assert m.expired(retained, NOW + timedelta(seconds=599)) == []
    assert m.expired(retained, NOW + timedelta(seconds=600)) == ["docs_store"]
