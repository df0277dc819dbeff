"""Bulk import through `utility.do_bulk_insert`: files written by pymilvus's own `LocalBulkWriter`
in all four formats, every type, compared row by row; bad files fail by name and import nothing."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import ml_dtypes
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pymilvus import DataType, MilvusClient, connections, utility
from pymilvus.bulk_writer import BulkFileType, LocalBulkWriter
from pymilvus.client.types import BulkInsertState

RNG = np.random.default_rng(22)
ROWS = 300


@pytest.fixture(scope="module")
def client(target_server) -> MilvusClient:
    connections.connect(alias="default", uri=target_server.uri)
    yield MilvusClient(uri=target_server.uri)
    connections.disconnect("default")


def all_types(client: MilvusClient, numpy: bool, dynamic: bool = True) -> tuple[str, object]:
    name = f"imp_{uuid.uuid4().hex[:8]}"
    schema = client.create_schema(enable_dynamic_field=dynamic)
    schema.add_field("pk", DataType.INT64, is_primary=True)
    schema.add_field("flag", DataType.BOOL)
    schema.add_field("i8", DataType.INT8)
    schema.add_field("i16", DataType.INT16)
    schema.add_field("i32", DataType.INT32, nullable=True)
    schema.add_field("f32", DataType.FLOAT)
    schema.add_field("f64", DataType.DOUBLE)
    schema.add_field("text", DataType.VARCHAR, max_length=32)
    schema.add_field("doc", DataType.JSON)
    schema.add_field("fv", DataType.FLOAT_VECTOR, dim=8)
    schema.add_field("bv", DataType.BINARY_VECTOR, dim=16)
    schema.add_field("hv", DataType.FLOAT16_VECTOR, dim=4)
    schema.add_field("bfv", DataType.BFLOAT16_VECTOR, dim=4)
    schema.add_field("iv", DataType.INT8_VECTOR, dim=4)
    if not numpy:  # bulk_writer writes neither arrays nor sparse vectors as NumPy
        schema.add_field("nums", DataType.ARRAY, element_type=DataType.INT64, max_capacity=4)
        schema.add_field("sv", DataType.SPARSE_FLOAT_VECTOR)
    index = client.prepare_index_params()
    index.add_index("fv", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
    return name, schema


def make_rows(n: int, numpy: bool, start: int = 0) -> list[dict]:
    rows = []
    for i in range(start, start + n):
        row = {
            "pk": i, "flag": bool(i % 2), "i8": i % 100 - 50, "i16": i * 7, "i32": None if i % 4 == 0 and not numpy else -i,
            "f32": float(np.float32(i / 3)), "f64": i / 7, "text": f"t{i}", "doc": {"i": i, "tags": ["a", str(i)]},
            "fv": RNG.random(8, dtype=np.float32).tolist(),
            "bv": bytes(RNG.integers(0, 256, 2, dtype=np.uint8)),
            "hv": RNG.random(4).astype(np.float16),
            "bfv": RNG.random(4).astype(ml_dtypes.bfloat16),
            "iv": RNG.integers(-128, 128, 4, dtype=np.int8),
            "extra": f"e{i}",
        }
        if not numpy:
            row["nums"] = list(range(i % 4))
            keys = RNG.choice(50, 3, replace=False)
            row["sv"] = {int(k): float(np.float32(v)) for k, v in zip(keys, RNG.random(3), strict=True)}
        rows.append(row)
    return rows


def write_files(tmp: Path, schema: object, rows: list[dict], file_type: BulkFileType) -> list[list[str]]:
    with LocalBulkWriter(schema=schema, local_path=str(tmp), file_type=file_type) as writer:
        for row in rows:
            writer.append_row(dict(row))  # the writer converts values in place
        writer.commit()
        return writer.batch_files


def wait_import(task_id: int, timeout: float = 120.0) -> BulkInsertState:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = utility.get_bulk_insert_state(task_id)
        if state.state in (BulkInsertState.ImportCompleted, BulkInsertState.ImportFailed):
            return state
        time.sleep(0.1)
    raise AssertionError(f"import {task_id} did not finish in {timeout}s")


def _bytes(v: object) -> bytes:
    return bytes(v[0] if isinstance(v, list) else v)


def assert_same_rows(client: MilvusClient, name: str, rows: list[dict], numpy: bool) -> None:
    got = {r["pk"]: r for r in client.query(name, filter="pk >= 0", output_fields=["*"])}
    assert len(got) == len(rows)
    for src in rows:
        r = got[src["pk"]]
        for key in ("flag", "i8", "i16", "i32", "f64", "text", "doc", "extra"):
            assert r[key] == src[key], (key, r[key], src[key])
        assert np.float32(r["f32"]) == np.float32(src["f32"])
        assert np.array_equal(np.asarray(r["fv"], np.float32), np.asarray(src["fv"], np.float32))
        assert _bytes(r["bv"]) == src["bv"]
        assert _bytes(r["hv"]) == src["hv"].tobytes()
        assert _bytes(r["bfv"]) == src["bfv"].tobytes()
        assert _bytes(r["iv"]) == src["iv"].tobytes()
        if not numpy:
            assert r["nums"] == src["nums"]
            assert {int(k): np.float32(v) for k, v in dict(r["sv"]).items()} == {
                k: np.float32(v) for k, v in src["sv"].items()}


@pytest.mark.parametrize("file_type", [BulkFileType.PARQUET, BulkFileType.JSON, BulkFileType.CSV, BulkFileType.NUMPY])
def test_bulk_writer_files_import_every_type_row_for_row(client: MilvusClient, tmp_path: Path, file_type) -> None:
    numpy = file_type == BulkFileType.NUMPY
    name, schema = all_types(client, numpy)
    rows = make_rows(ROWS, numpy)
    batches = write_files(tmp_path, schema, rows, file_type)
    assert len(batches) == 1
    task = utility.do_bulk_insert(name, files=batches[0])
    state = wait_import(task)
    assert state.state == BulkInsertState.ImportCompleted, state.failed_reason
    assert state.row_count == ROWS and state.infos["progress_percent"] == "100"
    assert_same_rows(client, name, rows, numpy)
    hits = client.search(name, [rows[7]["fv"]], anns_field="fv", limit=1)
    assert hits[0][0]["pk"] == 7
    tasks = utility.list_bulk_insert_tasks(collection_name=name)
    assert [t.task_id for t in tasks] == [task]


def test_auto_id_and_partition_key_route_every_row(client: MilvusClient, tmp_path: Path) -> None:
    name = f"imp_{uuid.uuid4().hex[:8]}"
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True, auto_id=True)
    schema.add_field("tenant", DataType.VARCHAR, max_length=16, is_partition_key=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    index = client.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index, num_partitions=4)
    rows = [{"tenant": f"t{i % 5}", "v": [float(i)] * 4} for i in range(500)]
    batches = write_files(tmp_path, schema, rows, BulkFileType.PARQUET)
    state = wait_import(utility.do_bulk_insert(name, files=batches[0]))
    assert state.state == BulkInsertState.ImportCompleted, state.failed_reason
    got = client.query(name, filter="id > 0", output_fields=["tenant", "v"])
    assert len({r["id"] for r in got}) == 500
    assert sorted(r["v"][0] for r in got) == [float(i) for i in range(500)]
    for t in range(5):
        # a filter on the partition key reads only its partition: every row must be where it routes
        assert len(client.query(name, filter=f'tenant == "t{t}"', output_fields=["id"])) == 100


def test_import_into_a_named_partition(client: MilvusClient, tmp_path: Path) -> None:
    name, schema = all_types(client, numpy=True)
    client.create_partition(name, "p1")
    rows = make_rows(20, numpy=True)
    batches = write_files(tmp_path, schema, rows, BulkFileType.NUMPY)
    state = wait_import(utility.do_bulk_insert(name, partition_name="p1", files=batches[0]))
    assert state.state == BulkInsertState.ImportCompleted, state.failed_reason
    assert len(client.query(name, filter="pk >= 0", partition_names=["p1"], output_fields=["pk"])) == 20
    assert client.query(name, filter="pk >= 0", partition_names=["_default"], output_fields=["pk"]) == []


def _bad_files(tmp: Path, schema: object) -> dict[str, tuple[list[str], list[str]]]:
    """name -> (files, words the failure must contain)."""
    good = make_rows(50, numpy=False, start=1000)
    out: dict[str, tuple[list[str], list[str]]] = {}
    parquet = write_files(tmp / "p", schema, good, BulkFileType.PARQUET)[0][0]
    table = pq.read_table(parquet)
    short = pa.array([[0.5] * 7 for _ in range(table.num_rows)], type=pa.list_(pa.float32()))
    wrong_dim = tmp / "wrong_dim.parquet"
    pq.write_table(table.set_column(table.schema.get_field_index("fv"), "fv", short), wrong_dim)
    out["wrong dim"] = ([str(wrong_dim)], ["wrong_dim.parquet", "fv", "8"])
    rows = json.loads(Path(write_files(tmp / "j", schema, good, BulkFileType.JSON)[0][0]).read_text())["rows"]
    del rows[17]["text"]
    missing = tmp / "missing_field.json"
    missing.write_text(json.dumps({"rows": rows}))
    out["missing field"] = ([str(missing)], ["missing_field.json", "row 18", "text"])
    truncated = tmp / "bad.json"
    truncated.write_text(json.dumps({"rows": rows})[:-40])
    out["bad json"] = ([str(truncated)], ["bad.json", "invalid JSON"])
    csv_path = Path(write_files(tmp / "c", schema, good, BulkFileType.CSV)[0][0])
    lines = csv_path.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[5].split(",")
    cells[header.index("i16")] = "abc"
    lines[5] = ",".join(cells)
    wrong_type = tmp / "wrong_type.csv"
    wrong_type.write_text("\n".join(lines) + "\n")
    out["wrong type"] = ([str(wrong_type)], ["wrong_type.csv", "row 5", "i16"])
    rows = json.loads(Path(write_files(tmp / "j2", schema, good, BulkFileType.JSON)[0][0]).read_text())["rows"]
    rows[30]["i8"] = 1000
    out_of_range = tmp / "out_of_range.json"
    out_of_range.write_text(json.dumps({"rows": rows}))
    out["out of range"] = ([str(out_of_range)], ["out_of_range.json", "row 31", "i8"])
    return out


def test_malformed_files_fail_by_name_and_leave_the_collection_unchanged(client: MilvusClient, tmp_path: Path) -> None:
    name, schema = all_types(client, numpy=False)
    rows = make_rows(10, numpy=False)
    client.insert(name, rows)
    for case, (files, words) in _bad_files(tmp_path, schema).items():
        state = wait_import(utility.do_bulk_insert(name, files=files))
        assert state.state == BulkInsertState.ImportFailed, case
        for word in words:
            assert word in state.failed_reason, (case, state.failed_reason)
        assert state.row_count == 0
        assert client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"] == 10, case
    assert_same_rows(client, name, rows, numpy=False)


def test_a_numpy_group_with_one_bad_file_imports_nothing(client: MilvusClient, tmp_path: Path) -> None:
    name, schema = all_types(client, numpy=True)
    files = write_files(tmp_path, schema, make_rows(40, numpy=True), BulkFileType.NUMPY)[0]
    fv = next(f for f in files if f.endswith("fv.npy"))
    np.save(fv, np.zeros((39, 8), dtype=np.float32))  # one row short
    state = wait_import(utility.do_bulk_insert(name, files=files))
    assert state.state == BulkInsertState.ImportFailed and "row counts" in state.failed_reason
    assert client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"] == 0


def test_unknown_file_types_and_missing_collections_are_refused(client: MilvusClient, tmp_path: Path) -> None:
    from pymilvus import MilvusException

    name, _ = all_types(client, numpy=True)
    with pytest.raises(MilvusException, match="unsupported import files"):
        utility.do_bulk_insert(name, files=[str(tmp_path / "x.txt")])
    with pytest.raises(MilvusException):
        utility.do_bulk_insert("no_such_collection_xyz", files=[str(tmp_path / "x.parquet")])
    with pytest.raises(MilvusException, match="object storage") as e:
        utility.do_bulk_insert(name, files=["s3://bucket/1.parquet"])
    assert e.value.code == 10


def test_imported_keys_next_to_existing_keys_behave_as_on_standalone(client: MilvusClient, tmp_path: Path) -> None:
    """An import is not deduplicated against rows already there (as Milvus): both targets answer alike."""
    name, schema = all_types(client, numpy=False)
    old = make_rows(10, numpy=False)
    client.insert(name, old)
    new = make_rows(10, numpy=False, start=5)
    for r in new:
        r["text"] = f"new{r['pk']}"
    state = wait_import(utility.do_bulk_insert(name, files=write_files(tmp_path, schema, new, BulkFileType.PARQUET)[0]))
    assert state.state == BulkInsertState.ImportCompleted, state.failed_reason
    got = sorted((r["pk"], r["text"]) for r in client.query(name, filter="pk >= 0", output_fields=["text"]))
    assert got == sorted([(r["pk"], r["text"]) for r in old] + [(r["pk"], r["text"]) for r in new])
    assert client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"] == 20
    client.delete(name, ids=[5, 12])  # a delete reaches every row of its keys, imported or not
    assert client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"] == 17
    assert client.query(name, filter="pk in [5, 12]", output_fields=["pk"]) == []
