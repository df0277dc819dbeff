"""Element-level search's selection: element offsets, ranking over segments, range bounds,
grouping by entity (group_size, strict) and the collapse a hybrid search fuses."""

from __future__ import annotations

import numpy as np

from shoal.engine.element_search import (
    Candidates,
    best_elements,
    collapse_to_rows,
    element_rows,
    element_scores,
    page,
    segment_candidates,
)
from shoal.expr import compile_filter
from shoal.schema import CollectionSchema, DataType, FieldSchema, object_array

STRUCT = FieldSchema(
    "chunks", DataType.ARRAY_OF_STRUCT, max_capacity=4,
    struct_fields=[FieldSchema("n", DataType.INT64), FieldSchema("emb", DataType.FLOAT_VECTOR, dim=2)],
)
SCHEMA = CollectionSchema(fields=[FieldSchema("id", DataType.INT64, is_primary=True), STRUCT])


def test_element_rows_and_offsets() -> None:
    rows, offsets = element_rows(np.array([2, 0, 3]))
    assert rows.tolist() == [0, 0, 2, 2, 2] and offsets.tolist() == [0, 1, 0, 1, 2]


def test_scores_follow_milvus_metrics() -> None:
    q = np.array([[1.0, 0.0]], dtype=np.float32)
    e = np.array([[2.0, 0.0], [0.0, 3.0]], dtype=np.float32)
    assert element_scores(q, e, "IP").tolist() == [[2.0, 0.0]]
    assert element_scores(q, e, "COSINE").tolist() == [[1.0, 0.0]]
    assert element_scores(q, e, "L2").tolist() == [[1.0, 10.0]]  # squared distances


def _parts() -> list[Candidates]:
    # segment 0: row 0 has elements scoring .9 and .5, row 1 one scoring .8; segment 1: row 0 scores .7, .95
    return [
        Candidates(0, np.array([0, 0, 1]), np.array([0, 1, 0]), np.array([[0.9, 0.5, 0.8]])),
        Candidates(1, np.array([0, 0]), np.array([0, 1]), np.array([[0.7, 0.95]])),
    ]


def test_best_elements_rank_over_segments_and_keep_offsets() -> None:
    hits = best_elements(_parts(), 0, "IP", 3)
    assert list(zip(hits.segs.tolist(), hits.rows.tolist(), hits.offsets.tolist(), strict=True)) == [
        (1, 0, 1), (0, 0, 0), (0, 1, 0)
    ]
    ranged = best_elements(_parts(), 0, "IP", 10, radius=0.6, range_filter=0.9)
    assert np.allclose(ranged.scores, [0.9, 0.8, 0.7])


def test_grouping_by_entity_and_collapse() -> None:
    grouped = best_elements(_parts(), 0, "IP", 2, group_size=2)
    assert list(zip(grouped.segs.tolist(), grouped.offsets.tolist(), strict=True)) == [(1, 1), (1, 0), (0, 0), (0, 1)]
    strict = best_elements(_parts(), 0, "IP", 5, group_size=2, strict=True)
    assert sorted(set(zip(strict.segs.tolist(), strict.rows.tolist(), strict=True))) == [(0, 0), (1, 0)]
    assert page(grouped, 1, 1, 2).segs.tolist() == [0, 0]  # the second entity, both its elements
    collapsed = collapse_to_rows(best_elements(_parts(), 0, "IP", 5))
    assert list(zip(collapsed.segs.tolist(), collapsed.rows.tolist(), collapsed.offsets.tolist(), strict=True)) == [
        (1, 0, 1), (0, 0, 0), (0, 1, 0)
    ]


def test_element_filter_picks_the_elements_and_null_rows_have_none() -> None:
    values = object_array([
        [{"n": 1, "emb": [1.0, 0.0]}, {"n": 5, "emb": [0.5, 0.0]}],
        None,
        [{"n": 7, "emb": [0.1, 0.0]}],
    ])
    flt = compile_filter("id >= 0 && element_filter(chunks, $[n] > 2)", SCHEMA)
    part = segment_candidates(0, values, np.array([True, False, True]), 3, None, "emb",
                              np.array([[1.0, 0.0]], np.float32), "IP", flt.element_filter("chunks"))
    assert part is not None
    assert part.rows.tolist() == [0, 2] and part.offsets.tolist() == [1, 0]
    assert np.allclose(part.scores, [[0.5, 0.1]])
