"""normalize_insert: a decoded batch checked and normalized against its schema."""

from __future__ import annotations

import numpy as np
import pytest

from shoal.engine.validation import normalize_insert
from shoal.errors import ShoalError
from shoal.schema import DYNAMIC_FIELD, CollectionSchema, Column, DataType, FieldSchema, object_array


def schema(dynamic: bool = False, auto_id: bool = False) -> CollectionSchema:
    return CollectionSchema(
        [
            FieldSchema("id", DataType.INT64, field_id=100, is_primary=True, auto_id=auto_id),
            FieldSchema("age", DataType.INT8, field_id=101, nullable=True),
            FieldSchema("city", DataType.VARCHAR, field_id=102, max_length=5, default_value="none"),
            FieldSchema("score", DataType.FLOAT, field_id=103),
            FieldSchema("tags", DataType.ARRAY, field_id=104, element_type=DataType.INT16, max_capacity=2),
            FieldSchema("v", DataType.FLOAT_VECTOR, field_id=105, dim=2),
            FieldSchema("sv", DataType.SPARSE_FLOAT_VECTOR, field_id=106, nullable=True),
        ],
        enable_dynamic_field=dynamic,
        auto_id=auto_id,
    )


def batch(n: int = 2, **override: Column) -> dict[str, Column]:
    b = {
        "id": Column(np.arange(n, dtype=np.int64)),
        "age": Column(np.arange(n, dtype=np.int64)),
        "city": Column(object_array(["oslo"] * n)),
        "score": Column(np.ones(n, dtype=np.float64)),
        "tags": Column(object_array([[1, 2]] * n)),
        "v": Column(np.zeros((n, 2), dtype=np.float32)),
    }
    b.update(override)
    return {k: v for k, v in b.items() if v is not None}


def error(s: CollectionSchema, b: dict, n: int = 2, **kw: bool) -> ShoalError:
    with pytest.raises(ShoalError) as e:
        normalize_insert(s, b, n, **kw)
    assert e.value.code == 1100
    return e.value


def test_good_batch_is_cast_and_completed() -> None:
    out = normalize_insert(schema(), batch(), 2)
    assert out["age"].values.dtype == np.int8 and out["score"].values.dtype == np.float32
    assert out["sv"].valid.tolist() == [False, False]  # missing nullable: all null
    assert out["tags"].values.tolist() == [[1, 2], [1, 2]]


def test_defaults_fill_missing_and_null_values() -> None:
    out = normalize_insert(schema(), batch(city=None), 2)
    assert out["city"].values.tolist() == ["none", "none"] and out["city"].valid is None
    nulls = Column(object_array(["rome", ""]), np.array([True, False]))
    out = normalize_insert(schema(), batch(city=nulls), 2)
    assert out["city"].values.tolist() == ["rome", "none"]


def test_null_in_non_nullable_field_names_it() -> None:
    e = error(schema(), batch(score=Column(np.ones(2), np.array([True, False]))))
    assert "score" in e.message


def test_missing_required_field_and_primary_key() -> None:
    assert "score" in error(schema(), batch(score=None)).message
    assert "id" in error(schema(), batch(id=None)).message


def test_auto_id_rejects_given_keys_but_upsert_needs_them() -> None:
    s = schema(auto_id=True)
    assert "id" in error(s, batch()).message
    out = normalize_insert(s, batch(id=None), 2)
    assert "id" not in out
    assert normalize_insert(s, batch(), 2, for_upsert=True)["id"].values.tolist() == [0, 1]
    assert "id" in error(s, batch(id=None), for_upsert=True).message


def test_unknown_fields_without_and_with_dynamic_field() -> None:
    extra = batch(color=Column(object_array(["red", "blue"])))
    assert "color" in error(schema(), extra).message
    out = normalize_insert(schema(dynamic=True), extra, 2)
    assert out[DYNAMIC_FIELD].values.tolist() == [{"color": "red"}, {"color": "blue"}]
    bad_meta = batch(**{DYNAMIC_FIELD: Column(object_array([[1], {"a": 1}]))})
    assert "$meta" in error(schema(dynamic=True), bad_meta).message


def test_vector_dim_varchar_length_and_array_checks() -> None:
    assert "dim" in error(schema(), batch(v=Column(np.zeros((2, 3), np.float32)))).message
    e = error(schema(), batch(city=Column(object_array(["oslo", "toolong"]))))
    assert e.message == "length of varchar field city exceeds max length, row number: 1, length: 7, max length: 5"
    assert "expected VARCHAR, got int" in error(schema(), batch(city=Column(object_array(["oslo", 5])))).message
    assert object_array(["a", None]).tolist() == ["a", None] and object_array([[1, 2], [3]])[0] == [1, 2]
    assert "capacity" in error(schema(), batch(tags=Column(object_array([[1, 2, 3], []])))).message
    assert "tags" in error(schema(), batch(tags=Column(object_array([["a"], []])))).message
    assert "tags" in error(schema(), batch(tags=Column(object_array([[70000], []])))).message


def test_numeric_range_and_type_checks() -> None:
    assert "age" in error(schema(), batch(age=Column(np.array([1, 300])))).message
    assert "score" in error(schema(), batch(score=Column(object_array(["x", "y"])))).message
    assert "v" in error(schema(), batch(v=Column(np.array([[np.nan, 0], [0, 0]], np.float32)))).message


def test_sparse_rows_are_checked() -> None:
    good = normalize_insert(schema(), batch(sv=Column(object_array([{1: 0.5}, {}]))), 2)
    assert good["sv"].values.tolist() == [{1: 0.5}, {}]
    assert "sv" in error(schema(), batch(sv=Column(object_array([{-1: 0.5}, {}])))).message


def test_row_count_mismatch() -> None:
    assert "id" in error(schema(), batch(id=Column(np.arange(3)))).message


def test_partial_upsert_leaves_absent_fields_absent() -> None:
    out = normalize_insert(schema(), {"id": Column(np.arange(2)), "score": Column(np.ones(2))}, 2,
                           for_upsert=True, partial=True)
    assert set(out) == {"id", "score"}
