"""The NGRAM index answers `like` exactly as a scan would, and looks at few values to do it."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.expr import compile_filter
from shoal.expr.like import compile_like
from shoal.index.ngram import NGramIndex
from shoal.index.scalar import build_scalar_index
from shoal.schema import CollectionSchema, Column, DataType, FieldSchema, object_array

SCHEMA = CollectionSchema(
    fields=[
        FieldSchema("id", DataType.INT64, is_primary=True),
        FieldSchema("name", DataType.VARCHAR, max_length=32, nullable=True),
        FieldSchema("vec", DataType.FLOAT_VECTOR, dim=2),
    ]
)
PATTERNS = [
    "%ab%", "%abc%", "%b%", "ab%", "%ca", "abc", "a_c%", "%a%c%", "%ba_ab%", "%", "%%", "_", "%abcab%",
    r"%a\%b%", "%zz%", "c_b_a", "%bca",
]


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.text(alphabet="abc%", max_size=8)), min_size=1, max_size=40),
    st.sampled_from([(1, 1), (1, 3), (2, 3), (3, 3), (2, 5)]),
)
def test_ngram_like_matches_the_scan(names: list[str | None], grams: tuple[int, int]) -> None:
    n = len(names)
    batch = {
        "id": Column(np.arange(n, dtype=np.int64)),
        "name": Column(object_array([s or "" for s in names]), np.array([s is not None for s in names])),
    }
    index = NGramIndex(batch["name"], *grams)
    for pattern in PATTERNS:
        flt = compile_filter(f'name like "{pattern}"', SCHEMA)
        assert np.array_equal(flt.evaluate(batch, n), flt.evaluate(batch, n, {"name": index})), (pattern, grams)


def test_ngram_index_checks_only_the_candidates_and_scans_short_patterns() -> None:
    names = object_array([f"user-{i:06d}-{'xyz' if i % 1000 == 7 else 'abc'}" for i in range(50_000)])
    index = build_scalar_index(Column(names), {"index_type": "NGRAM", "min_gram": "2", "max_gram": "3"})
    assert isinstance(index, NGramIndex)
    infix = compile_like("%xyz%")
    candidates = index.candidates(infix)
    assert candidates is not None and len(candidates) == 50  # the values holding every gram of the run
    mask = index.like(infix)
    assert mask is not None and np.flatnonzero(mask).tolist() == [i for i in range(50_000) if i % 1000 == 7]
    two_runs = index.like(compile_like("%0120%-x%"))  # both runs must be there, in that order
    assert two_runs is not None and np.flatnonzero(two_runs).tolist() == [12007]
    assert index.like(compile_like("%x%")) is None  # a run shorter than min_gram: scanned
    assert index.compare("==", "user-000007-xyz") is None  # NGRAM answers like only
