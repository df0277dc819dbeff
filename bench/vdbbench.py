"""VectorDBBench, the standard harness nobody here wrote, against a `shoal run` it starts.

    python -m bench.vdbbench --rows 1m --dim 768 --metric COSINE --m 16 --ef-construction 100 \
        --ef-search 200 --concurrency 1,2,4,8,16,32 --duration 30 --out bench/results/<date>-vdbbench-1m

VectorDBBench 2.0.0 (PyPI `vectordb-bench`, pinned) runs from its own virtual environment
(`--vdb-venv`, made on first use), with its Milvus client and a `PerformanceCustomDataset` in its
Parquet layout (:mod:`bench.vdbbench_data`, cached under `--data-root`). Its `milvushnswsq` case
is the index of the published Milvus 2.6.14 figure on Cohere 1M x 768 (16 CPU / 64 GB, HNSW_SQ
SQ8, M 16, efConstruction 300, no refine, ef 200, top 100: 4,006 q/s at recall 0.961, about
250 q/s per core): it inserts, flushes, compacts and force-merges, waits for the index, then
searches at each concurrency for `--duration` seconds and serially over every test query for
recall. The published run force-merged into one segment; `--segment-max-bytes` (default 4 GiB,
over a 1M x 768 collection) gives Shoal one segment the same way.

Beside VectorDBBench's own figures this records the server's CPU time (user + system) over the
whole run, its peak resident memory, and the machine. results.json and README.md go to `--out`
with VectorDBBench's result file and the tail of its log.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from bench.config import parse_size
from bench.machine import machine, versions
from bench.systems.servers import ServerProcess
from bench.vdbbench_data import add_dataset_args, write_dataset

VDB_VERSION = "2.0.0"
# The published figure this run is held against (VectorDBBench's results/Milvus, 2026-04-03).
MILVUS_PUBLISHED = {"version": "2.6.14", "machine": "16 CPU / 64 GB", "cores": 16, "qps": 4006.3994,
                    "recall": 0.9609, "index": "HNSW_SQ SQ8, M 16, efConstruction 300, ef 200, no refine",
                    "dataset": "Cohere 1M x 768 COSINE", "k": 100}
TARGET_QPS = 500.0
TARGET_RECALL = 0.96


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)


def vdb_bin(venv: Path) -> Path:
    """The `vectordbbench` command of a venv holding VectorDBBench VDB_VERSION, made if missing."""
    exe = venv / "bin" / "vectordbbench"
    marker = venv / f"vectordb-bench-{VDB_VERSION}"
    if not (exe.exists() and marker.exists()):
        log(f"installing vectordb-bench=={VDB_VERSION} into {venv}")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"vectordb-bench=={VDB_VERSION}"], check=True)
        marker.touch()
    return exe


def dataset(root: Path, rows: int, dim: int, metric: str, queries: int, k: int, seed: int) -> tuple[Path, dict]:
    where = root / f"vdb-{rows}-{dim}d-{metric.lower()}-q{queries}-k{k}-s{seed}"
    info_path = where / "dataset.json"
    if info_path.exists():
        return where, json.loads(info_path.read_text())
    log(f"dataset: {rows:,} x {dim} ({metric}) under {where}")
    return where, write_dataset(where, rows, dim, queries, k, seed, metric, log=log)


def vdb_command(exe: Path, uri: str, data_dir: Path, info: dict, a: argparse.Namespace) -> list[str]:
    return [
        str(exe), "milvushnswsq", "--uri", uri,
        "--m", str(a.m), "--ef-construction", str(a.ef_construction), "--ef-search", str(a.ef_search),
        "--sq-type", "SQ8", "--refine", "false", "--refine-type", "FP32", "--refine-k", "1",
        "--case-type", "PerformanceCustomDataset", "--custom-case-name", f"shoal-{info['rows']}",
        "--custom-dataset-name", data_dir.name, "--custom-dataset-dir", str(data_dir),
        "--custom-dataset-size", str(info["rows"]), "--custom-dataset-dim", str(info["dim"]),
        "--custom-dataset-metric-type", info["metric"], "--custom-dataset-file-count", "1",
        "--skip-custom-dataset-use-shuffled", "--custom-dataset-with-gt",
        "--custom-case-load-timeout", str(int(a.timeout_s)), "--custom-case-optimize-timeout", str(int(a.timeout_s)),
        "--k", str(info["k"]), "--num-concurrency", a.concurrency, "--concurrency-duration", str(a.duration),
        "--db-label", f"shoal-{a.label}",
    ]


def cpu_s(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return float(t.user + t.system + t.children_user + t.children_system)


def render(rec: dict[str, Any]) -> str:
    m = rec.get("metrics") or {}
    pub = MILVUS_PUBLISHED
    lines = [
        f"# VectorDBBench {VDB_VERSION} against Shoal: {rec['dataset']['rows']:,} x {rec['dataset']['dim']} "
        f"({rec['dataset']['metric']})",
        "",
        f"Command: `{rec['command']}`",
        "",
        f"Started {rec['started']}, finished {rec.get('finished', '(running or cut off)')}.",
        "",
        f"Machine: {rec['machine'].get('cpu_model', '')}, {rec['machine'].get('cpus', '')} CPUs, "
        f"{rec['machine'].get('memory_gb', '')} GB, {rec['machine'].get('os', '')}, Python {rec['machine'].get('python', '')}.",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in rec["versions"].items()) + f", vectordb-bench {VDB_VERSION}.",
        "",
        f"Dataset: {rec['dataset']['generator']} ({rec['dataset']['clusters']} clusters, seed "
        f"{rec['dataset']['seed']}), {rec['dataset']['queries']} test queries, exact top {rec['dataset']['k']} "
        "(faiss, streamed in chunks). The Cohere set of the published figure cannot be downloaded here.",
        f"Index: {rec['index']}. Shoal: one process, `SHOAL_SEGMENT_MAX_BYTES={rec['segment_max_bytes']}`.",
        "",
    ]
    if not m:
        lines += ["No VectorDBBench result was written (see `vectordbbench.log`).", ""]
        return "\n".join(lines)
    qps, recall = float(m.get("qps", 0.0)), float(m.get("recall", 0.0))
    cores = int(rec["machine"].get("cpus") or 2)
    met = qps >= TARGET_QPS and recall >= TARGET_RECALL
    lines += [
        "## Issue 21 target",
        "",
        "| target | figure | verdict |",
        "|---|---|---|",
        f"| ≥ {TARGET_QPS:.0f} q/s with concurrent clients at recall ≥ {TARGET_RECALL} | {qps:,.0f} q/s "
        f"(best concurrency), recall@{rec['dataset']['k']} {recall:.4f} | {'met' if met else '**missed**'} |",
        f"| per core vs Milvus {pub['version']} published ({pub['qps']:,.0f} q/s on {pub['cores']} cores, "
        f"recall {pub['recall']}) | {qps / cores:,.0f} vs {pub['qps'] / pub['cores']:,.0f} q/s per core: "
        f"{(qps / cores) / (pub['qps'] / pub['cores']):.2f}x | — |",
        "",
        "## VectorDBBench's figures",
        "",
        f"- load: insert {m.get('insert_duration', 0):.1f} s, optimize (flush, compact, force merge, index) "
        f"{m.get('optimize_duration', 0):.1f} s, total {m.get('load_duration', 0):.1f} s",
        f"- serial over {rec['dataset']['queries']} queries: p50 {1000 * m.get('serial_latency_p50', 0):.2f} ms, "
        f"p95 {1000 * m.get('serial_latency_p95', 0):.2f} ms, p99 {1000 * m.get('serial_latency_p99', 0):.2f} ms, "
        f"recall {recall:.4f}, ndcg {m.get('ndcg', 0):.4f}",
        "",
        "| concurrency | q/s | p50 ms | p99 ms |",
        "|---|---|---|---|",
    ]
    for c, q, p50, p99 in zip(m.get("conc_num_list", []), m.get("conc_qps_list", []),
                              m.get("conc_latency_p50_list", []), m.get("conc_latency_p99_list", []), strict=False):
        lines.append(f"| {c} | {q:,.0f} | {1000 * p50:.2f} | {1000 * p99:.2f} |")
    srv = rec.get("server", {})
    lines += [
        "",
        f"Server: CPU {srv.get('cpu_s', float('nan')):,.0f} s (user + system over the whole run), peak resident "
        f"(VmHWM) {srv.get('vmhwm_mb', float('nan')):,.0f} MB, data directory {srv.get('disk_mb', float('nan')):,.0f} MB.",
        f"Load average (1 min) during the run: {rec.get('load_min', 0):.1f}–{rec.get('load_max', 0):.1f} "
        "(2 CPUs; VectorDBBench's client processes run on the same 2 cores).",
        "",
    ]
    if rec.get("notes"):
        lines += ["## Notes", ""] + [f"- {n}" for n in rec["notes"]] + [""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.vdbbench", description=__doc__.split("\n\n")[0])
    add_dataset_args(p)
    p.add_argument("--m", type=int, default=16)
    p.add_argument("--ef-construction", type=int, default=100)
    p.add_argument("--ef-search", type=int, default=200)
    p.add_argument("--concurrency", default="1,2,4,8,16,32")
    p.add_argument("--duration", type=int, default=30, help="seconds per concurrency")
    p.add_argument("--segment-max-bytes", type=int, default=4 << 30)
    p.add_argument("--timeout-s", type=float, default=7200.0)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--label", default="run")
    p.add_argument("--vdb-venv", default=str(Path.home() / ".cache" / "shoal" / f"vdbbench-{VDB_VERSION}"))
    p.add_argument("--data-root", default="/tmp/shoal-vdbbench-data")
    p.add_argument("--workdir", default="/tmp/shoal-vdbbench-servers")
    p.add_argument("--out", required=True)
    p.add_argument("--note", action="append", default=[])
    a = p.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rec: dict[str, Any] = {
        "command": "python -m bench.vdbbench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "started": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(), "versions": versions(),
        "index": f"HNSW_SQ SQ8, M {a.m}, efConstruction {a.ef_construction}, ef {a.ef_search}, no refine",
        "segment_max_bytes": a.segment_max_bytes, "published": MILVUS_PUBLISHED, "notes": list(a.note),
    }

    def save() -> None:
        (out / "results.json").write_text(json.dumps(rec, indent=1, default=str))
        (out / "README.md").write_text(render(rec))

    exe = vdb_bin(Path(a.vdb_venv))
    data_dir, info = dataset(Path(a.data_root), parse_size(a.rows), a.dim, a.metric, a.queries, a.k, a.seed)
    rec["dataset"] = info
    shutil.rmtree(out / "vdb-results", ignore_errors=True)  # only this run's result file is read back
    os.environ["SHOAL_SEGMENT_MAX_BYTES"] = str(a.segment_max_bytes)  # the server inherits it
    server = ServerProcess("shoal", a.workdir)
    server.start(a.port, a.port + 1 if a.port else 0)
    assert server.proc is not None
    pid = server.proc.pid
    cpu0 = cpu_s(pid)
    save()
    env = dict(os.environ, HF_HUB_OFFLINE="1", RESULTS_LOCAL_DIR=str(out / "vdb-results"),
               LOG_FILE=str(Path(a.workdir) / "vectordb_bench.log"))
    cmd = vdb_command(exe, server.uri, data_dir, info, a)
    log(" ".join(cmd))
    loads: list[float] = []
    try:
        with open(out / "vectordbbench.log", "w") as vlog:
            proc = subprocess.Popen(cmd, stdout=vlog, stderr=subprocess.STDOUT, env=env, cwd=a.workdir)
            while proc.poll() is None:
                loads.append(os.getloadavg()[0])
                time.sleep(5)
        rec["vectordbbench_rc"] = proc.returncode
        rec["server"] = dict(server.resources(), cpu_s=cpu_s(pid) - cpu0)
    finally:
        server.stop()
    rec["load_min"], rec["load_max"] = (min(loads), max(loads)) if loads else (0.0, 0.0)
    found = sorted((out / "vdb-results").rglob("result_*.json"), key=lambda f: f.stat().st_mtime)
    if found:
        result = json.loads(found[-1].read_text())["results"][0]
        rec["metrics"] = result["metrics"]
        rec["vdb_case"] = result["task_config"]["db_case_config"]
    rec["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    save()
    log(f"wrote {out / 'README.md'}")
    return 0 if found else 1


if __name__ == "__main__":
    raise SystemExit(main())
