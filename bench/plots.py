"""PNG plots of a results dict: recall vs serial QPS, and latency percentiles, per system."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

MARKERS = {"shoal": "o", "milvus-lite": "s", "faiss": "^"}
COLORS = {"shoal": "tab:blue", "milvus-lite": "tab:orange", "faiss": "tab:green"}


def write_plots(results: dict[str, Any], out: Path) -> None:
    runs = [r for r in results["runs"] if "serial_qps" in r["metrics"]]
    workloads = list(dict.fromkeys(r["workload"] for r in results["runs"])) or ["(none)"]
    fig, axes = plt.subplots(1, len(workloads), figsize=(6 * len(workloads), 4.5), squeeze=False)
    for ax, wname in zip(axes[0], workloads, strict=False):
        for system in dict.fromkeys(r["system"] for r in runs):
            pts = [r for r in runs if r["workload"] == wname and r["system"] == system]
            for r in pts:  # the nprobe / ef sweep of each index as a thin line
                curve = r.get("sweep") or []
                if len(curve) > 1:
                    ax.plot([p["qps"] for p in curve], [p["recall_at_10"] for p in curve], lw=0.8, alpha=0.6,
                            color=COLORS.get(system, "grey"))
            ax.scatter([r["metrics"]["serial_qps"] for r in pts], [r["metrics"].get("recall_at_10", 0) for r in pts],
                       marker=MARKERS.get(system, "x"), label=system, s=50, color=COLORS.get(system, "grey"))
            for r in pts:
                ax.annotate(r["index"], (r["metrics"]["serial_qps"], r["metrics"].get("recall_at_10", 0)),
                            fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("serial QPS (nq=1, top-10, log); lines: nprobe / ef sweeps")
        ax.set_ylabel("recall@10")
        ax.set_title(wname, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "recall_vs_qps.png", dpi=110)
    plt.close(fig)

    labels = [f"{r['workload'].split('-')[0]}:{r['index']}\n{r['system']}" for r in runs]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(runs)), 4.5))
    xs = range(len(runs))
    for key, off, color in (("serial_p50_ms", -0.2, "tab:blue"), ("serial_p90_ms", 0.0, "tab:orange"),
                            ("serial_p99_ms", 0.2, "tab:red")):
        ax.bar([x + off for x in xs], [r["metrics"].get(key, 0) for r in runs], width=0.2, label=key[7:], color=color)
    ax.set_xticks(list(xs))
    ax.set_xticklabels(labels, rotation=90, fontsize=6)
    ax.set_yscale("log")
    ax.set_ylabel("search latency, ms (nq=1, log)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "latency.png", dpi=110)
    plt.close(fig)


def write_vdbbench_plot(rec: dict[str, Any], out: Path) -> None:
    """VectorDBBench's q/s at each concurrency, a line per ef (with its recall@k), beside issue
    21's target and Milvus's published q/s per core times this machine's cores."""
    runs = [r for r in rec.get("runs", []) if r.get("metrics", {}).get("conc_num_list")]
    if not runs:
        return
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for r in runs:
        m = r["metrics"]
        ax.plot(m["conc_num_list"], m["conc_qps_list"], marker="o", label=f"Shoal, ef {r['ef']} (recall {m['recall']:.3f})")
    cores = int(rec.get("machine", {}).get("cpus") or 1)
    pub = rec.get("published") or {}
    if pub.get("qps") and pub.get("cores"):
        per_core = pub["qps"] / pub["cores"]
        ax.axhline(per_core * cores, color="grey", ls="--", lw=1,
                   label=f"Milvus {pub.get('version', '')} published, per core x {cores} ({per_core * cores:.0f})")
    ax.axhline(500, color="tab:red", ls=":", lw=1, label="issue 21 target (500 q/s at recall >= 0.96)")
    ax.set_xscale("log", base=2)
    ticks = sorted({c for r in runs for c in r["metrics"]["conc_num_list"]})
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.set_xlabel("concurrent VectorDBBench clients")
    ax.set_ylabel("q/s")
    ax.set_ylim(bottom=0)
    ax.set_title(f"VectorDBBench {rec.get('dataset', {}).get('rows', '')} x {rec.get('dataset', {}).get('dim', '')}, "
                 f"{rec.get('index', '')}", fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "qps_vs_concurrency.png", dpi=110)
    plt.close(fig)


def write_concurrency_plot(report: dict[str, Any], out: Path) -> None:
    """`bench.concurrency`: q/s and server CPU per search of each server (means over rounds),
    the instant server first: the floor the ratios are taken against."""
    mean = report.get("mean") or {}
    if not mean:
        return
    names = sorted(mean, key=lambda n: n != "instant")
    clients = (report.get("args") or {}).get("clients", "")
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for ax, key, label in ((axes[0], "qps", "q/s"), (axes[1], "server_cpu_ms_per_search", "server CPU ms per search")):
        values = [mean[n][key] for n in names]
        ax.bar(names, values, color=["tab:grey" if n == "instant" else "tab:blue" for n in names])
        for x, v in enumerate(values):
            ax.annotate(f"{v:,.0f}" if v >= 100 else f"{v:.3g}", (x, v), ha="center", va="bottom", fontsize=8)
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"{clients} pymilvus client processes, nq=1: Shoal beside the instant server", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "concurrency.png", dpi=110)
    plt.close(fig)
