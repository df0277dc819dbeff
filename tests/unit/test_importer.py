"""Bulk import driven through the engine: progress along the way, atomic commit, restart."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shoal.engine import import_formats, importer, open_engine
from shoal.engine.requests import QueryRequest
from shoal.schema import CollectionSchema, DataType, FieldSchema

DIM = 4


def _schema() -> CollectionSchema:
    return CollectionSchema(fields=[
        FieldSchema("id", DataType.INT64, field_id=100, is_primary=True),
        FieldSchema("vec", DataType.FLOAT_VECTOR, field_id=101, dim=DIM),
    ])


def _parquet(path: Path, start: int, n: int) -> str:
    ids = np.arange(start, start + n, dtype=np.int64)
    vecs = pa.array(np.repeat(ids[:, None], DIM, axis=1).astype(np.float32).tolist(), type=pa.list_(pa.float32()))
    pq.write_table(pa.table({"id": ids, "vec": vecs}), path, row_group_size=100)
    return str(path)


def _wait(eng, job_id: int) -> importer.ImportJob:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = eng.import_job(job_id)
        if job.state in (importer.COMPLETED, importer.FAILED):
            return job
        time.sleep(0.02)
    raise AssertionError("import did not finish")


def _count(eng, name: str) -> int:
    return eng.query("default", name, QueryRequest(output_fields=["count(*)"])).count


@pytest.fixture
def eng(tmp_path: Path):
    e = open_engine(tmp_path / "data", {"segment_max_rows": 700})
    e.create_collection("default", "c", _schema())
    e.load_collection("default", "c")
    yield e
    e.close()


def test_progress_is_reported_chunk_by_chunk_and_rows_appear_only_at_the_end(
    eng, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(import_formats, "CHUNK_ROWS", 100)
    seen: list[tuple[int, int, int]] = []
    real = importer.read_group

    def watched(paths, schema, options):
        for chunk in real(paths, schema, options):
            job = next(iter(eng.importer._jobs.values()))
            seen.append((job.progress, job.imported_rows, _count(eng, "c")))
            yield chunk

    monkeypatch.setattr(importer, "read_group", watched)
    files = [[_parquet(tmp_path / "a.parquet", 0, 1000)], [_parquet(tmp_path / "b.parquet", 1000, 1000)]]
    job = _wait(eng, eng.import_files("default", "c", "", files, {}).job_id)
    assert job.state == importer.COMPLETED, job.reason
    assert job.imported_rows == job.total_rows == 2000 and job.progress == 100
    assert len(seen) == 20
    progress = [p for p, _, _ in seen]
    assert progress == sorted(progress) and 0 < progress[10] < progress[-1] < 100
    assert [r for _, r, _ in seen] == list(range(0, 2000, 100))
    assert {c for _, _, c in seen} == {0}  # nothing visible before the commit
    assert _count(eng, "c") == 2000
    assert len(job.segment_ids) == 3  # cut at the seal size (700 rows)


def test_a_failed_group_leaves_no_rows_and_no_files(eng, tmp_path: Path) -> None:
    good = _parquet(tmp_path / "good.parquet", 0, 500)
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"id": np.arange(3, dtype=np.int64)}), bad)
    job = _wait(eng, eng.import_files("default", "c", "", [[good], [str(bad)]], {}).job_id)
    assert job.state == importer.FAILED and "bad.parquet" in job.reason and "vec" in job.reason
    assert _count(eng, "c") == 0
    segments = eng.root / "segments"
    assert not segments.exists() or not any(p.is_dir() for p in segments.rglob("*") if p.name.isdigit())


def test_imported_rows_survive_a_restart_and_take_deletes(tmp_path: Path) -> None:
    e = open_engine(tmp_path / "data")
    e.create_collection("default", "c", _schema())
    e.load_collection("default", "c")
    job = _wait(e, e.import_files("default", "c", "", [[_parquet(tmp_path / "a.parquet", 0, 300)]], {}).job_id)
    assert job.state == importer.COMPLETED
    e.delete("default", "c", "", "id < 10")
    e.close()
    e = open_engine(tmp_path / "data")
    try:
        assert _count(e, "c") == 290
        got = e.query("default", "c", QueryRequest(expr="id == 42", output_fields=["vec"]))
        assert got.fields["vec"].values.tolist() == [[42.0] * DIM]
    finally:
        e.close()
