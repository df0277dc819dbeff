"""Filters on a JSON path and an ARRAY field over one sealed segment, answered by a scan and by the
indexes a `json_path`/`json_cast_type` (or ARRAY) index builds, on one machine in one run.

    python -m bench.json_index --rows 1000000 --out bench/results/<dir>

The rows are mixed as users' JSON is: `meta['n']` a number on most rows (1,000 distinct values),
a string, a bool or missing on the others; `meta['s']` a string; `tags` an ARRAY of ints. Each
filter goes through the evaluator the server uses (`CompiledFilter.evaluate`) with and without the
segment's indexes (the scan once, the index best of `--repeat` runs), and the two answers are checked to be equal.
This measures the filter step of a query in-process; a query through pymilvus adds its own fixed cost.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from bench.filter_timing import bench_main, scan_vs_index
from shoal.expr.binder import bind_json_path
from shoal.index.array import array_index
from shoal.index.json_path import json_path_index
from shoal.schema import CollectionSchema, Column, DataType, FieldSchema, object_array

SCHEMA = CollectionSchema(
    fields=[
        FieldSchema("id", DataType.INT64, is_primary=True),
        FieldSchema("meta", DataType.JSON),
        FieldSchema("tags", DataType.ARRAY, element_type=DataType.INT64, max_capacity=4),
        FieldSchema("v", DataType.FLOAT_VECTOR, dim=2),
    ]
)
FILTERS = [
    "meta['n'] == 417",
    "meta['n'] in [3, 99, 512]",
    "meta['n'] >= 990",
    "meta['n'] < 500",
    "meta['s'] == 's-1234'",
    "meta['s'] like 's-12%'",
    "exists meta['n']",
    "array_contains(tags, 77)",
    "array_contains_all(tags, [1, 2])",
]


def _rows(n: int, seed: int) -> tuple[list[Any], list[list[int]]]:
    rng = np.random.default_rng(seed)
    nums = rng.integers(0, 1000, n).tolist()
    kinds = rng.random(n)
    strs = rng.integers(0, 10_000, n).tolist()
    docs: list[Any] = []
    for i in range(n):
        k = kinds[i]
        doc: dict[str, Any] = {"s": f"s-{strs[i]}"}
        if k < 0.9:
            doc["n"] = nums[i]
        elif k < 0.95:
            doc["n"] = str(nums[i])
        elif k < 0.97:
            doc["n"] = True
        docs.append(doc)
    tags = rng.integers(0, 200, (n, 3)).tolist()
    return docs, tags


def run(rows: int, repeat: int, seed: int) -> dict[str, Any]:
    docs, tags = _rows(rows, seed)
    batch = {
        "id": Column(np.arange(rows, dtype=np.int64)),
        "meta": Column(object_array(docs)),
        "tags": Column(object_array(tags)),
    }
    indexes: dict[Any, Any] = {}
    builds = {}
    for path, cast in (("meta['n']", "DOUBLE"), ("meta['s']", "VARCHAR")):
        key = bind_json_path(path, SCHEMA)
        assert key is not None
        t0 = time.perf_counter()
        indexes[key] = json_path_index(batch["meta"], key.keys, {"index_type": "INVERTED", "json_cast_type": cast})
        builds[path] = {"seconds": time.perf_counter() - t0, "memory_mb": indexes[key].memory_bytes / 2**20}
    t0 = time.perf_counter()
    indexes["tags"] = array_index(batch["tags"])
    builds["tags"] = {"seconds": time.perf_counter() - t0, "memory_mb": indexes["tags"].memory_bytes / 2**20}
    results = scan_vs_index(FILTERS, SCHEMA, batch, rows, indexes, repeat, width=36)
    return {"rows": rows, "builds": builds, "filters": results}


if __name__ == "__main__":
    bench_main(run, __doc__ or "", "json_index.json", 1_000_000, 3, "builds")
