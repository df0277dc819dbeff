"""Renders results.json as the README.md of a results folder: tables, ratios, machine, versions.

Pure function of the results dict. Ratios are Shoal ÷ milvus-lite, Shoal ÷ faiss (the
ceiling) and Shoal ÷ floor, where floor = faiss serial latency + bare gRPC echo round trip, and
Shoal ÷ client floor, where the pymilvus call against an instantly answering server replaces the echo.
"""

from __future__ import annotations

import math
from typing import Any

LOAD_COLS = ("load_s", "insert_rows_per_s", "index_s", "after_load_rss_mb", "vmhwm_mb", "disk_mb", "index_mb")
SEARCH_COLS = ("serial_queries", "serial_qps", "serial_p50_ms", "serial_p99_ms", "recall_at_10", "batch_qps",
               "conc1_qps", "conc4_qps", "conc16_qps")
FILTER_COLS = ("filt1_qps", "filt1_recall", "filt50_qps", "filt50_recall", "query_eq_qps", "query_eq_ok",
               "count_qps", "count_ok")
SIDX_COLS = ("sidx_build_s", "sidx_filt1_qps", "sidx_filt1_recall", "sidx_filt50_qps", "sidx_filt50_recall",
             "sidx_query_eq_qps", "sidx_query_eq_ok", "sidx_count_qps", "sidx_count_ok")
# with the scalar index ÷ without: (metric, its counterpart before the index)
SIDX_GAINS = (("sidx_filt1_qps", "filt1_qps"), ("sidx_filt50_qps", "filt50_qps"), ("sidx_query_eq_qps", "query_eq_qps"),
              ("sidx_count_qps", "count_qps"))
STREAM_COLS = ("idle_p50_ms", "idle_p99_ms", "stream_p50_ms", "stream_p99_ms", "stream_search_qps",
               "stream_write_rows_per_s", "stream_count_ok")
BESIDE_COLS = ("serial_echo_p50_ms", "serial_echo_p99_ms", "serial_instant_p50_ms", "serial_instant_p99_ms",
               "batch_instant_qps")
RATIO_METRICS = ("load_s", "insert_rows_per_s", "serial_qps", "serial_p50_ms", "serial_p99_ms", "recall_at_10",
                 "batch_qps", "conc1_qps", "conc4_qps", "conc16_qps", "filt1_qps", "filt1_recall", "filt50_qps",
                 "filt50_recall", "query_eq_qps", "count_qps", "sidx_filt1_qps", "sidx_filt50_qps", "sidx_query_eq_qps",
                 "sidx_count_qps", "vmhwm_mb", "after_load_rss_mb", "disk_mb")
PHASE_OF = {"load_s": "load", "insert_rows_per_s": "load", "index_s": "load", "after_load_rss_mb": "resources",
            "vmhwm_mb": "resources", "disk_mb": "resources", "index_mb": "resources"}


def fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        if abs(v) >= 10:
            return f"{v:.1f}"
        return f"{v:.3g}"
    return str(v)


def _phase_for(col: str) -> str:
    if col in PHASE_OF:
        return PHASE_OF[col]
    for prefix, phase in (("sidx", "scalar_index"), ("serial", "serial"), ("recall", "serial"), ("batch", "batch"),
                          ("conc", "concurrent"), ("filt", "filtered"), ("query_eq", "filter_only"),
                          ("count", "filter_only")):
        if col.startswith(prefix):
            return phase
    return ""


def _cell(run: dict[str, Any], col: str) -> str:
    if col in run["metrics"]:
        return fmt(run["metrics"][col])
    phase = _phase_for(col)
    if phase and phase in run["errors"]:
        return "ERR" if not run["errors"][phase].startswith("skipped") else "skip"
    return "—"


def _table(runs: list[dict[str, Any]], cols: tuple[str, ...]) -> list[str]:
    used = [c for c in cols if any(c in r["metrics"] for r in runs)] or list(cols)
    lines = ["| index | system | " + " | ".join(used) + " |", "|---|---|" + "---:|" * len(used)]
    for r in runs:
        lines.append(f"| {r['index']} | {r['system']} | " + " | ".join(_cell(r, c) for c in used) + " |")
    return lines


def floor_parts(results: dict[str, Any], dim: int, beside: dict[str, Any] | None = None) -> dict[str, float]:
    """Echo and instant-server figures: those measured beside a system's own queries (its
    run's ``serial_echo_p50_ms`` etc.) where present, else the ones measured at the start."""
    out = dict(results["floor"].get(str(dim)) or {})
    for key in ("echo", "instant"):
        for stat in ("p50_ms", "p99_ms", "mean_ms"):
            if beside and f"serial_{key}_{stat}" in beside:
                out[f"{key}_{stat}"] = beside[f"serial_{key}_{stat}"]
    if beside and "batch_instant_qps" in beside:
        out["instant_batch_qps"] = beside["batch_instant_qps"]
    return out


def floor_value(results: dict[str, Any], faiss_run: dict[str, Any] | None, metric: str,
                client: bool = False, beside: dict[str, Any] | None = None) -> float | None:
    """A floor for a latency or throughput metric: faiss's own figure plus what the protocol adds.

    The protocol floor (the issue's definition) adds one bare gRPC echo round trip; the client
    floor (``client=True``) adds the unchanged pymilvus search call against a server that
    answers at once (bench.instant), which also covers pymilvus's request building and
    result parsing, and is the only one defined for batches. ``beside``: the metrics of the
    run being compared, whose floors measured beside its queries are preferred.
    """
    if faiss_run is None:
        return None
    floor = floor_parts(results, faiss_run["dim"], beside)
    key = "instant" if client else "echo"
    m = faiss_run["metrics"]
    if f"{key}_p50_ms" not in floor:
        return None
    if metric == "serial_p50_ms" and "serial_p50_ms" in m:
        return m["serial_p50_ms"] + floor[f"{key}_p50_ms"]
    if metric == "serial_p99_ms" and "serial_p99_ms" in m:
        return m["serial_p99_ms"] + floor[f"{key}_p99_ms"]
    if metric in ("serial_qps", "conc1_qps") and "serial_mean_ms" in m:
        return 1e3 / (m["serial_mean_ms"] + floor[f"{key}_mean_ms"])
    if metric == "batch_qps" and client and m.get("batch_qps") and floor.get("instant_batch_qps"):
        return 1.0 / (1.0 / m["batch_qps"] + 1.0 / floor["instant_batch_qps"])
    return None


def _ratio(a: Any, b: Any) -> str:
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or not b or math.isnan(b):
        return "—"
    return f"{a / b:.2f}"


def scalar_gain_table(runs: list[dict[str, Any]]) -> list[str]:
    """Each server's filter figures with the scalar index ÷ the same figures scanning."""
    lines = ["| index | system | " + " | ".join(f"{a} ÷ {b}" for a, b in SIDX_GAINS) + " |",
             "|---|---|" + "---:|" * len(SIDX_GAINS)]
    for r in runs:
        m = r["metrics"]
        lines.append(f"| {r['index']} | {r['system']} | " + " | ".join(_ratio(m.get(a), m.get(b)) for a, b in SIDX_GAINS)
                     + " |")
    return lines


def ratio_table(results: dict[str, Any], runs: list[dict[str, Any]]) -> list[str]:
    by = {(r["index"], r["system"]): r for r in runs}
    lines = ["| index | metric | shoal | milvus-lite | faiss | floor | client floor | shoal/milvus-lite | shoal/faiss "
             "| shoal/floor | shoal/client floor |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for index in dict.fromkeys(r["index"] for r in runs):
        s, ml, fa = (by.get((index, n)) for n in ("shoal", "milvus-lite", "faiss"))
        for metric in RATIO_METRICS:
            vals = [x["metrics"].get(metric) if x else None for x in (s, ml, fa)]
            beside = s["metrics"] if s else None
            fl = floor_value(results, fa, metric, beside=beside)
            cf = floor_value(results, fa, metric, client=True, beside=beside)
            if all(v is None for v in vals):
                continue
            sv = vals[0]
            lines.append(f"| {index} | {metric} | {fmt(sv)} | {fmt(vals[1])} | {fmt(vals[2])} | {fmt(fl)} | {fmt(cf)} | "
                         f"{_ratio(sv, vals[1])} | {_ratio(sv, vals[2])} | {_ratio(sv, fl)} | {_ratio(sv, cf)} |")
    return lines


def render(results: dict[str, Any]) -> str:
    meta = results["meta"]
    cfg = meta["config"]
    out = [f"# Benchmark results — {meta['started'][:19]} UTC", "",
           "Produced by `python -m bench` (see `docs/bench.md`). Command:", "", f"    {meta['command']}", "",
           "## Machine", ""]
    out += [f"- {k}: {v}" for k, v in meta["machine"].items()]
    out += ["", "## Versions (every installed package is in results.json)", ""]
    out += [f"- {k}: {v}" for k, v in meta["versions"].items()]
    out += ["", "## Workloads", "", "| workload | rows | dim | metric | queries |", "|---|---:|---:|---|---:|"]
    out += [f"| {w['name']} | {w['rows']} | {w['dim']} | {w['metric']} | {w['queries']} |" for w in meta["workloads"]]
    for wname, why in meta.get("skipped_workloads", {}).items():
        out.append(f"| {wname} | skipped: {why} | | | |")
    out += ["", f"Top-10 everywhere; batch nq={cfg['batch_nq']}; concurrency 1/4/16 client threads; "
            f"filters `cat == 7` (1 %) and `cat < 50` (50 %); HNSW M=16 efConstruction=200 ef=64; "
            f"IVF nlist ≤ 1024 (scaled to the size), nprobe ≤ 16.", "",
            "## Floors (each its own process on loopback)", "",
            "Protocol floor: a bare gRPC unary echo of a search-sized payload. Client floor: the unchanged "
            "pymilvus `MilvusClient.search` against a server that answers at once (`bench/instant.py`): "
            "pymilvus's own request building and result parsing plus gRPC, which no server can remove. "
            "In the ratio tables, floor = faiss + echo and client floor = faiss + that call, where echo and "
            "call are the ones timed beside Shoal's own queries (one of each right after every serial query "
            "and batch, table \"Floors beside each system\"); the figures below, measured once at the start, "
            "stand in only where those are missing.", "",
            "| dim | echo bytes | echo p50 ms | echo p99 ms | echo mean ms | pymilvus p50 ms | pymilvus p99 ms "
            "| pymilvus mean ms | pymilvus nq=100 q/s |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for dim, e in results["floor"].items():
        out.append(f"| {dim} | {fmt(e['echo_payload_bytes'])} | {fmt(e['echo_p50_ms'])} | {fmt(e['echo_p99_ms'])} "
                   f"| {fmt(e['echo_mean_ms'])} | {fmt(e.get('instant_p50_ms'))} | {fmt(e.get('instant_p99_ms'))} "
                   f"| {fmt(e.get('instant_mean_ms'))} | {fmt(e.get('instant_batch_qps'))} |")
    for wname in dict.fromkeys(r["workload"] for r in results["runs"]):
        runs = [r for r in results["runs"] if r["workload"] == wname]
        out += ["", f"## {wname}", "", "### Load and resources (s, rows/s, MB)", ""] + _table(runs, LOAD_COLS)
        out += ["", "### Search (nq=1 serial, nq=100 batch, 1/4/16 threads)", ""] + _table(runs, SEARCH_COLS)
        remote = [r for r in runs if any(c in r["metrics"] for c in BESIDE_COLS)]
        if remote:
            out += ["", "### Floors beside each system (echo and instant pymilvus call after each of its queries)",
                    ""] + _table(remote, BESIDE_COLS)
        out += ["", "### Filters (1 % and 50 % filtered search; filter-only query and count)", ""]
        out += _table(runs, FILTER_COLS)
        indexed = [r for r in runs if any(c in r["metrics"] for c in SIDX_COLS) or "scalar_index" in r["errors"]]
        if indexed:
            out += ["", "### Scalar index: the filter phases again after an INVERTED index on `cat`", ""]
            out += _table(indexed, SIDX_COLS) + ["", "With the index ÷ scanning (>1: the index made it faster):", ""]
            out += scalar_gain_table(indexed)
        swept = [r for r in runs if r.get("sweep")]
        if swept:
            out += ["", "### Recall vs QPS sweeps (serial nq=1; `value: QPS / recall@10`)", "",
                    "| index | system | points |", "|---|---|---|"]
            for r in swept:
                pts = "; ".join(f"{k}={p[k]}: {fmt(p['qps'])} / {p['recall_at_10']:.3f}"
                                for p in r["sweep"] for k in p if k in ("nprobe", "ef"))
                out.append(f"| {r['index']} | {r['system']} | {pts} |")
        out += ["", "### Ratios (Shoal ÷ other; >1 is better for QPS, recall, rows/s; <1 for s, ms, MB)", ""]
        out += ratio_table(results, runs)
    if results.get("streaming"):
        st = results["streaming"]
        out += ["", f"## Streaming: search while inserting and deleting ({st[0]['workload']}, {st[0]['index']})", "",
                "| system | " + " | ".join(STREAM_COLS) + " |", "|---|" + "---:|" * len(STREAM_COLS)]
        for r in st:
            cells = [fmt(r["metrics"].get(c)) if c in r["metrics"] else ("ERR" if r["errors"] else "—")
                     for c in STREAM_COLS]
            out.append(f"| {r['system']} | " + " | ".join(cells) + " |")
    errors = [(r["workload"], r["system"], r["index"], p, e) for r in results["runs"] + results.get("streaming", [])
              for p, e in r["errors"].items() if not e.startswith("skipped")]
    if errors:
        out += ["", "## Errors (a failed phase is recorded, the run goes on)", "",
                "| workload | system | index | phase | error |", "|---|---|---|---|---|"]
        out += [f"| {w} | {s} | {i} | {p} | {e.replace('|', '/')[:200]} |" for w, s, i, p, e in errors]
    out += ["", "## Plots", "", "![recall vs QPS](recall_vs_qps.png)", "", "![latency](latency.png)", ""]
    return "\n".join(out)
