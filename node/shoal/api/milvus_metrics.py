"""Prometheus metrics under Milvus's own names, labels and types, beside Shoal's own.

Milvus's Grafana dashboard and alert rules read these families. The names, label names,
label values (`success`/`fail`/`total`, `search`/`query`, `insert`/`delete`/`upsert`,
segment states) and the millisecond buckets 1, 2, 4 … 131072 are Milvus's
(`pkg/metrics/*.go`). One standalone node plays every Milvus role, so it reports the
proxy, root/query/data/index coordinator and query/data node families a Milvus standalone
reports, each where the meaning is the same. Families whose meaning has no counterpart
here (message streams, flow graphs, time ticks, proxy caches, scheduler queues) are not
exported; `docs/monitoring.md` lists them.

Go's client sorts the labels by name (`le` last) and writes a counter as `name` with `# TYPE name counter`, where prometheus_client
would append `_total`; the dashboard queries the Go names, so this module renders its
families itself (`render`), and `/metrics` appends them to the registry's text.
"""

from __future__ import annotations

import threading
from typing import Any

from prometheus_client.utils import floatToGoString
from pymilvus.grpc_gen.milvus_pb2 import SearchResults

BUCKETS_MS = tuple(float(2**i) for i in range(18))
_LE = tuple(f'le="{int(b)}"' for b in BUCKETS_MS)  # as Go writes them: "1", not "1.0"
_LE_INF = 'le="+Inf"'

SQ_TYPES = {"Search": "search", "Query": "query", "HybridSearch": "hybrid_search"}
MUTATION_TYPES = {"Insert": "insert", "Delete": "delete", "Upsert": "upsert"}
DDL = frozenset({
    "CreateCollection", "DropCollection", "HasCollection", "DescribeCollection", "ShowCollections",
    "AlterCollection", "AlterCollectionField", "AddCollectionField", "RenameCollection", "TruncateCollection",
    "CreatePartition", "DropPartition", "HasPartition", "ShowPartitions",
    "CreateAlias", "DropAlias", "AlterAlias", "DescribeAlias", "ListAliases",
    "CreateDatabase", "DropDatabase", "ListDatabases", "AlterDatabase", "DescribeDatabase",
})
_WIDTHS = {"long_data": 8, "int_data": 4, "float_data": 4, "double_data": 8, "bool_data": 1, "timestamptz_data": 8}


def _sized(values: Any, sample: int = 256) -> int:
    """Total length of strings/bytes; past `sample` values, scaled from the first ones
    (reading each value out of a protobuf container costs about 1 µs)."""
    count = len(values)
    if count <= sample:
        return sum(map(len, values))
    return sum(len(values[i]) for i in range(sample)) * count // sample


def _column_bytes(field: Any) -> int:
    """Bytes of one FieldData's values, from container lengths (no serialisation)."""
    kind = field.WhichOneof("field")
    if kind == "vectors":
        vectors = field.vectors
        which = vectors.WhichOneof("data")
        if which is None:
            return 0
        data = getattr(vectors, which)
        if which == "float_vector":
            return 4 * len(data.data)
        if which == "sparse_float_vector":
            return _sized(data.contents)
        return len(data)
    if kind == "scalars":
        which = field.scalars.WhichOneof("data")
        if which is None:
            return 0
        values = getattr(field.scalars, which).data
        width = _WIDTHS.get(which)
        if width is not None:
            return width * len(values)
        if which in ("string_data", "json_data", "geometry_data", "geometry_wkt_data"):
            return _sized(values)
        return 8 * len(values)  # arrays and structs: an estimate per element
    return 0


def payload_bytes(message: Any) -> int:
    """About the wire size of a request or reply, without serialising it.

    `ByteSize()` serialises a message to measure it; for a 100k x 128 insert that costs
    some 400 ms, longer than the insert itself. The byte counters only need the bulk of
    it: the columns (and a search reply's ids and scores); small messages use ByteSize.
    """
    if isinstance(message, SearchResults):  # the hot path: read its fields, no attribute probing
        results = message.results
        ids = results.ids
        return (
            sum(_column_bytes(f) for f in results.fields_data) + 4 * len(results.scores)
            + 8 * len(ids.int_id.data) + _sized(ids.str_id.data)
        )
    columns = getattr(message, "fields_data", None)
    results = getattr(message, "results", None)
    if results is not None and hasattr(results, "scores"):
        ids = results.ids
        return (
            sum(_column_bytes(f) for f in results.fields_data) + 4 * len(results.scores)
            + 8 * len(ids.int_id.data) + _sized(ids.str_id.data)
        )
    if columns is not None and len(columns):
        return sum(_column_bytes(f) for f in columns)
    return message.ByteSize()


LOADS = frozenset({"LoadCollection", "LoadPartitions"})
RELEASES = frozenset({"ReleaseCollection", "ReleasePartitions"})


class _Family:
    def __init__(self, name: str, kind: str, doc: str, labels: tuple[str, ...]) -> None:
        self.name, self.kind, self.doc, self.labels = name, kind, doc, labels
        self.values: dict[tuple[str, ...], Any] = {}

    def render(self, out: list[str]) -> None:
        out.append(f"# HELP {self.name} {self.doc}\n# TYPE {self.name} {self.kind}\n")
        for key, value in sorted(self.values.items()):
            pairs = [f'{k}="{_escape(v)}"' for k, v in sorted(zip(self.labels, key, strict=True))]
            if self.kind != "histogram":
                out.append(f"{self.name}{_braces(pairs)} {floatToGoString(value)}\n")
                continue
            counts, total, n = value
            running = 0
            for le, count in zip(_LE, counts, strict=True):
                running += count
                out.append(f"{self.name}_bucket{_braces([*pairs, le])} {running}\n")
            out.append(f"{self.name}_bucket{_braces([*pairs, _LE_INF])} {n}\n")
            out.append(f"{self.name}_sum{_braces(pairs)} {floatToGoString(total)}\n")
            out.append(f"{self.name}_count{_braces(pairs)} {n}\n")


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _braces(pairs: list[str]) -> str:
    return "{" + ",".join(pairs) + "}" if pairs else ""


class MilvusMetrics:
    """Milvus-named families of one node, fed by the metrics interceptor and the engine's gauges."""

    def __init__(self, engine: Any = None, node_id: str = "1") -> None:
        self._engine = engine
        self._node = node_id
        self._lock = threading.Lock()
        f = self._families = {}

        def add(name: str, kind: str, doc: str, *labels: str) -> None:
            f[name] = _Family(name, kind, doc, labels)

        add("milvus_proxy_req_count", "counter", "count of operation executed",
            "node_id", "function_name", "status", "db_name", "collection_name")
        add("milvus_proxy_req_latency", "histogram", "latency of each request", "node_id", "function_name")
        add("milvus_proxy_sq_latency", "histogram", "latency of search or query successfully",
            "node_id", "query_type", "db_name", "collection_name")
        add("milvus_proxy_collection_sq_latency", "histogram",
            "latency of search or query successfully, per collection", "node_id", "query_type", "collection_name")
        add("milvus_proxy_mutation_latency", "histogram", "latency of insert or delete successfully",
            "node_id", "msg_type", "db_name", "collection_name")
        add("milvus_proxy_search_vectors_count", "counter", "counter of vectors successfully searched",
            "node_id", "db_name", "collection_name")
        add("milvus_proxy_insert_vectors_count", "counter", "counter of vectors successfully inserted",
            "node_id", "db_name", "collection_name")
        add("milvus_proxy_upsert_vectors_count", "counter", "counter of vectors successfully upserted",
            "node_id", "db_name", "collection_name")
        add("milvus_proxy_delete_vectors_count", "counter", "counter of vectors successfully deleted",
            "node_id", "db_name", "collection_name")
        add("milvus_proxy_receive_bytes_count", "counter", "count of bytes received  from sdk",
            "node_id", "msg_type", "collection_name")
        add("milvus_proxy_send_bytes_count", "counter", "count of bytes sent back to sdk", "node_id")
        add("milvus_rootcoord_ddl_req_count", "counter", "count of DDL operations", "function_name", "status")
        add("milvus_rootcoord_ddl_req_latency", "histogram", "latency of each DDL operations", "function_name")
        add("milvus_querycoord_load_req_count", "counter", "count of load request", "status")
        add("milvus_querycoord_release_req_count", "counter", "count of release request", "status")
        add("milvus_querycoord_load_latency", "histogram", "latency of load the entire collection")
        add("milvus_querycoord_release_latency", "histogram", "latency of release request")
        add("milvus_querynode_sq_req_count", "counter", "count of search / query request",
            "node_id", "query_type", "status")
        add("milvus_querynode_sq_req_latency", "histogram", "latency of Search or query requests",
            "node_id", "query_type")
        add("milvus_datanode_flush_req_count", "counter", "count of flush request", "node_id", "status")
        add("milvus_datanode_msg_rows_count", "counter", "count of rows consumed from msgStream",
            "node_id", "msg_type")
        add("milvus_indexcoord_indexreq_count", "counter", "number of building index requests", "status")

    # ---- recording
    def observe(self, method: str, request: Any, response: Any, code: int, seconds: float) -> None:
        ok = code == 0
        status = "success" if ok else "fail"
        ms = seconds * 1000.0
        db = str(getattr(request, "db_name", "") or "default")
        coll = str(getattr(request, "collection_name", "") or "")
        node = self._node
        with self._lock:
            self._inc("milvus_proxy_req_count", (node, method, "total", db, coll))
            self._inc("milvus_proxy_req_count", (node, method, status, db, coll))
            if ok:
                self._observe("milvus_proxy_req_latency", (node, method), ms)
            if method in SQ_TYPES:
                self._search_or_query(SQ_TYPES[method], request, response, ok, ms, db, coll)
            elif method in MUTATION_TYPES:
                self._mutation(MUTATION_TYPES[method], request, response, ok, ms, db, coll)
            elif method in DDL:
                self._inc("milvus_rootcoord_ddl_req_count", (method, "total"))
                self._inc("milvus_rootcoord_ddl_req_count", (method, status))
                if ok:
                    self._observe("milvus_rootcoord_ddl_req_latency", (method,), ms)
            elif method in LOADS or method in RELEASES:
                kind = "load" if method in LOADS else "release"
                self._inc(f"milvus_querycoord_{kind}_req_count", ("total",))
                self._inc(f"milvus_querycoord_{kind}_req_count", (status,))
                if ok:
                    self._observe(f"milvus_querycoord_{kind}_latency", (), ms)
            elif method == "Flush":
                self._inc("milvus_datanode_flush_req_count", (node, "total"))
                self._inc("milvus_datanode_flush_req_count", (node, status))
            elif method == "CreateIndex":
                self._inc("milvus_indexcoord_indexreq_count", ("total",))
                self._inc("milvus_indexcoord_indexreq_count", (status,))

    def _search_or_query(self, kind: str, request: Any, response: Any, ok: bool, ms: float, db: str, coll: str) -> None:
        node = self._node
        self._inc("milvus_querynode_sq_req_count", (node, kind, "total"))
        self._inc("milvus_querynode_sq_req_count", (node, kind, "success" if ok else "fail"))
        if not ok:
            return
        self._observe("milvus_proxy_sq_latency", (node, kind, db, coll), ms)
        self._observe("milvus_proxy_collection_sq_latency", (node, kind, coll), ms)
        self._observe("milvus_querynode_sq_req_latency", (node, kind), ms)
        self._inc("milvus_proxy_send_bytes_count", (node,), payload_bytes(response))
        if kind == "search":
            self._inc("milvus_proxy_search_vectors_count", (node, db, coll), int(getattr(request, "nq", 0) or 0))
        elif kind == "hybrid_search":
            nq = max((int(r.nq or 0) for r in request.requests), default=0)
            self._inc("milvus_proxy_search_vectors_count", (node, db, coll), nq)

    def _mutation(self, kind: str, request: Any, response: Any, ok: bool, ms: float, db: str, coll: str) -> None:
        node = self._node
        self._inc("milvus_proxy_receive_bytes_count", (node, kind, coll), payload_bytes(request))
        if not ok:
            return
        self._observe("milvus_proxy_mutation_latency", (node, kind, db, coll), ms)
        inserted = int(getattr(response, "insert_cnt", 0) or 0)
        deleted = int(getattr(response, "delete_cnt", 0) or 0)
        if kind == "insert":
            self._inc("milvus_proxy_insert_vectors_count", (node, db, coll), inserted)
        elif kind == "upsert":
            self._inc("milvus_proxy_upsert_vectors_count", (node, db, coll), int(getattr(response, "upsert_cnt", 0) or 0))
        else:
            self._inc("milvus_proxy_delete_vectors_count", (node, db, coll), deleted)
        if inserted:
            self._inc("milvus_datanode_msg_rows_count", (node, "insert"), inserted)
        if deleted:
            self._inc("milvus_datanode_msg_rows_count", (node, "delete"), deleted)

    def _inc(self, name: str, key: tuple[str, ...], amount: float = 1) -> None:
        values = self._families[name].values
        values[key] = values.get(key, 0) + amount

    def _observe(self, name: str, key: tuple[str, ...], ms: float) -> None:
        values = self._families[name].values
        slot = values.get(key)
        if slot is None:
            slot = values[key] = [[0] * len(BUCKETS_MS), 0.0, 0]
        counts = slot[0]
        for i, bound in enumerate(BUCKETS_MS):
            if ms <= bound:
                counts[i] += 1
                break
        slot[1] += ms
        slot[2] += 1

    # ---- exposition
    def render(self) -> bytes:
        out: list[str] = []
        with self._lock:
            for family in self._families.values():
                family.render(out)
        out.extend(self._gauges())
        return "".join(out).encode()

    def _gauges(self) -> list[str]:
        fn = getattr(self._engine, "gauges", None)
        if fn is None:
            return []
        try:
            g = fn()
        except Exception:  # a scrape must not fail because the engine is busy closing
            return []
        node = self._node
        rows: list[tuple[str, str, tuple[tuple[str, str], ...], float]] = [
            ("milvus_rootcoord_proxy_num", "number of proxy nodes managered by rootcoord", (), 1),
            ("milvus_rootcoord_collection_num", "number of collections", (), g["collections"]),
            ("milvus_rootcoord_partition_num", "number of partitions", (), g["partitions"]),
            ("milvus_rootcoord_timestamp", "latest timestamp allocated in memory", (), g["timestamp"]),
            ("milvus_querycoord_collection_num", "number of collections", (), g["loaded_collections"]),
            ("milvus_querycoord_entity_num", "number of entities", (), g["loaded_rows"]),
            ("milvus_querycoord_querynode_num", "number of QueryNodes managered by QueryCoord", (), 1),
            ("milvus_querynode_collection_num", "number of collections loaded", (("node_id", node),),
             g["loaded_collections"]),
            ("milvus_querynode_partition_num", "number of partitions loaded", (("node_id", node),),
             g["loaded_partitions"]),
            ("milvus_querynode_entity_num", "number of entities which can be searched/queried",
             (("node_id", node),), g["loaded_rows"]),
            ("milvus_datacoord_datanode_num", "number of data nodes", (), 1),
            ("milvus_datacoord_collection_num", "number of collections", (), g["collections"]),
            ("milvus_datacoord_stored_rows_num", "number of stored rows of healthy segment", (), g["rows"]),
            ("milvus_datanode_unflushed_segment_num", "number of unflushed segments", (("node_id", node),),
             g["growing_segments"]),
            ("milvus_indexcoord_indexnode_num", "number of IndexNodes managed by IndexCoord", (), 1),
        ]
        out: list[str] = []
        for name, doc, labels, value in rows:
            pairs = [f'{k}="{_escape(v)}"' for k, v in labels]
            out.append(f"# HELP {name} {doc}\n# TYPE {name} gauge\n{name}{_braces(pairs)} {floatToGoString(value)}\n")
        seg = "milvus_querynode_segment_num"
        out.append(f"# HELP {seg} number of segments loaded, clustered by its collection, partition, state and "
                   f"# of indexed fields\n# TYPE {seg} gauge\n")
        out.append(f'{seg}{{node_id="{node}",segment_state="Growing"}} {g["growing_segments"]}\n')
        out.append(f'{seg}{{node_id="{node}",segment_state="Sealed"}} {g["sealed_segments"]}\n')
        dseg = "milvus_datacoord_segment_num"
        out.append(f"# HELP {dseg} number of segments\n# TYPE {dseg} gauge\n")
        out.append(f'{dseg}{{segment_state="Growing"}} {g["growing_segments"]}\n')
        out.append(f'{dseg}{{segment_state="Flushed"}} {g["sealed_segments"]}\n')
        return out
