"""Collection end to end: the operator keeps a real `shoal run` server's collection in the
shape its Collection resource asks for, reports what it will not change, and drops it
on deletion when told to. Skipped while `shoal run` cannot yet serve these calls."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from pymilvus import MilvusClient

from shoal_operator.constants import API_VERSION
from shoal_operator.kube import Kube
from shoal_operator.testing import OperatorProcess, install_crds


@pytest.fixture(scope="module")
def shoal_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("shoal-data")
    proc = subprocess.Popen(
        [sys.executable, "-m", "shoal.cli", "run", "--data", str(data), "--port", "0", "--http-port", "0",
         "--host", "127.0.0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        uri = _await_listening(proc)
        if uri is None:
            pytest.skip("`shoal run` is not functional yet (no 'Shoal listening' line)")
        _skip_unless_functional(uri)
        yield uri
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _await_listening(proc: subprocess.Popen[str], timeout: float = 60) -> str | None:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            return None
        match = re.search(r"Shoal listening on ([\d.]+):(\d+)", line)
        if match:
            return f"http://{match.group(1)}:{match.group(2)}"
    return None


def _skip_unless_functional(uri: str) -> None:
    """The calls the operator makes, tried once directly; skip while the server lacks them."""
    try:
        client = MilvusClient(uri=uri, timeout=10)
        client.create_collection("probe", dimension=4)
        client.list_partitions("probe")
        client.list_indexes("probe")
        client.get_load_state("probe")
        client.drop_collection("probe")
        client.close()
    except Exception as exc:  # any missing RPC
        pytest.skip(f"`shoal run` does not yet serve the calls the operator needs: {exc}")


@pytest.fixture(scope="module")
def operator(k8s_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    install_crds(k8s_cluster.kubectl)
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    with OperatorProcess(k8s_cluster.kubeconfig, log,
                         env={"SHOAL_OPERATOR_COLLECTION_RESYNC_SECONDS": "2"}) as op:
        yield op


@pytest.fixture
def ns(k8s_cluster: Any, operator: OperatorProcess) -> Iterator[str]:
    name = f"col-{uuid.uuid4().hex[:8]}"
    k8s_cluster.kubectl("create", "namespace", name)
    yield name
    k8s_cluster.kubectl("delete", "namespace", name, "--timeout=120s", check=False, timeout=150)


def spec(uri: str, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "target": {"endpoint": uri},
        "deletionPolicy": "Delete",
        "schema": {
            "primaryKey": "id",
            "fields": [
                {"name": "id", "dataType": "INT64"},
                {"name": "title", "dataType": "VARCHAR", "maxLength": 128},
                {"name": "embedding", "dataType": "FLOAT_VECTOR", "dim": 8},
            ],
        },
        "indexes": [{"fieldName": "embedding", "indexType": "FLAT", "metricType": "L2"}],
        "partitions": ["p2025"],
        "loadState": "Loaded",
    }


def status(kube: Kube, ns: str) -> dict[str, Any]:
    obj = kube.get(API_VERSION, "Collection", ns, "docs")
    return dict((obj or {}).get("status") or {})


def test_collection_is_created_kept_and_dropped(k8s_cluster: Any, ns: str, shoal_uri: str) -> None:
    name = f"docs_{uuid.uuid4().hex[:6]}"
    api = k8s_cluster.api_client()
    kube = Kube(api)
    client = MilvusClient(uri=shoal_uri, timeout=10)
    doc = {"apiVersion": API_VERSION, "kind": "Collection", "metadata": {"name": "docs"}, "spec": spec(shoal_uri, name)}
    k8s_cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(doc))
    k8s_cluster.wait_for(lambda: status(kube, ns).get("phase") == "Ready", timeout=90, what="Collection Ready")

    table = k8s_cluster.kubectl("get", "collections", "-n", ns).stdout.splitlines()
    assert table[0].split()[:5] == ["NAME", "PHASE", "COLLECTION", "LOAD", "ROWS"]
    assert table[1].split()[:4] == ["docs", "Ready", name, "Loaded"]
    events = [e["message"] for e in kube.list("v1", "Event", ns, "") if e["reason"] == "Reconciled"]
    assert f"{name}: create collection" in events and f"{name}: create index embedding (FLAT)" in events
    assert client.has_collection(name)
    assert "p2025" in client.list_partitions(name)
    assert client.list_indexes(name) == ["embedding"]
    assert client.get_load_state(name)["state"].name == "Loaded"
    client.insert(name, [{"id": i, "title": f"t{i}", "embedding": [float(i)] * 8} for i in range(10)])
    client.flush(name)
    k8s_cluster.wait_for(lambda: status(kube, ns).get("rows") == 10, timeout=60, what="rows in status")

    # A field type change cannot be applied without losing data: it is reported, not done.
    k8s_cluster.kubectl("patch", "-n", ns, "collection", "docs", "--type=json", "-p", json.dumps([
        {"op": "replace", "path": "/spec/schema/fields/1", "value": {"name": "title", "dataType": "INT32"}},
        {"op": "add", "path": "/spec/partitions/-", "value": "p2026"},
    ]))
    k8s_cluster.wait_for(lambda: status(kube, ns).get("phase") == "Drifted", timeout=60, what="SchemaDrift")
    st = status(kube, ns)
    drift = next(c for c in st["conditions"] if c["type"] == "SchemaDrift")
    assert drift["status"] == "True"
    assert "field title is VARCHAR in the collection, spec says INT32" in drift["message"]
    assert "p2026" in client.list_partitions(name)  # what can be added still is
    assert client.query(name, filter="id >= 0", output_fields=["count(*)"])[0]["count(*)"] == 10

    k8s_cluster.kubectl("delete", "-n", ns, "collection", "docs", "--timeout=60s", timeout=90)
    k8s_cluster.wait_for(lambda: not client.has_collection(name), timeout=30, what="collection dropped")
    client.close()
    api.close()


def test_retain_keeps_the_collection(k8s_cluster: Any, ns: str, shoal_uri: str) -> None:
    name = f"kept_{uuid.uuid4().hex[:6]}"
    api = k8s_cluster.api_client()
    kube = Kube(api)
    client = MilvusClient(uri=shoal_uri, timeout=10)
    body = {**spec(shoal_uri, name), "deletionPolicy": "Retain", "loadState": "Released"}
    doc = {"apiVersion": API_VERSION, "kind": "Collection", "metadata": {"name": "docs"}, "spec": body}
    k8s_cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(doc))
    k8s_cluster.wait_for(lambda: status(kube, ns).get("phase") == "Ready", timeout=90, what="Collection Ready")
    assert status(kube, ns)["loadState"] == "Released"
    k8s_cluster.kubectl("delete", "-n", ns, "collection", "docs", "--timeout=60s", timeout=90)
    time.sleep(2)
    assert client.has_collection(name)
    client.drop_collection(name)
    client.close()
    api.close()


def test_a_missing_cluster_is_reported_not_fatal(k8s_cluster: Any, ns: str) -> None:
    api = k8s_cluster.api_client()
    kube = Kube(api)
    body = {**spec("unused", "docs"), "target": {"clusterRef": "nowhere"}}
    doc = {"apiVersion": API_VERSION, "kind": "Collection", "metadata": {"name": "docs"}, "spec": body}
    k8s_cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(doc))
    st = k8s_cluster.wait_for(lambda: status(kube, ns) if status(kube, ns).get("phase") else None, timeout=30,
                              what="Collection status")
    assert st["phase"] == "Pending"  # the cluster may still be created
    assert st["errors"] == [f"MilvusCluster nowhere not found in {ns}"]
    ready = next(c for c in st["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["message"] == st["errors"][0]
    k8s_cluster.kubectl("delete", "-n", ns, "collection", "docs", "--timeout=30s", timeout=60)
    api.close()


def _alias_target(client: MilvusClient, alias: str) -> str | None:
    if alias not in client.list_aliases()["aliases"]:
        return None
    return client.describe_alias(alias)["collection_name"]


def test_schema_changes_go_online_or_blue_green_behind_the_alias(k8s_cluster: Any, ns: str, shoal_uri: str) -> None:
    name = f"gitops_{uuid.uuid4().hex[:6]}"
    alias = f"app_{uuid.uuid4().hex[:6]}"
    api = k8s_cluster.api_client()
    kube = Kube(api)
    client = MilvusClient(uri=shoal_uri, timeout=10)
    body = {**spec(shoal_uri, name), "alias": alias, "migration": "blueGreen", "migrationRetentionSeconds": 4,
            "partitions": []}
    body["schema"]["fields"].append({"name": "year", "dataType": "INT32"})
    doc = {"apiVersion": API_VERSION, "kind": "Collection", "metadata": {"name": "docs"}, "spec": body}
    k8s_cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(doc))
    k8s_cluster.wait_for(lambda: status(kube, ns).get("phase") == "Ready", timeout=90, what="Collection Ready")
    assert _alias_target(client, alias) == name
    rows = [{"id": i, "title": f"t{i}", "embedding": [float(i % 17)] * 8, "year": 1990 + i % 30} for i in range(2300)]
    client.insert(alias, rows)
    client.flush(alias)

    # Online: a nullable field with a default is added in place; old rows read the default.
    fields = [*body["schema"]["fields"], {"name": "tag", "dataType": "VARCHAR", "maxLength": 16, "nullable": True,
                                          "defaultValue": "none"}]
    k8s_cluster.kubectl("patch", "-n", ns, "collection", "docs", "--type=merge",
                        "-p", json.dumps({"spec": {"schema": {"fields": fields}}}))
    k8s_cluster.wait_for(lambda: any(f["name"] == "tag" for f in client.describe_collection(name)["fields"]),
                         timeout=60, what="field tag added online")
    assert client.query(alias, filter='tag == "none"', output_fields=["count(*)"])[0]["count(*)"] == 2300
    k8s_cluster.wait_for(lambda: status(kube, ns).get("phase") == "Ready", timeout=60, what="Ready after the add")
    assert "activeCollection" not in status(kube, ns)

    # Refused: vectors cannot change dim; reported, nothing touched.
    bad = [dict(f, dim=16) if f["name"] == "embedding" else f for f in fields]
    k8s_cluster.kubectl("patch", "-n", ns, "collection", "docs", "--type=merge",
                        "-p", json.dumps({"spec": {"schema": {"fields": bad}}}))
    st = k8s_cluster.wait_for(lambda: status(kube, ns) if status(kube, ns).get("phase") == "Error" else None,
                              timeout=60, what="migration refused")
    assert "migration refused: field embedding: vectors cannot change dim (8 -> 16)" in st["errors"][0]
    assert _alias_target(client, alias) == name

    # Offline: year INT32 -> VARCHAR is made on a copy; the alias switches; searches never fail.
    failures: list[str] = []
    searches = [0]
    stop = threading.Event()

    def search_through_the_alias() -> None:
        reader = MilvusClient(uri=shoal_uri, timeout=10)
        while not stop.is_set():
            try:
                hits = reader.search(alias, data=[[3.0] * 8], limit=3, output_fields=["id"])
                if len(hits[0]) != 3:
                    failures.append(f"{len(hits[0])} hits")
                searches[0] += 1
            except Exception as exc:
                failures.append(repr(exc))
            time.sleep(0.05)
        reader.close()

    searcher = threading.Thread(target=search_through_the_alias)
    searcher.start()
    try:
        changed = [dict(f, dataType="VARCHAR", maxLength=8) if f["name"] == "year" else f for f in fields]
        k8s_cluster.kubectl("patch", "-n", ns, "collection", "docs", "--type=merge",
                            "-p", json.dumps({"spec": {"schema": {"fields": changed}}}))
        st = k8s_cluster.wait_for(
            lambda: status(kube, ns) if (status(kube, ns).get("migration") or {}).get("phase") == "Succeeded"
            and status(kube, ns).get("phase") == "Ready" else None,
            timeout=180, what="blue-green migration done")
    finally:
        stop.set()
        searcher.join()
    new = f"{name}_v2"
    assert st["activeCollection"] == new and st["migration"]["rowsCopied"] == 2300
    assert _alias_target(client, alias) == new
    assert failures == [] and searches[0] > 0
    year = next(f for f in client.describe_collection(alias)["fields"] if f["name"] == "year")
    assert year["type"].name == "VARCHAR"
    got = {r["id"]: r for r in client.query(alias, filter="id >= 0", output_fields=["year", "tag"], limit=3000)}
    assert len(got) == 2300 and got[7]["year"] == "1997" and got[7]["tag"] == "none"
    events = [e["message"] for e in kube.list("v1", "Event", ns, "") if e["reason"] == "Migrated"]
    assert f"{name}: migration: switch the alias from {name} to {new}" in events

    # The replaced collection is kept for the retention, then dropped.
    # the operator drops it, then records that in status: wait for both
    k8s_cluster.wait_for(lambda: not client.has_collection(name) and status(kube, ns).get("retained") == [],
                         timeout=60, what="old collection dropped and out of status.retained")

    k8s_cluster.kubectl("delete", "-n", ns, "collection", "docs", "--timeout=60s", timeout=90)
    k8s_cluster.wait_for(lambda: not client.has_collection(new), timeout=30, what="collection dropped")
    assert _alias_target(client, alias) is None
    client.close()
    api.close()
