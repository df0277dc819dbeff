"""MAX_SIM scoring of embedding lists (engine/embedding_list.py) against a loop over pairs."""

from __future__ import annotations

import numpy as np
import pytest

from shoal.engine.embedding_list import max_sim, max_sim_metric, split_path, top_rows
from shoal.schema import object_array


def _reference(q: np.ndarray, elems: list[list[float]], metric: str) -> float:
    total = 0.0
    for qv in q.astype(np.float64):
        scores = []
        for e in np.asarray(elems, dtype=np.float64):
            if metric == "MAX_SIM_L2":
                scores.append(float(((qv - e) ** 2).sum()))
            elif metric == "MAX_SIM_COSINE":
                scores.append(float(qv @ e / (np.linalg.norm(qv) * np.linalg.norm(e))))
            else:
                scores.append(float(qv @ e))
        total += min(scores) if metric == "MAX_SIM_L2" else max(scores)
    return total


@pytest.mark.parametrize("metric", ["MAX_SIM_IP", "MAX_SIM_COSINE", "MAX_SIM_L2"])
def test_max_sim_equals_the_pairwise_definition(metric: str) -> None:
    rng = np.random.default_rng(0)
    rows = [
        None if i % 7 == 0 else [{"e": rng.standard_normal(6).tolist()} for _ in range(i % 4)] for i in range(40)
    ]
    queries = [rng.standard_normal((m, 6)) for m in (1, 2, 5)]
    scores, has = max_sim(queries, object_array(rows), "e", metric)
    assert has.tolist() == [bool(r) for r in rows]
    for qi, q in enumerate(queries):
        for i, r in enumerate(rows):
            if r:
                assert scores[qi, i] == pytest.approx(_reference(q, [x["e"] for x in r], metric), rel=1e-5, abs=1e-5)


def test_top_rows_orders_and_pads() -> None:
    scores = np.array([[3.0, 1.0, 2.0, 5.0]], dtype=np.float32)
    ok = np.array([True, True, True, False])
    s, r = top_rows(scores, ok, 4, lower=False)
    assert r.tolist() == [[0, 2, 1, -1]] and s[0, :3].tolist() == [3.0, 2.0, 1.0]
    s, r = top_rows(scores, ok, 2, lower=True)
    assert r.tolist() == [[1, 2]]


def test_paths_and_aliases() -> None:
    assert split_path("chunks[emb]") == ("chunks", "emb")
    assert split_path("chunks") is None and split_path("a[b][c]") is None
    assert max_sim_metric("max_sim") == "MAX_SIM_COSINE" and max_sim_metric("max_sim_ip") == "MAX_SIM_IP"
