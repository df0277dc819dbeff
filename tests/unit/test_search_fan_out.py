"""One query over several large indexed segments is searched on several threads at once: the
answer must be the one a segment-after-segment search gives, for top-k, filtered and range
searches."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import shoal.engine.reader as reader
from shoal.engine import open_engine
from shoal.engine.requests import SearchRequest
from shoal.schema import CollectionSchema, Column, DataType, FieldSchema

DIM = 8
SEGMENT = reader.FAN_OUT_ROWS  # every segment large enough to be handed to another thread


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    eng = open_engine(Path(tmp_path_factory.mktemp("fan")), {"segment_max_rows": SEGMENT})
    schema = CollectionSchema(fields=[
        FieldSchema("id", DataType.INT64, field_id=100, is_primary=True),
        FieldSchema("cat", DataType.INT64, field_id=101),
        FieldSchema("vec", DataType.FLOAT_VECTOR, field_id=102, dim=DIM),
    ])
    eng.create_collection("", "c", schema)
    eng.create_index("", "c", "vec", "i", {"index_type": "HNSW", "metric_type": "L2", "M": "8", "efConstruction": "32"})
    rng = np.random.default_rng(5)
    for s in range(3):
        ids = np.arange(s * SEGMENT, (s + 1) * SEGMENT, dtype=np.int64)
        vecs = rng.standard_normal((SEGMENT, DIM)).astype(np.float32)
        eng.insert("", "c", "", {"id": Column(ids), "cat": Column(ids % 7), "vec": Column(vecs)}, SEGMENT)
    eng.flush("", ["c"])
    eng.load_collection("", "c")
    deadline = time.time() + 120
    while eng.describe_index("", "c", "vec")[0].state != "Finished" and time.time() < deadline:
        time.sleep(0.2)
    data = eng.datas[eng.catalog.require("", "c").collection_id]
    assert sum(1 for seg in data.segments if seg.indexes) == 3
    yield eng
    eng.close()


def _answers(eng, requests: list[SearchRequest]) -> list[tuple[list[int], list[float]]]:
    out = []
    for req in requests:
        res = eng.search("", "c", req)
        out.append(([int(x) for x in res.ids], [round(float(x), 5) for x in res.scores]))
    return out


def test_side_by_side_segments_answer_as_one_after_another(
    engine, two_threads: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(9)
    queries = rng.standard_normal((12, DIM)).astype(np.float32)
    requests = [SearchRequest(anns_field="vec", queries=q[None], topk=10, params={"ef": 64}) for q in queries[:6]]
    requests += [SearchRequest(anns_field="vec", queries=q[None], topk=5, expr="cat == 3", params={"ef": 64}) for q in queries[6:9]]
    requests += [SearchRequest(anns_field="vec", queries=q[None], topk=20, params={"radius": 2.0, "ef": 64}) for q in queries[9:]]
    calls: list[int] = []
    real = reader.fan_out
    monkeypatch.setattr(reader, "fan_out", lambda fn, items: calls.append(len(items)) or real(fn, items))
    side_by_side = _answers(engine, requests)
    assert calls and all(n == 3 for n in calls)  # every request went through the threads
    monkeypatch.setattr(reader, "FAN_OUT_ROWS", 1 << 40)
    calls.clear()
    one_after_another = _answers(engine, requests)
    assert not calls
    assert side_by_side == one_after_another
    segments_hit = {i // SEGMENT for ids, _ in side_by_side[:6] for i in ids}
    assert segments_hit == {0, 1, 2}  # answers merge hits from every segment
    assert all(i % 7 == 3 for ids, _ in side_by_side[6:9] for i in ids)
    assert all(s <= 2.0 for _, scores in side_by_side[9:] for s in scores)
