"""Command line of ``python -m bench``: builds the config, runs every workload, writes the results.

Neighbours: :mod:`bench.runner` (phases), :mod:`bench.report` and :mod:`bench.plots` (output).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import shutil
import sys
import tempfile
from contextlib import ExitStack, closing
from pathlib import Path
from typing import Any

from tqdm import tqdm

from bench import corpus, workloads
from bench.config import INDEX_TYPES, SYSTEMS, WORKLOADS, BenchConfig, index_spec, parse_size
from bench.echo import EchoProbe, measure_echo
from bench.instant import InstantProbe, measure_instant
from bench.machine import all_packages, machine, versions
from bench.measure import Probe
from bench.runner import run_index, run_streaming
from bench.systems import make_system


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_args(argv: list[str] | None) -> BenchConfig:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="tiny sizes and few queries: a smoke test in < 3 min")
    p.add_argument("--sizes", default=None, help="rows per synthetic collection, e.g. 100k,1m,5m")
    p.add_argument("--dims", default=None, help="synthetic dimensions, e.g. 128,768")
    p.add_argument("--indexes", default=",".join(INDEX_TYPES))
    p.add_argument("--systems", default=",".join(SYSTEMS))
    p.add_argument("--workloads", default=",".join(WORKLOADS), help="synthetic,text,streaming")
    p.add_argument("--queries", type=int, default=None, help="queries per serial phase")
    p.add_argument("--text-docs", type=int, default=None, help="fortunes to embed (0 = all)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--phase-seconds", type=float, default=60.0,
                   help="time budget of each timing loop (serial, batch, each concurrency level, each filter)")
    p.add_argument("--out", default=None, help="results folder (default bench/results/<date>-<name>)")
    p.add_argument("--name", default=None, help="suffix of the default results folder")
    a = p.parse_args(argv)
    quick = a.quick
    cfg = BenchConfig(
        sizes=[parse_size(s) for s in _csv(a.sizes or ("2000" if quick else "100k"))],
        dims=[int(d) for d in _csv(a.dims or ("32" if quick else "128"))],
        indexes=[i.upper() for i in _csv(a.indexes)],
        systems=_csv(a.systems),
        workloads=_csv(a.workloads),
        out=a.out or "",
        quick=quick,
        seed=a.seed,
        phase_budget_s=a.phase_seconds,
        command="python -m bench " + " ".join(shlex.quote(x) for x in (argv if argv is not None else sys.argv[1:])),
    )
    for bad, known, what in ((cfg.systems, SYSTEMS, "system"), (cfg.indexes, INDEX_TYPES, "index"),
                             (cfg.workloads, WORKLOADS, "workload")):
        unknown = set(bad) - set(known)
        if unknown:
            p.error(f"unknown {what}(s) {sorted(unknown)}; choose from {', '.join(known)}")
    if quick:
        cfg.n_queries, cfg.batch_rounds, cfg.concurrent_queries = 30, 3, 48
        cfg.filtered_queries, cfg.filter_only_queries, cfg.sweep_queries = 15, 5, 20
        cfg.text_docs, cfg.stream_batches, cfg.stream_batch_rows, cfg.insert_batch = 600, 4, 100, 1000
    if a.queries:
        cfg.n_queries = a.queries
        cfg.filtered_queries = min(cfg.filtered_queries, a.queries)
    if a.text_docs is not None:
        cfg.text_docs = a.text_docs
    if cfg.stream_index not in cfg.indexes:
        cfg.stream_index = cfg.indexes[0]
    if not cfg.out:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
        cfg.out = f"bench/results/{stamp}-{a.name or ('quick' if quick else 'run')}"
    return cfg


def build_workloads(cfg: BenchConfig, skipped: dict[str, str]) -> list[workloads.Workload]:
    """The workloads to run; one that cannot be built is named in ``skipped`` with the reason."""
    out = []
    if "synthetic" in cfg.workloads or "streaming" in cfg.workloads:
        for n in cfg.sizes:
            for dim in cfg.dims:
                tqdm.write(f"generating synthetic {n} x {dim} and its ground truth")
                out.append(workloads.synthetic(n, dim, cfg.n_queries, cfg.filtered_queries, cfg.seed))
    if "text" in cfg.workloads:
        tqdm.write("loading the embedded fortunes corpus (first run embeds it, then it is cached)")
        try:
            texts, vectors = corpus.load_embedded_corpus(cfg.text_docs)
        except corpus.CorpusUnavailable as exc:
            skipped["text"] = str(exc)
            tqdm.write(f"text workload skipped: {exc}")
        else:
            out.append(workloads.text(texts, vectors, cfg.n_queries, cfg.filtered_queries, cfg.seed))
    return out


def run(cfg: BenchConfig) -> dict[str, Any]:
    started = dt.datetime.now(dt.UTC)
    results: dict[str, Any] = {"meta": {"command": cfg.command, "started": started.isoformat(),
                                        "machine": machine(), "versions": versions(), "all_packages": all_packages(),
                                        "config": {k: v for k, v in vars(cfg).items()}},
                               "floor": {}, "runs": [], "streaming": []}
    workdir = tempfile.mkdtemp(prefix="shoal-bench-")
    try:
        _run_all(cfg, results, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def _run_all(cfg: BenchConfig, results: dict[str, Any], workdir: str) -> None:
    all_w = build_workloads(cfg, results["meta"].setdefault("skipped_workloads", {}))
    for dim in sorted({w.dim for w in all_w}):
        rounds = 200 if cfg.quick else 2000
        results["floor"][str(dim)] = {**measure_echo(dim * 4 + 128, rounds), **measure_instant(dim, rounds, cfg.batch_nq)}
    jobs = [(w, i, s) for w in all_w if "synthetic" in cfg.workloads or w.name.startswith("text")
            for i in cfg.indexes for s in cfg.systems]
    with tqdm(total=len(jobs), desc="system x index", unit="run") as bar, ExitStack() as probes:
        beside: dict[int, dict[str, Probe]] = {}
        for w, index_type, system_name in jobs:
            bar.set_postfix_str(f"{w.name} {index_type} {system_name}")
            system = make_system(system_name, workdir)
            if not system.in_process and w.dim not in beside:
                beside[w.dim] = {"echo": probes.enter_context(closing(EchoProbe(w.dim * 4 + 128))),
                                 "instant": probes.enter_context(closing(InstantProbe()))}
            record = run_index(system, w, index_spec(index_type, w.n, w.dim, cfg.quick), cfg,
                               None if system.in_process else beside[w.dim])
            results["runs"].append(record)
            bar.update()
    synth = [w for w in all_w if w.name.startswith("synthetic")]
    if "streaming" in cfg.workloads and synth:
        w = synth[0]
        for system_name in tqdm(cfg.systems, desc="streaming", unit="system"):
            spec = index_spec(cfg.stream_index, w.n, w.dim, cfg.quick)
            results["streaming"].append(run_streaming(make_system(system_name, workdir), w, spec, cfg))
    results["meta"]["finished"] = dt.datetime.now(dt.UTC).isoformat()
    results["meta"]["workloads"] = [{"name": w.name, "rows": w.n, "dim": w.dim, "metric": w.metric,
                                     "queries": int(w.queries.shape[0])} for w in all_w]


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    results = run(cfg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    from bench import plots, report

    plots.write_plots(results, out)
    (out / "README.md").write_text(report.render(results))
    tqdm.write(f"results in {out}/ (README.md, results.json, *.png)")
    return 0
