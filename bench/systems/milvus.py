"""Drives any Milvus-compatible server through the unchanged pymilvus ``MilvusClient``.

The very same calls go to Shoal and to milvus-lite, so differences are the servers'.
Neighbours: :mod:`bench.systems.servers` (the process), :mod:`bench.runner` (the phases).
"""

from __future__ import annotations

import time

import numpy as np
from pymilvus import DataType, MilvusClient
from tqdm import tqdm

from bench.config import TOP_K, IndexSpec
from bench.systems.base import Searcher
from bench.systems.servers import ServerProcess
from bench.workloads import Filter, Workload

COLLECTION = "bench"
TIMEOUT_S = 600.0


def create_bench_collection(client: MilvusClient, dim: int) -> None:
    """The bench's collection (``id``, ``vec``, ``cat``, ``tag``), no index yet, Strong reads."""
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field("cat", DataType.INT64)
    schema.add_field("tag", DataType.VARCHAR, max_length=256)
    client.create_collection(COLLECTION, schema=schema, consistency_level="Strong")


class MilvusSystem:
    """A server process plus the pymilvus code that loads and queries it."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.name = server.name
        self.in_process = False
        self.client: MilvusClient | None = None
        self.search_params: dict = {}
        self.metric = "L2"
        self._clients: list[MilvusClient] = []

    def _connect(self) -> MilvusClient:
        client = MilvusClient(uri=self.server.uri, timeout=TIMEOUT_S)
        self._clients.append(client)
        return client

    def setup(self, workload: Workload, index: IndexSpec, batch: int) -> dict[str, float]:
        self.server.start()
        self.client = c = self._connect()
        self.metric = workload.metric
        self.search_params = {"metric_type": workload.metric, "params": dict(index.search_params)}
        create_bench_collection(c, workload.dim)

        timings: dict[str, float] = {"server_start_s": self.server.start_s}
        t0 = time.perf_counter()
        for lo in tqdm(range(0, workload.n, batch), desc=f"{self.name} insert", unit="batch", leave=False):
            c.insert(COLLECTION, workload.rows(lo, min(workload.n, lo + batch)))
        t1 = time.perf_counter()
        c.flush(COLLECTION)
        t2 = time.perf_counter()
        params = MilvusClient.prepare_index_params()
        params.add_index(field_name="vec", index_type=index.index_type, metric_type=workload.metric,
                         index_name="vec_idx", params=dict(index.build_params))
        c.create_index(COLLECTION, params, sync=True)
        t3 = time.perf_counter()
        c.load_collection(COLLECTION)
        t4 = time.perf_counter()
        timings.update(insert_s=t1 - t0, flush_s=t2 - t1, index_s=t3 - t2, load_collection_s=t4 - t3,
                       load_s=t4 - t0, insert_rows_per_s=workload.n / (t1 - t0))
        return timings

    def searcher(self) -> Searcher:
        client = self._connect()
        params = self.search_params

        def search(vectors: np.ndarray, flt: Filter | None) -> list[list[int]]:
            res = client.search(COLLECTION, data=[v for v in vectors], limit=TOP_K, anns_field="vec",
                                search_params=params, filter=flt.expr if flt else "",
                                output_fields=[])
            return [[int(hit["id"]) for hit in hits] for hits in res]

        return search

    def tune(self, search_params: dict[str, int]) -> None:
        self.search_params = {"metric_type": self.metric, "params": dict(search_params)}

    def query_filter(self, expr: Filter, limit: int) -> int:
        assert self.client is not None
        return len(self.client.query(COLLECTION, filter=expr.expr, limit=limit, output_fields=["id"]))

    def count(self, expr: Filter) -> int:
        assert self.client is not None
        res = self.client.query(COLLECTION, filter=expr.expr, output_fields=["count(*)"])
        return int(res[0]["count(*)"])

    def count_all(self) -> int:
        assert self.client is not None
        res = self.client.query(COLLECTION, filter="", output_fields=["count(*)"],
                                consistency_level="Strong")
        return int(res[0]["count(*)"])

    def index_scalar(self, field: str) -> float:
        assert self.client is not None
        t0 = time.perf_counter()
        self.client.release_collection(COLLECTION)
        params = MilvusClient.prepare_index_params()
        params.add_index(field_name=field, index_type="INVERTED", index_name=f"{field}_idx")
        self.client.create_index(COLLECTION, params, sync=True)
        self.client.load_collection(COLLECTION)
        return time.perf_counter() - t0

    def insert(self, rows: list[dict]) -> None:
        assert self.client is not None
        self.client.insert(COLLECTION, rows)

    def delete(self, ids: list[int]) -> None:
        assert self.client is not None
        self.client.delete(COLLECTION, ids=ids)

    def resources(self) -> dict[str, float]:
        return self.server.resources()

    def teardown(self) -> None:
        for client in self._clients:
            try:
                client.close()
            except Exception:
                pass  # the server may already be gone; nothing to release then
        self._clients.clear()
        self.client = None
        self.server.stop()
