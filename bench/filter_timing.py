"""Scan versus index for scalar filters: the timing loop the scalar-index benchmarks share
(bench.json_index, bench.geo_index). Each filter is evaluated by a full scan and with the
indexes; the two masks must agree, and the best time of `repeat` runs is kept."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.machine import machine, versions
from shoal.expr import compile_filter
from shoal.schema import CollectionSchema


def best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """The fastest of `repeat` calls in seconds, and the last call's result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def scan_vs_index(filters: list[str], schema: CollectionSchema, batch: dict[str, Any], rows: int,
                  indexes: dict[str, Any], repeat: int, width: int = 40) -> list[dict[str, Any]]:
    """One row per filter: matches, scan and indexed milliseconds, speed-up (printed as it goes)."""
    results = []
    for expr in filters:
        flt = compile_filter(expr, schema)
        scan_s, scanned = best_of(lambda flt=flt: flt.evaluate(batch, rows), 1)
        index_s, indexed = best_of(lambda flt=flt: flt.evaluate(batch, rows, indexes), repeat)
        assert np.array_equal(scanned, indexed), expr
        results.append({
            "filter": expr, "matches": int(indexed.sum()), "scan_ms": scan_s * 1e3, "indexed_ms": index_s * 1e3,
            "speedup": scan_s / index_s,
        })
        print(f"{expr[:width]:{width}s} {int(indexed.sum()):>8d} rows  scan {scan_s * 1e3:9.1f} ms  "
              f"indexed {index_s * 1e3:8.2f} ms  x{scan_s / index_s:,.0f}", flush=True)
    return results


def bench_main(run: Callable[[int, int, int], dict[str, Any]], doc: str, out_name: str, rows: int, repeat: int,
               summary: str) -> None:
    """The command line of a scalar-index benchmark: `--rows`, `--repeat`, `--seed`, `--out DIR`
    (writes `out_name` there with the machine and versions); prints the report's `summary` entry."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--rows", type=int, default=rows)
    parser.add_argument("--repeat", type=int, default=repeat)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    report = {"machine": machine(), "versions": versions(), **run(args.rows, args.repeat, args.seed)}
    print(json.dumps(report[summary], indent=1))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / out_name).write_text(json.dumps(report, indent=1) + "\n")
