"""Milvus's RESTful API v2 on the HTTP port, spoken with plain HTTP (requests), every endpoint family;
one scenario run over gRPC and REST with the answers compared; pymilvus's bulk_import helpers."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import requests
from pymilvus import DataType, MilvusClient
from pymilvus.bulk_writer import (
    BulkFileType,
    LocalBulkWriter,
    bulk_import,
    get_import_progress,
    list_import_jobs,
)


@pytest.fixture(scope="module")
def rest(target_server):
    session = requests.Session()

    def call(path: str, body: dict | None = None, **headers: str) -> dict:
        r = session.post(f"{target_server.http}/v2/vectordb/{path}", json=body or {}, headers=headers, timeout=60)
        assert r.status_code == 200, (path, r.status_code, r.text)
        return r.json()

    yield call
    session.close()


@pytest.fixture(scope="module")
def client(target_server) -> MilvusClient:
    return MilvusClient(uri=target_server.uri)


def _name() -> str:
    return f"rest_{uuid.uuid4().hex[:8]}"


def ok(reply: dict):
    assert reply["code"] == 0, reply
    return reply["data"]


SCHEMA = {
    "enableDynamicField": True,
    "fields": [
        {"fieldName": "id", "dataType": "Int64", "isPrimary": True},
        {"fieldName": "title", "dataType": "VarChar", "elementTypeParams": {"max_length": 64}},
        {"fieldName": "score", "dataType": "Double", "nullable": True},
        {"fieldName": "tags", "dataType": "Array", "elementDataType": "Int64", "elementTypeParams": {"max_capacity": 4}},
        {"fieldName": "vec", "dataType": "FloatVector", "elementTypeParams": {"dim": 4}},
    ],
}
INDEX = [{"fieldName": "vec", "indexName": "vec_idx", "metricType": "L2", "params": {"index_type": "FLAT"}}]


def _rows(n: int) -> list[dict]:
    return [{"id": i, "title": f"t{i}", "score": i / 2, "tags": [i, i + 1], "vec": [float(i), 0.0, 0.0, 1.0],
             "color": "red" if i % 2 else "blue"} for i in range(n)]


def test_collections_create_describe_list_stats_rename_drop(rest) -> None:
    name = _name()
    ok(rest("collections/create", {"collectionName": name, "schema": SCHEMA, "indexParams": INDEX}))
    d = ok(rest("collections/describe", {"collectionName": name}))
    assert d["collectionName"] == name and d["enableDynamicField"] is True and d["load"] == "LoadStateLoaded"
    assert [f["name"] for f in d["fields"]] == ["id", "title", "score", "tags", "vec"]
    assert d["fields"][0]["primaryKey"] is True and d["fields"][4]["type"] == "FloatVector"
    assert {"key": "dim", "value": "4"} in d["fields"][4]["params"]
    assert d["indexes"] == [{"fieldName": "vec", "indexName": "vec_idx", "metricType": "L2"}]
    assert name in ok(rest("collections/list"))
    assert ok(rest("collections/has", {"collectionName": name})) == {"has": True}
    assert ok(rest("collections/get_load_state", {"collectionName": name}))["loadState"] == "LoadStateLoaded"
    ok(rest("entities/insert", {"collectionName": name, "data": _rows(3)}))
    assert ok(rest("collections/get_stats", {"collectionName": name})) == {"rowCount": 3}
    ok(rest("collections/release", {"collectionName": name}))
    assert ok(rest("collections/get_load_state", {"collectionName": name}))["loadState"] == "LoadStateNotLoad"
    ok(rest("collections/rename", {"collectionName": name, "newCollectionName": name + "_b"}))
    assert ok(rest("collections/has", {"collectionName": name})) == {"has": False}
    ok(rest("collections/load", {"collectionName": name + "_b"}))
    ok(rest("collections/drop", {"collectionName": name + "_b"}))
    assert name + "_b" not in ok(rest("collections/list"))


def test_quick_create_loads_a_collection_ready_for_search(rest) -> None:
    name = _name()
    ok(rest("collections/create", {"collectionName": name, "dimension": 3}))
    ok(rest("entities/insert", {"collectionName": name, "data": [{"id": 1, "vector": [1, 0, 0], "k": "x"}]}))
    hits = ok(rest("entities/search", {"collectionName": name, "data": [[1, 0, 0]], "limit": 1, "outputFields": ["k"]}))
    assert hits[0]["id"] == 1 and hits[0]["k"] == "x" and hits[0]["distance"] == pytest.approx(1.0)


def test_errors_carry_milvus_codes(rest, target_server) -> None:
    r = rest("collections/describe", {"collectionName": "no_such_collection"})
    assert r["code"] == 100 and "no_such_collection" in r["message"]
    assert rest("collections/describe", {})["code"] == 1802
    assert rest("entities/query", {"collectionName": 5})["code"] == 1801
    bad = requests.post(f"{target_server.http}/v2/vectordb/collections/list", data=b"{not json", timeout=60)
    assert bad.status_code == 200 and bad.json()["code"] == 1801
    missing = requests.post(f"{target_server.http}/v2/vectordb/nothing/here", json={}, timeout=60)
    assert missing.status_code == 404 and missing.json()["code"] == 10
    name = _name()
    ok(rest("collections/create", {"collectionName": name, "schema": SCHEMA, "indexParams": INDEX}))
    r = rest("entities/insert", {"collectionName": name, "data": [{"id": 1, "title": "x", "tags": [], "vec": [1, 2]}]})
    assert r["code"] == 1100 and "vec" in r["message"]


def test_partitions_aliases_databases_indexes(rest) -> None:
    name = _name()
    ok(rest("collections/create", {"collectionName": name, "schema": SCHEMA}))
    ok(rest("partitions/create", {"collectionName": name, "partitionName": "p1"}))
    assert ok(rest("partitions/has", {"collectionName": name, "partitionName": "p1"})) == {"has": True}
    assert sorted(ok(rest("partitions/list", {"collectionName": name}))) == ["_default", "p1"]
    ok(rest("indexes/create", {"collectionName": name, "indexParams": INDEX}))
    assert ok(rest("indexes/list", {"collectionName": name})) == ["vec_idx"]
    desc = ok(rest("indexes/describe", {"collectionName": name, "indexName": "vec_idx"}))
    assert desc[0]["indexType"] == "FLAT" and desc[0]["metricType"] == "L2" and desc[0]["fieldName"] == "vec"
    ok(rest("entities/insert", {"collectionName": name, "partitionName": "p1", "data": _rows(4)}))
    assert ok(rest("partitions/get_stats", {"collectionName": name, "partitionName": "p1"})) == {"rowCount": 4}
    ok(rest("partitions/load", {"collectionName": name, "partitionNames": ["p1"]}))
    got = ok(rest("entities/query", {"collectionName": name, "filter": "id >= 0", "partitionNames": ["p1"],
                                     "outputFields": ["id"]}))
    assert sorted(r["id"] for r in got) == [0, 1, 2, 3]
    ok(rest("partitions/release", {"collectionName": name, "partitionNames": ["p1"]}))
    ok(rest("partitions/drop", {"collectionName": name, "partitionName": "p1"}))
    alias = name + "_a"
    ok(rest("aliases/create", {"collectionName": name, "aliasName": alias}))
    assert alias in ok(rest("aliases/list", {"collectionName": name}))
    assert ok(rest("aliases/describe", {"aliasName": alias}))["collectionName"] == name
    ok(rest("aliases/drop", {"aliasName": alias}))
    assert rest("aliases/describe", {"aliasName": alias})["code"] != 0
    ok(rest("indexes/drop", {"collectionName": name, "indexName": "vec_idx"}))
    assert ok(rest("indexes/list", {"collectionName": name})) == []
    db = f"db_{uuid.uuid4().hex[:6]}"
    ok(rest("databases/create", {"dbName": db}))
    assert db in ok(rest("databases/list"))
    assert ok(rest("databases/describe", {"dbName": db}))["dbName"] == db
    ok(rest("collections/create", {"dbName": db, "collectionName": "inside", "dimension": 2}))
    assert ok(rest("collections/list", {"dbName": db})) == ["inside"]
    assert ok(rest("collections/list", {}, **{"DB-Name": db})) == ["inside"]
    ok(rest("collections/drop", {"dbName": db, "collectionName": "inside"}))
    ok(rest("databases/drop", {"dbName": db}))


def test_entities_over_rest_match_grpc(rest, client: MilvusClient) -> None:
    """The same scenario through pymilvus (gRPC) and through REST: the answers must agree."""
    over = {}
    for way in ("grpc", "rest"):
        name = _name()
        ok(rest("collections/create", {"collectionName": name, "schema": SCHEMA, "indexParams": INDEX}))
        rows = _rows(20)
        if way == "grpc":
            client.insert(name, rows)
            client.upsert(name, [{**rows[3], "title": "up"}])
            client.upsert(name, [{"id": 4, "title": "partial"}], partial_update=True)
            client.delete(name, filter="id in [5, 6]")
            client.delete(name, ids=[7])
            got = client.get(name, ids=[1, 3, 4], output_fields=["*"])
            q = client.query(name, filter="score > 3", output_fields=["title", "score", "color"], limit=50)
            s = client.search(name, [[2.0, 0.0, 0.0, 1.0]], anns_field="vec", limit=5, filter="id != 2",
                              output_fields=["title", "color"])[0]
            cnt = client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"]
            s = [{"id": h["id"], "distance": h["distance"], **h["entity"]} for h in s]
        else:
            ok(rest("entities/insert", {"collectionName": name, "data": rows}))
            ok(rest("entities/upsert", {"collectionName": name, "data": [{**rows[3], "title": "up"}]}))
            ok(rest("entities/upsert", {"collectionName": name, "data": [{"id": 4, "title": "partial"}],
                                        "partialUpdate": True}))
            ok(rest("entities/delete", {"collectionName": name, "filter": "id in [5, 6]"}))
            ok(rest("entities/delete", {"collectionName": name, "id": [7]}))
            got = ok(rest("entities/get", {"collectionName": name, "id": [1, 3, 4], "outputFields": ["*"]}))
            q = ok(rest("entities/query", {"collectionName": name, "filter": "score > 3", "limit": 50,
                                           "outputFields": ["title", "score", "color"]}))
            s = ok(rest("entities/search", {"collectionName": name, "data": [[2.0, 0.0, 0.0, 1.0]], "annsField": "vec",
                                            "limit": 5, "filter": "id != 2", "outputFields": ["title", "color"]}))
            cnt = ok(rest("entities/query", {"collectionName": name, "outputFields": ["count(*)"]}))[0]["count(*)"]
        over[way] = (
            sorted([dict(r) for r in got], key=lambda r: r["id"]),
            sorted([dict(r) for r in q], key=lambda r: r["id"]),
            [(h["id"], round(h["distance"], 5), h["title"], h["color"]) for h in s],
            cnt,
        )
    assert over["rest"] == over["grpc"]
    got, _, hits, cnt = over["rest"]
    assert cnt == 17 and [r["title"] for r in got] == ["t1", "up", "partial"] and got[2]["color"] == "blue"
    assert sorted(h[0] for h in hits) == [0, 1, 3, 4, 8]  # ties in distance: any order


def test_hybrid_search_over_rest(rest, client: MilvusClient) -> None:
    from pymilvus import AnnSearchRequest, RRFRanker

    name = _name()
    ok(rest("collections/create", {"collectionName": name, "schema": SCHEMA, "indexParams": INDEX}))
    ok(rest("entities/insert", {"collectionName": name, "data": _rows(10)}))
    body = {"collectionName": name, "limit": 3, "outputFields": ["title"], "rerank": {"strategy": "rrf", "params": {"k": 10}},
            "search": [{"data": [[2.0, 0, 0, 1]], "annsField": "vec", "limit": 5},
                       {"data": [[7.0, 0, 0, 1]], "annsField": "vec", "limit": 5, "filter": "id > 4"}]}
    hits = ok(rest("entities/hybrid_search", body))
    reqs = [AnnSearchRequest([[2.0, 0, 0, 1]], "vec", {}, 5), AnnSearchRequest([[7.0, 0, 0, 1]], "vec", {}, 5, expr="id > 4")]
    want = client.hybrid_search(name, reqs, RRFRanker(10), limit=3, output_fields=["title"])[0]
    assert [(h["id"], h["title"]) for h in hits] == [(h["id"], h["entity"]["title"]) for h in want]


def _wait_job(url: str, job_id: str) -> dict:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        data = get_import_progress(url=url, job_id=job_id).json()["data"]
        if data["state"] in ("Completed", "Failed"):
            return data
        time.sleep(0.1)
    raise AssertionError("import job did not finish")


def test_import_jobs_through_pymilvus_bulk_import_helpers(rest, client: MilvusClient, target_server, tmp_path: Path) -> None:
    name = _name()
    schema = client.create_schema(enable_dynamic_field=True)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=4)
    schema.add_field("title", DataType.VARCHAR, max_length=16)
    index = client.prepare_index_params()
    index.add_index("vec", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index)
    rng = np.random.default_rng(5)
    rows = [{"id": i, "vec": rng.random(4, dtype=np.float32).tolist(), "title": f"t{i}", "k": i} for i in range(200)]
    groups = []
    for ft in (BulkFileType.PARQUET, BulkFileType.NUMPY):
        with LocalBulkWriter(schema=schema, local_path=str(tmp_path / ft.name), file_type=ft) as w:
            for r in rows[:100] if ft == BulkFileType.PARQUET else rows[100:]:
                w.append_row(dict(r))
            w.commit()
            groups += w.batch_files
    resp = bulk_import(url=target_server.http, collection_name=name, files=groups)
    job_id = resp.json()["data"]["jobId"]
    done = _wait_job(target_server.http, job_id)
    assert done["state"] == "Completed" and done["progress"] == 100, done
    assert done["importedRows"] == done["totalRows"] == 200 and done["collectionName"] == name
    assert [r["jobId"] for r in list_import_jobs(url=target_server.http, collection_name=name).json()["data"]["records"]] == [job_id]
    got = {r["id"]: r for r in client.query(name, filter="id >= 0", output_fields=["*"])}
    assert len(got) == 200
    for r in rows:
        assert got[r["id"]]["title"] == r["title"] and got[r["id"]]["k"] == r["k"]
        assert np.array_equal(np.asarray(got[r["id"]]["vec"], np.float32), np.asarray(r["vec"], np.float32))
    # the REST job API directly, with a bad file: fails by name, imports nothing
    bad = tmp_path / "bad.json"
    bad.write_text('{"rows": [{"id": 1000, "vec": [1, 2], "title": "x"}]}')
    job = ok(rest("jobs/import/create", {"collectionName": name, "files": [[str(bad)]]}))["jobId"]
    failed = _wait_job(target_server.http, job)
    assert failed["state"] == "Failed" and "bad.json" in failed["reason"] and "vec" in failed["reason"]
    assert client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"] == 200
    assert rest("jobs/import/describe", {"jobId": "123"})["code"] != 0
    assert rest("jobs/import/create", {"collectionName": name, "files": "x"})["code"] == 1801


def test_bulk_import_of_every_type_in_three_formats_in_one_job(client: MilvusClient, target_server, tmp_path: Path) -> None:
    from test_import import all_types, assert_same_rows, make_rows, write_files

    name, schema = all_types(client, numpy=False)
    rows = make_rows(90, numpy=False, start=2000)
    groups = []
    for i, ft in enumerate((BulkFileType.PARQUET, BulkFileType.JSON, BulkFileType.CSV)):
        groups += write_files(tmp_path / ft.name, schema, rows[30 * i:30 * (i + 1)], ft)
    job_id = bulk_import(url=target_server.http, collection_name=name, files=groups).json()["data"]["jobId"]
    done = _wait_job(target_server.http, job_id)
    assert done["state"] == "Completed" and done["importedRows"] == 90, done
    assert [d["importedRows"] for d in done["details"]] == [30, 30, 30]
    assert_same_rows(client, name, rows, numpy=False)
