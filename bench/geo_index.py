"""ST_* filters on a GEOMETRY field over one sealed segment, answered by a scan and by the RTREE
index (a shapely STRtree), on one machine in one run.

    python -m bench.geo_index --rows 200000 --out bench/results/<dir>

The rows are points spread uniformly over a 1,000 x 1,000 square. Each filter goes through the
evaluator the server uses (`CompiledFilter.evaluate`) with and without the segment's index (the
scan once, the index best of `--repeat` runs), and the two answers are checked to be equal. This
measures the filter step of a query in-process; a query through pymilvus adds its own fixed cost.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from bench.filter_timing import bench_main, scan_vs_index
from shoal.index.rtree import GeometryIndex
from shoal.schema import CollectionSchema, Column, DataType, FieldSchema, object_array

SCHEMA = CollectionSchema(
    fields=[
        FieldSchema("id", DataType.INT64, is_primary=True),
        FieldSchema("geo", DataType.GEOMETRY),
        FieldSchema("v", DataType.FLOAT_VECTOR, dim=2),
    ]
)
FILTERS = [
    "ST_WITHIN(geo, 'POLYGON ((100 100, 110 100, 110 110, 100 110, 100 100))')",
    "ST_DWITHIN(geo, 'POINT (500 500)', 20)",
]


def run(rows: int, repeat: int, seed: int) -> dict[str, Any]:
    xy = np.random.default_rng(seed).random((rows, 2)) * 1000
    batch = {
        "id": Column(np.arange(rows, dtype=np.int64)),
        "geo": Column(object_array([f"POINT ({x:.4f} {y:.4f})" for x, y in xy.tolist()])),
    }
    t0 = time.perf_counter()
    index = GeometryIndex(batch["geo"])
    build = {"seconds": time.perf_counter() - t0, "memory_mb": index.memory_bytes / 2**20}
    results = scan_vs_index(FILTERS, SCHEMA, batch, rows, {"geo": index}, repeat, width=48)
    return {"rows": rows, "build": build, "filters": results}


if __name__ == "__main__":
    bench_main(run, __doc__ or "", "geo_index.json", 200_000, 5, "build")
