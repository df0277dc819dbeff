"""README and plots of a :mod:`bench.scale` run: issue 21's targets, met or missed, with the figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from bench.plots import COLORS, MARKERS  # noqa: E402
from bench.report import fmt  # noqa: E402

RECALL_GOAL = 0.95
NAN = float("nan")


def _first_good(sweep: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The sweep point with the lowest p99 among those with recall@10 at or above the goal."""
    good = [p for p in sweep if p["recall_at_10"] >= RECALL_GOAL]
    return min(good, key=lambda p: p["p99_ms"]) if good else None


def _param(p: dict[str, Any]) -> str:
    return f"ef {p['ef']}" if "ef" in p else f"nprobe {p['nprobe']}"


def _same_point(sweep: list[dict[str, Any]], p: dict[str, Any]) -> dict[str, Any] | None:
    key = "ef" if "ef" in p else "nprobe"
    return next((q for q in sweep if q.get(key) == p[key]), None)


def _verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("met" if ok else "**missed**")


def targets(results: dict[str, Any]) -> list[str]:
    s = results["systems"].get("shoal", {})
    f = results["systems"].get("faiss", {})
    rows = ["| target | figure | verdict |", "|---|---|---|"]
    ing = s.get("ingest")
    if ing:
        slow = ing["slowest_window_rows_per_s"]
        rows.append(f"| ingest ≥ 50k rows/s sustained | {fmt(ing['rows_per_s'])} rows/s overall, slowest "
                    f"{fmt(ing['window_rows'])}-row window {fmt(slow)} rows/s | {_verdict(slow >= 50_000)} |")
    for name, idx in s.get("indexes", {}).items():
        sweep = idx.get("sweep") or []
        good = _first_good(sweep)
        if sweep:
            if good:
                rows.append(f"| {name}: serial p99 < 100 ms at recall@10 ≥ 0.95 | {_param(good)}: p99 "
                            f"{fmt(good['p99_ms'])} ms, recall {good['recall_at_10']:.3f} | "
                            f"{_verdict(good['p99_ms'] < 100)} |")
            else:
                best = max(sweep, key=lambda p: p["recall_at_10"])
                rows.append(f"| {name}: serial p99 < 100 ms at recall@10 ≥ 0.95 | best recall "
                            f"{best['recall_at_10']:.3f} ({_param(best)}) | **missed** |")
        fs = (f.get("indexes", {}).get(name) or {}).get("sweep") or []
        if name == "HNSW" and good:
            fp = _same_point(fs, good)
            if fp and "echo_p50_ms" in good:
                floor = fp["p50_ms"] + good["echo_p50_ms"]
                rows.append(f"| HNSW: p50 ≤ 2x protocol floor | {_param(good)}: p50 {fmt(good['p50_ms'])} ms, floor "
                            f"{fmt(floor)} ms (faiss {fmt(fp['p50_ms'])} + echo {fmt(good['echo_p50_ms'])}): "
                            f"{good['p50_ms'] / floor:.2f}x | {_verdict(good['p50_ms'] <= 2 * floor)} |")
        load = idx.get("after_load") or {}
        if load.get("index_mb"):
            budget = results["data"]["raw_mb"] + load["index_mb"]
            hwm = idx.get("after_search", {}).get("vmhwm_mb", load.get("vmhwm_mb", NAN))
            rows.append(f"| {name}: resident ≤ 1.3x (raw vectors + index) | RSS after load {fmt(load.get('rss_mb'))} MB, "
                        f"peak (VmHWM) {fmt(hwm)} MB{_split(idx.get('after_search') or {})} vs raw "
                        f"{fmt(results['data']['raw_mb'])} + index "
                        f"{fmt(load['index_mb'])} MB: {hwm / budget:.2f}x | {_verdict(hwm <= 1.3 * budget)} |")
        for r in idx.get("restart") or []:
            rows.append(f"| restart serves in ≤ 60 s ({r['signal']}) | {fmt(r['serving_s'])} s to a search over every "
                        f"row (process answering after {fmt(r['process_ready_s'])} s) | {_verdict(r['serving_s'] <= 60)} |")
        fidx = f.get("indexes", {}).get(name) or {}
        fb = fidx.get("build_s")
        partial = (fidx.get("add_progress") or [None])[-1]
        if idx.get("build_s") and not fb and partial:
            bound = idx["build_s"] / partial["s"]
            rows.append(f"| {name}: build ≤ in-process faiss, same threads | Shoal {fmt(idx['build_s'])} s; faiss had "
                        f"added {partial['rows']:,} of {results['data']['rows']:,} rows after {fmt(partial['s'])} s "
                        f"when it stopped: at most {bound:.2f}x | {_verdict(bound <= 1.0) if bound <= 1.0 else '—'} |")
        if idx.get("build_s") and fb:
            ratio = idx["build_s"] / fb
            rows.append(f"| {name}: build ≤ in-process faiss, same threads | Shoal {fmt(idx['build_s'])} s, faiss "
                        f"{fmt(fb)} s: {ratio:.2f}x | {_verdict(ratio <= 1.0)} |")
    avail = results["meta"].get("min_available_mb")
    errs = [n for n, r in results["systems"].items() if r.get("error")]
    rows.append(f"| no OOM in build, flush or compaction | lowest available memory {fmt(avail)} MB; "
                f"failed systems: {', '.join(errs) or 'none'} | {_verdict(not errs)} |")
    return rows


def render(results: dict[str, Any]) -> str:
    meta, data = results["meta"], results.get("data", {})
    out = [f"# Scale run: {data.get('rows', 0):,} × {data.get('dim')} (`python -m bench.scale`)", "",
           f"Command: `{meta['command']}`", "",
           f"Started {meta['started']}, finished {meta.get('finished', '(running or cut off)')}.", ""]
    m = meta["machine"]
    out.append(f"Machine: {m['cpu_model']}, {m['cpus']} CPUs, {m['memory_gb']} GB, {m['os']}, Python {m['python']}.")
    out.append("Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v != "not installed") + ".")
    p = meta["params"]
    out += ["", f"Data: mixture of Gaussians (the synthetic workload's generator, seed {data.get('seed')}), "
            f"{fmt(data.get('raw_mb'))} MB of raw vectors in memory-mapped files; {data.get('queries')} queries, "
            f"exact top-10 (L2) by faiss IndexFlatL2 over 1M-row chunks. Generated in {fmt(data.get('gen_s'))} s, "
            f"ground truth in {fmt(data.get('truth_s'))} s (both timed when first made; later runs reuse the cache).",
            f"Parameters: HNSW M {p['hnsw_m']}, efConstruction {p['ef_construction']}; IVF nlist {p['nlist']}; "
            f"faiss builds with {p['threads']} threads (IVF trained on {_train_rows()} sampled rows, as Shoal trains "
            f"each segment); inserts of {p['insert_batch']} rows from {_clients(p)}; "
            "serial nq=1 top-10 searches, the echo floor timed after every server query.", "",
            "## Issue 21 targets", ""]
    out += targets(results)
    out += ["", "## Ingest and build", "", "| system | rows/s | slowest window rows/s | flush s | index | build s |"
            " load s | faiss build s | ratio |", "|---|---|---|---|---|---|---|---|---|"]
    faiss_idx = results["systems"].get("faiss", {}).get("indexes", {})
    for name, rec in results["systems"].items():
        ing = rec.get("ingest") or {}
        for iname, idx in rec.get("indexes", {}).items():
            fb = faiss_idx.get(iname, {}).get("build_s")
            ratio = f"{idx['build_s'] / fb:.2f}x" if name != "faiss" and idx.get("build_s") and fb else "—"
            out.append(f"| {name} | {fmt(ing.get('rows_per_s'))} | {fmt(ing.get('slowest_window_rows_per_s'))} | "
                       f"{fmt(rec.get('flush_s'))} | {iname} | {fmt(idx.get('build_s'))} | {fmt(idx.get('load_s'))} | "
                       f"{fmt(fb)} | {ratio} |")
    out += ["", "## Serial search sweep (nq=1, top 10)", "",
            "| system | index | param | p50 ms | p99 ms | recall@10 | q/s | echo p50 ms | floor p50 ms | p50 ÷ floor |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for name, rec in results["systems"].items():
        for iname, idx in rec.get("indexes", {}).items():
            for pt in idx.get("sweep") or []:
                fp = _same_point(faiss_idx.get(iname, {}).get("sweep") or [], pt)
                floor = fp["p50_ms"] + pt["echo_p50_ms"] if fp and "echo_p50_ms" in pt else None
                ratio = f"{pt['p50_ms'] / floor:.2f}x" if floor else "—"
                out.append(f"| {name} | {iname} | {_param(pt)} | {fmt(pt['p50_ms'])} | {fmt(pt['p99_ms'])} | "
                           f"{pt['recall_at_10']:.3f} | {fmt(pt['qps'])} | {fmt(pt.get('echo_p50_ms'))} | {fmt(floor)} | "
                           f"{ratio} |")
    firsts = [(n, i, idx["first_pass"]) for n, rec in results["systems"].items()
              for i, idx in rec.get("indexes", {}).items() if idx.get("first_pass")]
    if firsts:
        out += ["", "The first pass over the queries right after load (before the sweep, at the sweep's last "
                "parameter; index pages the page cache lost are read from disk):", "",
                "| system | index | param | queries | p50 ms | p99 ms | recall@10 |", "|---|---|---|---|---|---|---|"]
        out += [f"| {n} | {i} | {_param(f)} | {fmt(f['queries'])} | {fmt(f['p50_ms'])} | {fmt(f['p99_ms'])} | "
                f"{f['recall_at_10']:.3f} |" for n, i, f in firsts]
    out += ["", "## Memory and disk (MB)", "",
            "| system | index | raw vectors | index files | RSS after load | RSS after search (anon + file) | VmHWM "
            "| RSS after restart | disk |",
            "|---|---|---|---|---|---|---|---|---|"]
    for name, rec in results["systems"].items():
        for iname, idx in rec.get("indexes", {}).items():
            load = idx.get("after_load") or {}
            end = idx.get("after_search") or {}
            out.append(f"| {name} | {iname} | {fmt(data.get('raw_mb'))} | {fmt(load.get('index_mb') or idx.get('index_mb'))} | "
                       f"{fmt(load.get('rss_mb', idx.get('process_rss_mb')))} | {fmt(end.get('rss_mb'))}"
                       f"{_split(end)} | {fmt(end.get('vmhwm_mb'))} | "
                       f"{fmt((idx.get('after_restart') or {}).get('rss_mb'))} | {fmt(end.get('disk_mb'))} |")
    out += ["", f"Lowest available memory on the machine during the run: {fmt(meta.get('min_available_mb'))} MB "
            "(`memory.png`: the server's RSS and the machine's available memory over the run).", ""]
    loads: dict[str, list[float]] = {}
    for s in results.get("memory") or []:
        if "load1" in s:
            loads.setdefault(s["phase"], []).append(s["load1"])
    if loads:
        out += ["Load average (1 min) per phase, min–max (2 CPUs; above 2 means something else ran too): "
                + "; ".join(f"{ph} {min(v):.1f}–{max(v):.1f}" for ph, v in loads.items()) + ".", ""]
    restarts = [(n, i, r) for n, rec in results["systems"].items() for i, idx in rec.get("indexes", {}).items()
                for r in idx.get("restart") or []]
    if restarts:
        out += ["## Restart", "", "| system | index | signal | process answers s | search over every row s | "
                "loaded by itself |", "|---|---|---|---|---|---|"]
        out += [f"| {n} | {i} | {r['signal']} | {fmt(r['process_ready_s'])} | {fmt(r['serving_s'])} | "
                f"{r['loaded_by_itself']} |" for n, i, r in restarts]
        out.append("")
    notes = meta.get("notes") or []
    if notes:
        out += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    errors = [(n, i, idx["error"]) for n, rec in results["systems"].items()
              for i, idx in rec.get("indexes", {}).items() if idx.get("error")]
    errors += [(n, "", rec["error"]) for n, rec in results["systems"].items() if rec.get("error")]
    if errors:
        out += ["## Errors", "", "| system | index | error |", "|---|---|---|"]
        out += [f"| {n} | {i} | {e} |" for n, i, e in errors]
        out.append("")
    return "\n".join(out) + "\n"


def _split(res: dict[str, Any]) -> str:
    if "rss_anon_mb" not in res:
        return ""
    return f" ({fmt(res['rss_anon_mb'])} + {fmt(res['rss_file_mb'])})"


def _clients(p: dict[str, Any]) -> str:
    if "insert_procs" in p:
        return f"{p['insert_procs']} pymilvus client processes"
    return f"{p['insert_threads']} pymilvus client threads in one process"  # runs before the processes


def _train_rows() -> str:
    from shoal.index.dense import TRAIN_ROWS

    return fmt(TRAIN_ROWS)


def write_plots(results: dict[str, Any], out: Path) -> None:
    systems = results["systems"]
    names = list(dict.fromkeys(i for rec in systems.values() for i in rec.get("indexes", {})))
    if names:
        fig, axes = plt.subplots(1, len(names), figsize=(6 * len(names), 4.5), squeeze=False)
        for ax, iname in zip(axes[0], names, strict=False):
            for sname, rec in systems.items():
                sweep = (rec.get("indexes", {}).get(iname) or {}).get("sweep") or []
                if sweep:
                    ax.plot([p["p50_ms"] for p in sweep], [p["recall_at_10"] for p in sweep],
                            marker=MARKERS.get(sname, "x"), color=COLORS.get(sname, "grey"), label=sname)
                    for p in sweep:
                        ax.annotate(_param(p), (p["p50_ms"], p["recall_at_10"]), fontsize=7, xytext=(3, 3),
                                    textcoords="offset points")
            ax.axhline(RECALL_GOAL, color="grey", lw=0.6, ls="--")
            ax.set_xscale("log")
            ax.set_xlabel("serial p50 ms (nq=1, top-10, log)")
            ax.set_ylabel("recall@10")
            ax.set_title(f"{iname}, {fmt(results.get('data', {}).get('rows'))} rows", fontsize=9)
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "recall_vs_latency.png", dpi=110)
        plt.close(fig)
    mem = results.get("memory") or []
    if mem:
        fig, ax = plt.subplots(figsize=(9, 4.5))
        t = [s["t"] / 60 for s in mem]
        ax.plot(t, [s["server_rss_mb"] / 1e3 for s in mem], label="server RSS", color="tab:blue")
        ax.plot(t, [s["self_rss_mb"] / 1e3 for s in mem], label="bench process RSS (faiss)", color="tab:green")
        ax.plot(t, [s["available_mb"] / 1e3 for s in mem], label="machine available", color="tab:red", lw=0.8)
        last = None
        for s in mem:
            if s["phase"] != last:
                ax.axvline(s["t"] / 60, color="grey", lw=0.3)
                ax.annotate(s["phase"], (s["t"] / 60, 0), rotation=90, fontsize=6, va="bottom")
                last = s["phase"]
        ax.set_xlabel("minutes into the run")
        ax.set_ylabel("GB")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "memory.png", dpi=110)
        plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.scale_report DIR [--note TEXT ...]``: README.md and the plots again from
    DIR/results.json, after adding each note (what the numbers alone do not say) to it."""
    import argparse
    import json

    p = argparse.ArgumentParser(prog="python -m bench.scale_report")
    p.add_argument("folder")
    p.add_argument("--note", action="append", default=[])
    a = p.parse_args(argv)
    out = Path(a.folder)
    results = json.loads((out / "results.json").read_text())
    if a.note:
        results["meta"].setdefault("notes", []).extend(a.note)
        (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    (out / "README.md").write_text(render(results))
    write_plots(results, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
