"""Codec round trips: every Milvus data type comes back bit-exact, nulls included."""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from shoal.errors import ShoalError
from shoal.schema import Batch, Column, object_array
from shoal.storage.codec import decode_batch, decode_record, encode_batch, encode_record


def same(a: Any, b: Any) -> bool:
    """Structural equality where floats compare by their bits (NaN == NaN, 0.0 != -0.0)."""
    if isinstance(a, float) or isinstance(b, float):
        return type(a) is type(b) and struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, dict):
        return (
            isinstance(b, dict)
            and list(a) == list(b)
            and all(type(k) is type(kb) for k, kb in zip(a, b, strict=True))
            and all(same(a[k], b[k]) for k in a)
        )
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def assert_same_batch(got: Batch, want: Batch) -> None:
    assert list(got) == list(want)
    for name, col in want.items():
        out = got[name]
        if col.values.dtype.kind == "O":
            assert out.values.dtype.kind == "O", name
            assert out.values.shape == col.values.shape, name
            for x, y in zip(out.values, col.values, strict=True):
                assert same(x, y), (name, x, y)
        else:
            assert out.values.dtype == col.values.dtype, name
            assert out.values.shape == col.values.shape, name
            assert out.values.tobytes() == col.values.tobytes(), name
        if col.valid is None:
            assert out.valid is None, name
        else:
            assert out.valid is not None and out.valid.tolist() == list(col.valid), name


def every_type_batch() -> Batch:
    rng = np.random.default_rng(7)
    n = 5
    f32 = rng.standard_normal((n, 8)).astype(np.float32)
    f32[0, 0] = np.nan
    f32[1, 1] = -0.0
    bf16 = (f32.view(np.uint32) >> 16).astype(np.uint16)
    nulls = np.array([True, False, True, True, False])
    return {
        "pk": Column(np.arange(10**15, 10**15 + n, dtype=np.int64)),
        "flag": Column(np.array([True, False, True, False, True])),
        "i8": Column(np.array([-128, 127, 0, 1, -1], dtype=np.int8)),
        "i16": Column(np.array([-32768, 32767, 0, 5, -5], dtype=np.int16)),
        "i32": Column(np.array([-(2**31), 2**31 - 1, 0, 7, -7], dtype=np.int32)),
        "f": Column(np.array([1.5, np.inf, -np.inf, np.nan, -0.0], dtype=np.float32)),
        "d": Column(np.array([math.pi, 1e308, 5e-324, np.nan, -0.0], dtype=np.float64)),
        "name": Column(object_array(["ascii", "ünïcødé ✓", "", "emoji 🐟 lone \ud800", "x" * 1000])),
        "nullable_name": Column(object_array(["a", "", "c", "d", ""]), nulls),
        "nullable_int": Column(np.array([1, 0, 3, 4, 0], dtype=np.int64), nulls),
        "doc": Column(
            object_array(
                [
                    {"a": 1, "b": [1, 2.5, "x", None, True], "c": {"d": {"e": []}}},
                    [1, [2, [3, {"k": "v"}]]],
                    "just a string",
                    3.25,
                    None,
                ]
            )
        ),
        "nullable_doc": Column(object_array([{"k": 1}, None, {"k": 3}, {}, None]), nulls),
        "ints": Column(object_array([[1, 2, 3], [], [2**62], [-1], [0, 0]])),
        "floats": Column(object_array([[1.5, -0.0], [float("inf")], [], [1e-300], [0.1]])),
        "bools": Column(object_array([[True, False], [], [True], [False], []])),
        "strs": Column(object_array([["a", "b"], [], ["ü"], [""], ["x", "y", "z"]])),
        "vec": Column(f32),
        "vec16": Column(f32.astype(np.float16)),
        "vecbf16": Column(bf16),
        "vec8": Column(rng.integers(-128, 128, (n, 8), dtype=np.int8)),
        "bin": Column(rng.integers(0, 256, (n, 2), dtype=np.uint8)),
        "sparse": Column(
            object_array(
                [
                    {0: 0.5, 7: 1.25, 2**32 - 1: -3.0},
                    {},
                    {3: float(np.float32(0.1))},
                    {1: 1.0},
                    {10: float("nan")},
                ]
            )
        ),
        "nullable_sparse": Column(object_array([{1: 0.5}, None, {2: 2.0}, {3: 3.0}, None]), nulls),
    }


def test_every_data_type_round_trips_bit_exact() -> None:
    batch = every_type_batch()
    assert_same_batch(decode_batch(encode_batch(batch)), batch)


def test_memoryview_input_and_empty_batches() -> None:
    batch = every_type_batch()
    assert_same_batch(decode_batch(memoryview(encode_batch(batch))), batch)
    assert decode_batch(encode_batch({})) == {}
    empty = {"v": Column(np.zeros((0, 4), np.float32)), "s": Column(object_array([]))}
    assert_same_batch(decode_batch(encode_batch(empty)), empty)


def test_numeric_columns_decode_without_copying() -> None:
    vec = np.arange(64, dtype=np.float32).reshape(8, 8)
    buf = bytearray(encode_batch({"vec": Column(vec)}))
    decoded = decode_batch(buf)["vec"].values
    assert np.shares_memory(decoded, np.frombuffer(buf, np.uint8))
    assert not decode_batch(bytes(buf))["vec"].values.flags.writeable


def test_sparse_values_that_are_not_float32_keep_full_precision() -> None:
    batch = {"sp": Column(object_array([{1: 0.1, 2**40: 1 / 3}]))}
    assert decode_batch(encode_batch(batch))["sp"].values[0] == {1: 0.1, 2**40: 1 / 3}


def test_big_endian_and_non_contiguous_arrays_are_normalised() -> None:
    big = np.arange(6, dtype=">i4")
    strided = np.arange(20, dtype=np.float64).reshape(4, 5)[:, ::2]
    out = decode_batch(encode_batch({"big": Column(big), "strided": Column(strided)}))
    assert out["big"].values.tolist() == big.tolist()
    assert out["strided"].values.tolist() == strided.tolist()


def test_records_carry_batches_arrays_bytes_and_plain_values() -> None:
    batch = every_type_batch()
    record = {
        "op": "insert",
        "collection": 42,
        "ts": 2**62 + 5,
        "partition": None,
        "batch": batch,
        "pks": np.array([3, 1, 2], dtype=np.int64),
        "names": object_array(["a", "b"]),
        "blob": b"\x00\xff raw",
        "nested": {"list": [1, 2.5, {"deep": True}], "empty": {}},
    }
    out = decode_record(encode_record(record))
    assert list(out) == list(record)
    assert out["op"] == "insert" and out["collection"] == 42 and out["ts"] == 2**62 + 5
    assert out["partition"] is None
    assert_same_batch(out["batch"], batch)
    assert out["pks"].dtype == np.int64 and out["pks"].tolist() == [3, 1, 2]
    assert out["names"].tolist() == ["a", "b"]
    assert out["blob"] == b"\x00\xff raw"
    assert out["nested"] == {"list": [1, 2.5, {"deep": True}], "empty": {}}


@pytest.mark.parametrize(
    "column",
    [
        object_array([{1, 2}]),  # a set is not JSON
        object_array([{1: "not a float"}]),  # sparse with a non-numeric value
        np.array(["2020-01-01"], dtype="datetime64[D]"),
    ],
)
def test_unencodable_columns_are_rejected_with_invalid_parameter(column: np.ndarray) -> None:
    with pytest.raises(ShoalError) as err:
        encode_batch({"c": Column(column)})
    assert err.value.code == 1100


def test_damaged_input_raises_shoal_error_never_crashes() -> None:
    data = encode_batch(every_type_batch())
    for cut in range(0, len(data), max(1, len(data) // 200)):
        with pytest.raises(ShoalError):
            decode_batch(data[:cut])
    with pytest.raises(ShoalError):
        decode_batch(b"XXXX" + data[4:])
    with pytest.raises(ShoalError):
        decode_record(data)  # a batch is not a record


numeric_dtypes = st.sampled_from(
    [np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.float16, np.float32, np.float64]
)


@settings(max_examples=60, deadline=None)
@given(
    arr=numeric_dtypes.flatmap(
        lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=12))
    ),
    data=st.data(),
)
def test_any_numeric_or_vector_column_round_trips(arr: np.ndarray, data: st.DataObject) -> None:
    valid = data.draw(st.none() | hnp.arrays(np.bool_, arr.shape[0]))
    batch = {"c": Column(arr, valid)}
    assert_same_batch(decode_batch(encode_batch(batch)), batch)


# What json.loads can produce: JSON text has a single NaN, so no NaN sign or payload bits.
json_floats = st.floats(allow_nan=False) | st.just(float("nan"))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | json_floats | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(json_values, max_size=8))
def test_any_json_column_round_trips(rows: list[Any]) -> None:
    batch = {"j": Column(object_array(rows))}
    assert_same_batch(decode_batch(encode_batch(batch)), batch)


sparse_rows = st.none() | st.dictionaries(
    st.integers(0, 2**32 - 1),
    st.floats(width=32).map(float),
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(sparse_rows, min_size=1, max_size=8).filter(lambda r: any(x is not None for x in r)))
def test_any_sparse_column_round_trips(rows: list[dict[int, float] | None]) -> None:
    batch = {"s": Column(object_array(rows))}
    assert_same_batch(decode_batch(encode_batch(batch)), batch)


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(st.text(), max_size=10))
def test_any_varchar_column_round_trips(rows: list[str]) -> None:
    batch = {"s": Column(object_array(rows))}
    assert_same_batch(decode_batch(encode_batch(batch)), batch)
