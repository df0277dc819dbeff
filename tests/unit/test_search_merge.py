"""Merging the segments' top-k answers: the order faiss gave is kept, any other order is sorted."""

import numpy as np

from shoal.engine.reader import _merge_top_k


def _one_block(scores: list[list[float]], rows: list[list[int]]) -> list[tuple[np.ndarray, np.ndarray, int]]:
    return [(np.array(scores, dtype=np.float32), np.array(rows, dtype=np.int64), 3)]


def test_one_segment_in_order_comes_back_as_it_is() -> None:
    hits = _merge_top_k(_one_block([[0.1, 0.2, 0.5], [0.3, 0.4, 9.0]], [[7, 8, 9], [1, 2, -1]]), 2, 3, False)
    assert hits[0].rows.tolist() == [7, 8, 9]
    assert hits[0].scores.tolist() == np.array([0.1, 0.2, 0.5], dtype=np.float32).tolist()
    assert hits[0].segs.tolist() == [3, 3, 3]
    assert hits[1].rows.tolist() == [1, 2]  # the padding row is not a hit


def test_one_segment_out_of_order_is_sorted() -> None:
    hits = _merge_top_k(_one_block([[0.5, 0.1, 0.2]], [[9, 7, 8]]), 1, 3, False)
    assert hits[0].rows.tolist() == [7, 8, 9]
    desc = _merge_top_k(_one_block([[0.1, 0.5, 0.2]], [[7, 9, 8]]), 1, 3, True)  # IP / COSINE: higher first
    assert desc[0].rows.tolist() == [9, 8, 7]


def test_padding_before_a_hit_sorts_last_and_ties_keep_their_order() -> None:
    hits = _merge_top_k(_one_block([[0.0, 0.3, 0.3]], [[-1, 5, 4]]), 1, 3, False)
    assert hits[0].rows.tolist() == [5, 4]


def test_a_block_wider_than_k_is_cut_to_k() -> None:
    hits = _merge_top_k(_one_block([[0.1, 0.2, 0.3, 0.4]], [[1, 2, 3, 4]]), 1, 2, False)
    assert hits[0].rows.tolist() == [1, 2]


def test_two_segments_interleave() -> None:
    blocks = [
        (np.array([[0.1, 0.4]], np.float32), np.array([[1, 2]], np.int64), 0),
        (np.array([[0.2, 0.3]], np.float32), np.array([[5, 6]], np.int64), 1),
    ]
    hits = _merge_top_k(blocks, 1, 3, False)
    assert hits[0].rows.tolist() == [1, 5, 6]
    assert hits[0].segs.tolist() == [0, 1, 1]
