"""Milvus's Grafana dashboard works against `shoal run`: every metric its panels' PromQL names
is in Shoal's `/metrics` with data after a workload, or is listed in NOT_EXPORTED with the
reason Shoal has no counterpart. Both targets: `shoal run`, and the session's
`shoal cluster run`, whose roles' `/metrics` are scraped and read as one (as Prometheus
does with one scrape target per pod).

The expressions are facts in tests/data/milvus_dashboard_promql.txt (source and commit in its
header).
"""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import numpy as np
import pytest

FACTS = Path(__file__).resolve().parents[1] / "data" / "milvus_dashboard_promql.txt"

NO_STREAM = "no message stream, time tick or flow graph: writes go to Shoal's WAL in the process that takes them"
NO_HOP = "no proxy to query-node hop: the node that takes a search runs it"
NOT_EXPORTED = {
    "milvus_proxy_sq_wait_result_latency": NO_HOP,
    "milvus_proxy_sq_reduce_result_latency": NO_HOP,
    "milvus_proxy_sq_decode_result_latency": NO_HOP,
    "milvus_proxy_sq_decode_resultlatency_count": "a typo in the published panel; no Milvus exports it",
    "milvus_proxy_msgstream_obj_num": NO_STREAM,
    "milvus_proxy_mutation_send_latency": NO_STREAM,
    "milvus_proxy_cache_hit_count": "no proxy meta cache: one catalog serves every call",
    "milvus_proxy_cache_update_latency": "no proxy meta cache: one catalog serves every call",
    "milvus_proxy_sync_epoch_time": NO_STREAM,
    "milvus_proxy_apply_pk_latency": "no separate primary-key assignment step",
    "milvus_proxy_apply_timestamp_latency": "no separate timestamp assignment step",
    "milvus_rootcoord_sync_epoch_time": NO_STREAM,
    "milvus_rootcoord_sync_timetick_latency": NO_STREAM,
    "milvus_rootcoord_id_alloc_count": "ids come from the catalog's counter, not a root coordinator allocator",
    "milvus_rootcoord_timestamp_saved": "the TSO is not pre-allocated into a meta store",
    "milvus_rootcoord_dml_channel_num": NO_STREAM,
    "milvus_rootcoord_msgstream_obj_num": NO_STREAM,
    "milvus_rootcoord_credential_num": "not wired to the users catalog yet",
    "milvus_rootcoord_time_tick_delay": NO_STREAM,
    "milvus_querycoord_child_task_num": "loads are not split into coordinator tasks",
    "milvus_querycoord_parent_task_num": "loads are not split into coordinator tasks",
    "milvus_querycoord_child_task_latency": "loads are not split into coordinator tasks",
    "milvus_querynode_dml_vchannel_num": NO_STREAM,
    "milvus_querynode_delta_vchannel_num": NO_STREAM,
    "milvus_querynode_consumer_num": NO_STREAM,
    "milvus_querynode_sq_queue_latency": "no read-task queue: gRPC worker threads run reads directly",
    "milvus_querynode_sq_segment_latency": "not measured per segment",
    "milvus_querynode_sq_core_latency": "no segcore layer",
    "milvus_querynode_sq_reduce_latency": "not measured separately",
    "milvus_querynode_load_segment_latency": "not measured per segment",
    "milvus_querynode_flowgraph_num": NO_STREAM,
    "milvus_querynode_read_task_unsolved_len": "no read-task queue",
    "milvus_querynode_read_task_ready_len": "no read-task queue",
    "milvus_querynode_read_task_concurrency": "no read-task queue",
    "milvus_querynode_estimate_cpu_usage": "no read-task scheduler",
    "milvus_querynode_search_group_size": "searches are not merged into groups",
    "milvus_querynode_search_group_nq": "searches are not merged into groups",
    "milvus_querynode_search_group_topk": "searches are not merged into groups",
    "milvus_querynode_search_topk": "not measured",
    "milvus_querynode_read_evicted_count": "no read-request eviction",
    "milvus_datacoord_stored_rows_count": "not counted per flush",
    "milvus_datacoord_sync_epoch_time": NO_STREAM,
    "milvus_datacoord_stored_binlog_size": "no binlogs: segment files instead",
    "milvus_datanode_flowgraph_num": NO_STREAM,
    "milvus_datanode_flushed_data_size": "not counted per flush",
    "milvus_datanode_consumer_num": NO_STREAM,
    "milvus_datanode_producer_num": NO_STREAM,
    "milvus_datanode_sync_epoch_time": NO_STREAM,
    "milvus_datanode_encode_buffer_latency": "not measured",
    "milvus_datanode_save_latency": "not measured",
    "milvus_datanode_flush_buffer_op_count": "not counted",
    "milvus_datanode_autoflush_buffer_op_count": "not counted",
    "milvus_datanode_compaction_latency": "not measured",
    "milvus_indexcoord_indextask_count": "index builds are not coordinator tasks",
    "milvus_indexnode_index_task_count": "no index node tasks: the engine's indexer builds in-process",
    "milvus_indexnode_load_field_latency": "no index node tasks",
    "milvus_indexnode_decode_field_latency": "no index node tasks",
    "milvus_indexnode_build_index_latency": "not measured",
    "milvus_indexnode_encode_index_latency": "no index node tasks",
    "milvus_indexnode_save_index_latency": "no index node tasks",
}

_NAME = re.compile(r"\bmilvus_[a-z0-9_]+")
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")


def dashboard_expressions() -> list[str]:
    lines = FACTS.read_text().splitlines()
    return [ln for ln in lines if ln.strip() and not ln.startswith(("#", "["))]


def dashboard_names() -> set[str]:
    """Every metric name the expressions read (histograms as their `_bucket`/`_sum`/`_count` series)."""
    return {n for expr in dashboard_expressions() for n in _NAME.findall(expr)}


def family(name: str, all_names: set[str]) -> str:
    for suffix in ("_bucket", "_sum", "_count"):
        base = name.removesuffix(suffix)
        if base != name and (base + "_bucket" in all_names or base + "_sum" in all_names):
            return base
    return name


def scrape(http: str) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Sample values by sample name, and each family's declared type."""
    with urllib.request.urlopen(f"{http}/metrics", timeout=60) as r:
        text = r.read().decode()
    samples: dict[str, list[float]] = {}
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, fam, kind = line.split(" ", 3)
            types[fam] = kind
        elif line and not line.startswith("#"):
            m = _SAMPLE.match(line)
            assert m, f"not a Prometheus sample line: {line!r}"
            samples.setdefault(m.group(1), []).append(float(m.group(3)))
    return samples, types


def test_the_fact_file_and_the_not_exported_list_agree() -> None:
    names = dashboard_names()
    families = {family(n, names) for n in names}
    assert len(dashboard_expressions()) == 131 and len(families) == 97
    assert set(NOT_EXPORTED) <= families, sorted(set(NOT_EXPORTED) - families)


def _workload(uri: str, name: str) -> None:
    from pymilvus import AnnSearchRequest, DataType, MilvusClient, MilvusException, RRFRanker

    c = MilvusClient(uri=uri)
    try:
        schema = c.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("tag", DataType.INT64)
        schema.add_field("v", DataType.FLOAT_VECTOR, dim=8)
        index = c.prepare_index_params()
        index.add_index("v", index_type="FLAT", metric_type="L2")
        c.create_collection(name, schema=schema, index_params=index)
        c.has_collection(name)
        c.describe_collection(name)
        c.list_collections()
        c.create_partition(name, "p1")
        c.list_partitions(name)
        rng = np.random.default_rng(7)
        rows = [{"id": i, "tag": i % 5, "v": rng.random(8).tolist()} for i in range(300)]
        c.insert(name, rows)
        c.upsert(name, rows[:10])
        c.delete(name, ids=[0, 1, 2])
        c.flush(name)
        c.release_collection(name)
        c.load_collection(name)
        q = rng.random((3, 8)).tolist()
        c.search(name, q, limit=5, filter="tag > 1")
        c.query(name, filter="id < 20", output_fields=["tag"])
        c.get(name, ids=[5, 6])
        reqs = [AnnSearchRequest([q[0]], "v", {"metric_type": "L2"}, limit=5) for _ in range(2)]
        c.hybrid_search(name, reqs, RRFRanker(), limit=5)
        c.insert(name, [{"id": 1000, "tag": 1, "v": rng.random(8).tolist()}])  # a growing segment to report
        with pytest.raises(MilvusException):  # a failed call, for the error panels
            c.describe_collection(name + "_missing")
    finally:
        c.close()


@pytest.fixture(params=["standalone", "cluster"])
def dashboard_target(request: pytest.FixtureRequest) -> tuple[str, dict[str, str]]:
    """(the Milvus URI the workload goes to, every endpoint whose /metrics the dashboard scrapes)."""
    if request.param == "standalone":
        shoal = request.getfixturevalue("shoal")
        return shoal.uri, {"standalone": shoal.http}
    cluster = request.getfixturevalue("shoal_cluster")  # the session's cluster, as tests/compat uses it
    return cluster.uri, cluster.http_endpoints()


def test_every_dashboard_metric_is_exported_with_data_after_a_workload(
    dashboard_target: tuple[str, dict[str, str]], name: str,
) -> None:
    uri, endpoints = dashboard_target
    _workload(uri, name)
    samples: dict[str, list[float]] = {}
    types: dict[str, str] = {}
    for http in endpoints.values():  # Prometheus scrapes every role; the dashboard reads the union
        s, t = scrape(http)
        for key, values in s.items():
            samples.setdefault(key, []).extend(values)
        types.update(t)
    names = dashboard_names()
    missing, empty = [], []
    for n in sorted(names):
        fam = family(n, names)
        if fam in NOT_EXPORTED:
            assert n not in samples, f"{n} is exported; take it off NOT_EXPORTED"
            continue
        values = samples.get(n)
        if not values:
            missing.append(n)
        elif types.get(fam) in ("counter", "histogram") and max(values) <= 0:
            empty.append(n)
    assert not missing, f"the dashboard reads these, /metrics lacks them: {missing}"
    assert not empty, f"exported without data after the workload: {empty}"
    exported = {family(n, names) for n in names} - set(NOT_EXPORTED)
    assert len(exported) == 37  # docs/monitoring.md gives this figure, for both targets
    if len(endpoints) > 1:  # the cluster: every role serves /metrics with its role and node id
        roles = {n.split("-")[0] for n in endpoints}
        assert {"proxy", "coord", "streaming", "query", "index"} <= roles, sorted(endpoints)
        for role_name, http in endpoints.items():
            if role_name.startswith("proxy"):  # a whole NodeServer's /metrics, as standalone's
                continue
            with urllib.request.urlopen(f"{http}/metrics", timeout=60) as r:
                text = r.read().decode()
            assert re.search(rf'shoal_role_up\{{node_id="[^"]+",role_name="{role_name.split("-")[0]}"\}} 1', text), \
                role_name
            assert "process_resident_memory_bytes" in text


def test_milvus_families_have_milvus_labels_and_values(target_server: object, name: str) -> None:
    _workload(target_server.uri, name)  # type: ignore[attr-defined]
    text = ""
    for http in target_server.metrics_endpoints().values():  # type: ignore[attr-defined]
        with urllib.request.urlopen(f"{http}/metrics", timeout=60) as r:  # a cluster: the union, as a dashboard reads
            text += r.read().decode()
    assert "# TYPE milvus_proxy_req_count counter" in text  # Go's name: no `_total`
    assert re.search(
        rf'milvus_proxy_req_count\{{collection_name="{name}",db_name="default",function_name="Search",'
        r'node_id="1",status="success"\} [1-9]', text)
    assert re.search(r'milvus_proxy_req_count\{[^}]*function_name="DescribeCollection"[^}]*status="fail"\} [1-9]', text)
    assert re.search(rf'milvus_proxy_search_vectors_count\{{collection_name="{name}",db_name="default",'
                     r'node_id="1"\} [1-9]', text)
    assert re.search(r'milvus_proxy_sq_latency_bucket\{[^}]*query_type="hybrid_search",le="131072"\}', text)
    assert re.search(r'milvus_proxy_mutation_latency_count\{[^}]*msg_type="upsert"', text)
    assert 'segment_state="Growing"' in text and 'segment_state="Sealed"' in text
