"""One chaos run and its report.

    python tests/chaos/chaos_run.py [--minutes 10] [--seed 19] [--out bench/results/<date>-chaos]

(`scripts/chaos.sh` runs this) starts its own `shoal cluster run` (2 coordinators, 2 streaming
nodes, 2 query nodes, 3 Kafka brokers), creates the checkers' collections, starts every checker
(`chaos_checkers.py`), runs the scheduler's events (`chaos_scheduler.py`) for the given minutes,
stops the checkers, audits (`chaos_audit.py`) and writes `report.md` and `report.json` in --out.
`tests/chaos/test_chaos.py` runs a short schedule the same way (`run_chaos`) on the session's
cluster.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(HERE), str(ROOT / "tests"), str(ROOT / "node"), str(ROOT)]
from chaos_audit import audit  # noqa: E402
from chaos_checkers import Checkers, create_collections  # noqa: E402
from chaos_scheduler import Scheduler  # noqa: E402

from shoal.cluster.supervisor import admin_call  # noqa: E402

BAR_PCT = 98.0  # the bar per checker (Milvus's own chaos threshold is 95 %)
BAR_SEARCH_OUTAGE_S = 10.0
START_TIMEOUT_S = 300.0


def run_chaos(uri: str, data_dir: Path, *, seconds: float, seed: int, query_nodes: int = 2, replicas: int = 1,
              plan: list[str] | None = None, interval_s: tuple[float, float] = (15.0, 40.0)) -> dict[str, Any]:
    """Checkers + scheduler for `seconds` on a running cluster, then the audit; the result as a dict."""
    procs = admin_call(data_dir, "GET", "/status")["processes"]
    if sum(p["name"].startswith("query-") for p in procs) != query_nodes:
        admin_call(data_dir, "POST", f"/scale?role=query&count={query_nodes}")
    expected = create_collections(uri, replicas)
    checkers = Checkers(uri, expected)
    checkers.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not checkers.started():
        if time.monotonic() > deadline:
            checkers.stop()
            raise RuntimeError(f"the checkers did not get going: {checkers.figures()}")
        time.sleep(0.5)
    load_start = os.getloadavg()
    scheduler = Scheduler(data_dir, seed, seconds, interval_s=interval_s, plan=plan, query_nodes=query_nodes)
    started_at = datetime.now(UTC)
    scheduler.start()
    scheduler.join()
    checkers.stop()
    figures = checkers.figures(since=scheduler.began)
    verdict = audit(uri, checkers)
    return {
        "started": started_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "seconds": round(time.monotonic() - scheduler.began, 1), "seed": seed, "plan": plan,
        "interval_s": list(interval_s), "query_nodes": query_nodes, "replicas": replicas,
        "checkers": figures, "events": [vars(e) for e in scheduler.events], "audit": verdict,
        "load_avg": {"start": [round(x, 1) for x in load_start], "end": [round(x, 1) for x in os.getloadavg()]},
    }


def bar(result: dict[str, Any]) -> dict[str, bool | None]:
    """The issue's bar, item by item (None: not checked)."""
    checkers = result["checkers"]
    return {
        f"every checker >= {BAR_PCT:g} % success": all(c["success_pct"] >= BAR_PCT for c in checkers.values()),
        "no acknowledged write lost or duplicated": bool(result["audit"]["ok"]),
        f"longest search outage <= {BAR_SEARCH_OUTAGE_S:g} s": checkers["search"]["longest_outage_s"]
        <= BAR_SEARCH_OUTAGE_S,
        "replicas agree (replica_number=2)": result["audit"]["replicas"].get("agree"),
    }


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    return {"shoal_commit": commit or "unknown", "pymilvus": version("pymilvus"), "python": platform.python_version(),
            "os": platform.platform(), "cpus": str(os.cpu_count())}


def write_report(result: dict[str, Any], out: Path, layout: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    result = {**result, "layout": layout, "versions": _versions(), "bar": bar(result)}
    (out / "report.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# Chaos run, {result['started']}", "",
             f"Regenerate: `scripts/chaos.sh --minutes {result['seconds'] / 60:.0f} --seed {result['seed']} "
             f"--replicas {result['replicas']} --proxies {result['proxies']} "
             f"--wal-channels {result.get('wal_channels', 1)}` "
             "(tests/chaos/chaos_run.py).", "",
             f"- Cluster: {layout}; the checkers' collection loaded with replica_number={result['replicas']}; "
             "every checker its own pymilvus `MilvusClient` with default retries.",
             f"- {result['seconds']:.0f} s of chaos, seed {result['seed']}, an event every "
             f"{result['interval_s'][0]:g}-{result['interval_s'][1]:g} s once the last one recovered.",
             f"- Machine: {result['versions']['cpus']} CPUs, {result['versions']['os']}; load average at the start "
             f"{result['load_avg']['start']}, at the end {result['load_avg']['end']} (shared with other work).",
             f"- Versions: shoal {result['versions']['shoal_commit']}, pymilvus {result['versions']['pymilvus']}, "
             f"Python {result['versions']['python']}.", "",
             "## The bar", ""]
    lines += [f"- {'not checked' if ok is None else 'met' if ok else 'NOT met'}: {name}"
              for name, ok in result["bar"].items()]
    lines += ["", "## Checkers", "",
              "| checker | requests | failed | success % | longest outage (s) | longest gap between successes (s) |",
              "|---|---:|---:|---:|---:|---:|"]
    for kind, c in result["checkers"].items():
        lines.append(f"| {kind} | {c['requests']} | {c['failed']} | {c['success_pct']:.2f} | "
                     f"{c['longest_outage_s']:.1f} | {c['longest_gap_s']:.1f} |")
    lines += ["", "An outage runs from the last success before a failure to the next success; a gap is any time "
              "between two successes (a call that waited out a paused process is slow, not failed).", "",
              "Errors (first kinds per checker):", ""]
    for kind, c in result["checkers"].items():
        for error, n in c["errors"].items():
            lines.append(f"- {kind}, {n}x: `{error}`")
    lines += ["", "## Events", "", "| at (UTC) | +s | event | target | took (s) | detail |", "|---|---:|---|---|---:|---|"]
    for e in result["events"]:
        lines.append(f"| {e['at']} | {e['offset_s']:.0f} | {e['kind']} | {e['target']} | {e['took_s']:.1f} | "
                     f"{(e['error'] or e['detail']).replace('|', '/')} |")
    a = result["audit"]
    lines += ["", "## Auditor", "", f"Verdict: **{'ok' if a['ok'] else 'FAILED'}**.", "",
              "Checked: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in a["checked"].items()) + ".", "",
              "Problems: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in a["problem_counts"].items()) + ".", "",
              f"Replicas: {a['replicas'].get('why', a['replicas'])}.", ""]
    for k, v in a["problems"].items():
        if v:
            lines.append(f"- {k}: {v}")
    (out / "report.md").write_text("\n".join(lines).rstrip() + "\n")
    return out / "report.md"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--replicas", type=int, default=2, help="replica_number of the checkers' collection (default 2)")
    parser.add_argument("--out", type=Path, default=None, help="default bench/results/<date>-chaos")
    parser.add_argument("--proxies", type=int, default=2,
                        help="proxies, all on one port (`--shared-proxy-port`: as pods behind a Service); default 2")
    parser.add_argument("--data", type=Path, default=None, help="cluster directory (default: a fresh one under /tmp)")
    parser.add_argument("--wal-channels", type=int, default=2,
                        help="WAL channels, shared by the 2 streaming nodes (default 2: one each)")
    args = parser.parse_args()
    from fixtures_cluster import missing_tools, start_cluster

    why = missing_tools()
    if why:
        print(f"chaos: {why}", file=sys.stderr)
        return 2
    out = args.out or ROOT / "bench" / "results" / f"{datetime.now(UTC):%Y-%m-%d}-chaos"
    import tempfile

    data = args.data or Path(tempfile.mkdtemp(prefix="shoal-chaos-")) / "data"
    layout = (f"2 coordinators, 2 streaming nodes sharing {args.wal_channels} WAL channel(s), 2 query nodes, "
              f"1 index node, {args.proxies} "
              f"prox{'ies on one port (--shared-proxy-port)' if args.proxies > 1 else 'y'}, 3 Kafka brokers")
    cluster = start_cluster(data, streaming_nodes=2, query_nodes=2, kafka_brokers=3, coords=2, proxies=args.proxies,
                            extra_args=["--shared-proxy-port", "--wal-channels", str(args.wal_channels)])
    try:
        print(f"chaos: cluster at {cluster.uri} ({data}); {args.minutes:g} minutes", flush=True)
        result = run_chaos(cluster.uri, data, seconds=args.minutes * 60, seed=args.seed, replicas=args.replicas)
        result["proxies"] = args.proxies
        result["wal_channels"] = args.wal_channels
    finally:
        cluster.stop()
    report = write_report(result, out, layout)
    print(report.read_text())
    return 0 if all(ok is not False for ok in bar(result).values()) else 1


if __name__ == "__main__":
    sys.exit(main())
