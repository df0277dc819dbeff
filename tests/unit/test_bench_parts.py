"""The benchmark's pure parts: deterministic workloads, ground truth, recall, parameters, report."""

from __future__ import annotations

import numpy as np
import pytest

from bench.config import index_spec, ivf_nlist, parse_size
from bench.report import render
from bench.workloads import MixtureOfGaussians, extra_rows, recall, synthetic


def test_synthetic_workload_is_deterministic_and_has_the_promised_selectivity() -> None:
    a = synthetic(3000, 16, 20, 10, seed=7)
    b = synthetic(3000, 16, 20, 10, seed=7)
    c = synthetic(3000, 16, 20, 10, seed=8)
    assert np.array_equal(a.vectors, b.vectors) and np.array_equal(a.cat, b.cat)
    assert not np.array_equal(a.vectors, c.vectors)
    assert set(np.unique(a.cat)) <= set(range(100))
    assert 0.005 < (a.cat == 7).mean() < 0.02
    assert 0.45 < (a.cat < 50).mean() < 0.55
    assert a.ground_truth.shape == (20, 10)


def test_rows_of_a_range_do_not_depend_on_how_they_are_asked_for() -> None:
    gen = MixtureOfGaussians(8, 16, seed=1)
    whole, _ = gen.take(0, 250_000)
    part, _ = gen.take(99_990, 100_020)  # spans a chunk boundary
    assert np.array_equal(whole[99_990:100_020], part)


def test_ground_truth_is_exact_and_filtered_truth_obeys_the_filter() -> None:
    w = synthetic(2000, 8, 5, 5, seed=3)
    d = ((w.vectors[None, :, :] - w.queries[:, None, :]) ** 2).sum(-1)
    assert np.array_equal(np.sort(w.ground_truth, 1), np.sort(np.argsort(d, 1)[:, :10], 1))
    for f in w.filters:
        truth = w.filtered_truth[f.name]
        assert f.mask[truth[truth >= 0]].all()


def test_streaming_rows_get_fresh_primary_keys() -> None:
    w = synthetic(1000, 8, 5, 5, seed=3)
    rows = extra_rows(w, 1000, 1010)
    assert [r["id"] for r in rows] == list(range(1000, 1010))
    assert rows[0]["vec"].shape == (8,)


def test_recall() -> None:
    truth = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    assert recall([[1, 2, 3, 4], [5, 6, 0, 0]], truth, k=4) == pytest.approx(0.75)
    assert recall([[4, 3, 2, 1], [8, 7, 6, 5]], truth, k=4) == 1.0


def test_index_parameters_scale_with_size() -> None:
    assert ivf_nlist(1_000_000) == 1024
    assert ivf_nlist(2000) == 32
    assert index_spec("IVF_FLAT", 2000, 32).search_params == {"nprobe": 16}
    pq = index_spec("IVF_PQ", 100_000, 128)
    assert pq.build_params == {"nlist": 1024, "m": 16, "nbits": 8}
    assert index_spec("HNSW", 10, 4).build_params == {"M": 16, "efConstruction": 200}
    assert parse_size("100k") == 100_000 and parse_size("5m") == 5_000_000 and parse_size("2000") == 2000
    with pytest.raises(ValueError):
        index_spec("NOPE", 10, 4)


def test_report_shows_errors_and_ratios() -> None:
    base = {"workload": "w", "rows": 10, "dim": 4, "metric": "L2", "build_params": {}, "search_params": {}}
    results = {
        "meta": {"started": "2026-01-01T00:00:00", "command": "python -m bench", "machine": {"cpus": "2"},
                 "versions": {"pymilvus": "3.0.2"}, "config": {"batch_nq": 100},
                 "workloads": [{"name": "w", "rows": 10, "dim": 4, "metric": "L2", "queries": 5}]},
        "floor": {"4": {"echo_payload_bytes": 144.0, "echo_p50_ms": 0.3, "echo_p99_ms": 0.5, "echo_mean_ms": 0.3,
                        "instant_p50_ms": 0.8, "instant_p99_ms": 1.0, "instant_mean_ms": 0.8, "instant_batch_qps": 4000.0}},
        "runs": [
            {**base, "system": "shoal", "index": "FLAT", "metrics": {"serial_qps": 500.0, "batch_qps": 1500.0},
             "errors": {}},
            {**base, "system": "milvus-lite", "index": "FLAT", "metrics": {"serial_qps": 250.0}, "errors": {}},
            {**base, "system": "faiss", "index": "FLAT", "metrics": {"serial_qps": 1000.0, "serial_mean_ms": 0.2,
                                                                         "batch_qps": 4000.0},
             "errors": {}},
            {**base, "system": "milvus-lite", "index": "IVF_PQ", "metrics": {},
             "errors": {"load": "MilvusException: IVF_PQ reserved", "serial": "skipped: load failed"}},
        ],
        "streaming": [],
    }
    text = render(results)
    # floor = faiss 0.2 ms + echo 0.3 ms; client floor = faiss 0.2 ms + pymilvus 0.8 ms
    assert "| FLAT | serial_qps | 500.0 | 250.0 | 1,000 | 2,000 | 1,000 | 2.00 | 0.50 | 0.25 | 0.50 |" in text
    # batches: faiss 4,000 q/s and pymilvus alone 4,000 q/s → 2,000 q/s at best through pymilvus
    assert "| FLAT | batch_qps | 1,500 | — | 4,000 | — | 2,000 | — | 0.38 | — | 0.75 |" in text
    assert "IVF_PQ reserved" in text and "| IVF_PQ | milvus-lite | ERR |" in text

    # floors timed beside Shoal's own queries replace the ones from the start of the run
    results["runs"][0]["metrics"].update(serial_echo_mean_ms=0.8, serial_instant_mean_ms=1.8,
                                         batch_instant_qps=1000.0)
    text = render(results)
    assert "| FLAT | serial_qps | 500.0 | 250.0 | 1,000 | 1,000 | 500.0 | 2.00 | 0.50 | 0.50 | 1.00 |" in text
    assert "| FLAT | batch_qps | 1,500 | — | 4,000 | — | 800.0 | — | 0.38 | — | 1.88 |" in text
    assert "### Floors beside each system" in text

    # the scalar-index phase: each figure with the index ÷ the same figure scanning
    results["runs"][0]["metrics"].update(filt1_qps=200.0, sidx_filt1_qps=300.0, count_qps=50.0, sidx_count_qps=200.0)
    results["runs"][1]["errors"]["scalar_index"] = "MilvusException: not supported"
    text = render(results)
    assert "| FLAT | shoal | 1.50 | — | — | 4.00 |" in text
    assert "| FLAT | milvus-lite | ERR | ERR |" in text


def test_timing_loops_respect_their_time_budget() -> None:
    import time

    from bench import measure

    def slow_exact(vectors: np.ndarray, flt: object) -> list[list[int]]:
        time.sleep(0.002)
        return [[0] * 10 for _ in vectors]

    queries = np.zeros((500, 4), dtype=np.float32)
    stats, found = measure.serial(slow_exact, queries, budget_s=0.0)
    assert stats["queries"] == measure.MIN_QUERIES == len(found)
    stats, found = measure.serial(slow_exact, queries[:30])
    assert stats["queries"] == 30 and stats["p50_ms"] >= 2.0
    qps = measure.concurrent(lambda: slow_exact, queries, threads=4, total_queries=500, budget_s=0.0)
    assert 0 < qps


def test_probes_beside_a_system_are_timed_apart_from_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import measure

    class Clock:  # the measurement's clock, moved only by the work below: no machine load in it
        now = 0.0

        @classmethod
        def perf_counter(cls) -> float:
            return cls.now

    monkeypatch.setattr(measure, "time", Clock)
    seen: list[int] = []

    def fast(vectors: np.ndarray, flt: object) -> list[list[int]]:
        Clock.now += 0.0001 * len(vectors)  # 0.1 ms a query
        return [[0] * 10 for _ in vectors]

    def slow_probe(vectors: np.ndarray) -> None:
        seen.append(len(vectors))
        Clock.now += 0.003

    queries = np.zeros((40, 4), dtype=np.float32)
    stats, found = measure.serial(fast, queries, beside={"echo": slow_probe})
    assert len(found) == 40 and stats["echo_p50_ms"] == pytest.approx(3.0)
    assert stats["qps"] == pytest.approx(10_000)  # the probe's 3 ms per query is not the system's
    seen.clear()
    out = measure.batch(fast, queries, nq=10, rounds=4, beside={"instant": slow_probe})
    assert seen == [10] * 4 and out["batch_instant_qps"] < 10 / 0.003 and out["batch_qps"] == pytest.approx(10_000)


def test_fortunes_corpus_is_read_whole_and_missing_corpus_says_how_to_fix(monkeypatch, tmp_path) -> None:
    from bench import corpus

    if corpus.FORTUNES_DIR.is_dir():
        texts = corpus.read_fortunes()
        assert len(texts) > 10_000 and len(set(texts)) == len(texts)
        assert all(len(t) >= 20 and "\n" not in t for t in texts[:100])
        assert corpus.read_fortunes(50) == texts[:50]
    monkeypatch.setattr(corpus, "FORTUNES_DIR", tmp_path / "absent")
    with pytest.raises(corpus.CorpusUnavailable, match="apt-get install fortunes"):
        corpus.read_fortunes()


def test_chunked_ground_truth_equals_brute_force_and_merge_keeps_the_smallest() -> None:
    from bench.scale_data import chunked_ground_truth, merge_top_k

    rng = np.random.default_rng(5)
    base = rng.normal(size=(1234, 12)).astype(np.float32)
    queries = rng.normal(size=(17, 12)).astype(np.float32)
    d = ((queries[:, None, :] - base[None, :, :]) ** 2).sum(-1)
    want = np.argsort(d, axis=1)[:, :10]
    for chunk in (100, 333, 1234, 5000):  # uneven last chunk, one chunk, fewer rows than a chunk
        assert np.array_equal(chunked_ground_truth(base, queries, k=10, chunk=chunk), want)
    dist, ids = merge_top_k(np.array([[1.0, 4.0]]), np.array([[7, 8]]),
                            np.array([[2.0, 0.5]]), np.array([[9, -1]]), 3)
    assert ids.tolist() == [[7, 9, 8]] and dist.tolist() == [[1.0, 2.0, 4.0]]


def test_plots_of_committed_vdbbench_and_concurrency_runs_are_drawn(tmp_path) -> None:
    import json
    from pathlib import Path

    from bench.plots import write_concurrency_plot, write_vdbbench_plot

    results = Path(__file__).resolve().parents[2] / "bench" / "results"
    write_vdbbench_plot(json.loads((results / "2026-12-07-vdbbench-1m-efc300" / "results.json").read_text()), tmp_path)
    write_concurrency_plot(json.loads((results / "2026-12-06-i21-cpu" / "concurrency.json").read_text()), tmp_path)
    for name in ("qps_vs_concurrency.png", "concurrency.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    write_vdbbench_plot({"runs": [{"ef": 200, "rc": 1}]}, tmp_path / "none")  # a run with no figures draws nothing
    assert not (tmp_path / "none").exists()
