"""BM25 full-text search: Shoal (through pymilvus) against the PyPI library ``bm25s``.

Corpus: passages of Debian's ``fortunes`` (``/usr/share/games/fortunes``, installed by
``scripts/setup.sh --test``): every fortune, every line and every window of two and three
consecutive lines of a fortune, deduplicated — over 100k passages of real text. Queries:
three words drawn from a random passage (seeded). Both systems tokenize the same way
(Shoal's standard analyzer: Unicode words, lower-cased; bm25s gets those token lists) and
use Lucene's BM25 with k1 = 1.5, b = 0.75.

Reported: queries/s (one query per call, and batches of 100), and top-10 agreement —
the share of Shoal's top 10 that is in bm25s's top 10, and the same counting as agreeing
a hit whose bm25s score ties the 10th (equal scores have no defined order).

``python -m bench.fulltext [--docs N] [--queries N] [--out DIR]``
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bench.corpus import FORTUNES_DIR, CorpusUnavailable

K = 10
K1, B = 1.5, 0.75
_WORD = re.compile(r"\w+")


def tokens(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def passages(limit: int = 0) -> list[str]:
    if not FORTUNES_DIR.is_dir():
        raise CorpusUnavailable(f"{FORTUNES_DIR} is missing: install the Debian package 'fortunes'")
    out: list[str] = []
    for path in sorted(FORTUNES_DIR.iterdir()):
        if path.suffix or path.is_symlink() or not path.is_file():
            continue
        for chunk in path.read_text(encoding="utf-8", errors="replace").split("\n%\n"):
            lines = [" ".join(ln.split()) for ln in chunk.splitlines() if ln.strip() and ln.strip() != "%"]
            if not lines:
                continue
            out.append(" ".join(lines))
            for width in (1, 2, 3):
                out.extend(" ".join(lines[i : i + width]) for i in range(len(lines) - width + 1) if len(lines) > width)
    seen: set[str] = set()
    unique = [t for t in out if len(t) >= 20 and not (t in seen or seen.add(t))]
    return unique[:limit] if limit else unique


def make_queries(docs: list[str], n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        words = [w for w in tokens(docs[int(rng.integers(len(docs)))]) if len(w) > 2]
        if len(words) >= 3:
            out.append(" ".join(rng.choice(words, 3, replace=False).tolist()))
    return out


def run_shoal(docs: list[str], queries: list[str], workdir: str) -> dict:
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    from bench.systems.servers import server_for

    server = server_for("shoal", workdir)
    server.start()
    try:
        client = MilvusClient(uri=server.uri)
        schema = client.create_schema()
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("text", DataType.VARCHAR, max_length=8192, enable_analyzer=True)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                     input_field_names=["text"], output_field_names=["sparse"]))
        index = client.prepare_index_params()
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                        params={"bm25_k1": K1, "bm25_b": B})
        client.create_collection("fortunes", schema=schema, index_params=index)
        t0 = time.perf_counter()
        for start in range(0, len(docs), 5000):
            client.insert("fortunes", [{"id": i, "text": docs[i]} for i in range(start, min(len(docs), start + 5000))])
        client.flush("fortunes")
        insert_s = time.perf_counter() - t0
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            info = client.describe_index("fortunes", "sparse")
            if int(info.get("pending_index_rows", 0)) == 0:
                break
            time.sleep(0.5)
        client.search("fortunes", data=queries[:5], anns_field="sparse", limit=K)  # warm-up
        t0 = time.perf_counter()
        serial = [client.search("fortunes", data=[q], anns_field="sparse", limit=K)[0] for q in queries]
        serial_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for start in range(0, len(queries), 100):
            client.search("fortunes", data=queries[start : start + 100], anns_field="sparse", limit=K)
        batch_s = time.perf_counter() - t0
        ids = [[h["id"] for h in hits] for hits in serial]
        scores = [[h["distance"] for h in hits] for hits in serial]
        client.close()
    finally:
        server.stop()
    return {"insert_s": insert_s, "serial_qps": len(queries) / serial_s, "batch_qps": len(queries) / batch_s,
            "ids": ids, "scores": scores}


def run_bm25s(docs: list[str], queries: list[str]) -> dict:
    import bm25s

    corpus_tokens = [tokens(d) for d in docs]
    query_tokens = [tokens(q) for q in queries]
    t0 = time.perf_counter()
    retriever = bm25s.BM25(k1=K1, b=B, method="lucene")
    retriever.index(corpus_tokens, show_progress=False)
    index_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for q in query_tokens:
        retriever.retrieve([q], k=K, show_progress=False)
    serial_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ids, scores = retriever.retrieve(query_tokens, k=K, show_progress=False)
    batch_s = time.perf_counter() - t0
    return {"index_s": index_s, "serial_qps": len(queries) / serial_s, "batch_qps": len(queries) / batch_s,
            "ids": ids.tolist(), "scores": scores.tolist(), "retriever": retriever, "query_tokens": query_tokens}


def agreement(shoal: dict, ref: dict, docs: int) -> tuple[float, float]:
    """Mean share of Shoal's top 10 in bm25s's top 10; and counting bm25s ties with its 10th as agreeing."""
    import scipy.sparse  # noqa: F401  (bm25s's scores need it loaded)

    plain, tie_aware = [], []
    retriever = ref["retriever"]
    for i, got in enumerate(shoal["ids"]):
        want = ref["ids"][i]
        want_scores = ref["scores"][i]
        live = [w for w, s in zip(want, want_scores, strict=True) if s > 0]
        if not live:
            continue
        plain.append(len(set(got) & set(live)) / len(live))
        all_scores = retriever.get_scores(ref["query_tokens"][i])
        tenth = min(s for s in want_scores if s > 0)
        ok = sum(1 for g in got if g in live or all_scores[g] >= tenth - 1e-4 * max(1.0, tenth))
        tie_aware.append(min(1.0, ok / len(live)))
    return float(np.mean(plain)), float(np.mean(tie_aware))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.fulltext", description=__doc__.splitlines()[0])
    p.add_argument("--docs", type=int, default=0, help="passages to index (0 = all, over 100k)")
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", default="", help="write README.md and results.json into this directory")
    args = p.parse_args(argv)
    docs = passages(args.docs)
    queries = make_queries(docs, args.queries, args.seed)
    print(f"{len(docs)} passages, {len(queries)} queries")
    with tempfile.TemporaryDirectory(prefix="shoal-fulltext-") as work:
        shoal = run_shoal(docs, queries, work)
    ref = run_bm25s(docs, queries)
    plain, tie_aware = agreement(shoal, ref, len(docs))
    result = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} CPUs (shared)",
        "docs": len(docs), "queries": len(queries), "k": K, "k1": K1, "b": B,
        "shoal": {k: round(v, 2) for k, v in shoal.items() if k in ("insert_s", "serial_qps", "batch_qps")},
        "bm25s": {k: round(v, 2) for k, v in ref.items() if k in ("index_s", "serial_qps", "batch_qps")},
        "top10_agreement": round(plain, 4), "top10_agreement_ties_counted": round(tie_aware, 4),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
        (out / "README.md").write_text(render(result))
    return 0


def render(r: dict) -> str:
    s, b = r["shoal"], r["bm25s"]
    return "\n".join([
        "# BM25 full-text search: Shoal vs bm25s", "",
        f"Run `python -m bench.fulltext --out <dir>` on {r['when']} ({r['machine']}).",
        f"{r['docs']} passages of Debian `fortunes`, {r['queries']} three-word queries, top {r['k']}, "
        f"Lucene BM25 with k1 = {r['k1']}, b = {r['b']}, the same tokens on both sides.", "",
        "| system | load | queries/s, one per call | queries/s, batches of 100 |",
        "|---|---|---|---|",
        f"| Shoal (`shoal run`, pymilvus, SPARSE_INVERTED_INDEX BM25) | insert + flush {s['insert_s']} s "
        f"| {s['serial_qps']} | {s['batch_qps']} |",
        f"| bm25s 0.3.16 (in process, numpy backend) | index {b['index_s']} s | {b['serial_qps']} | {b['batch_qps']} |",
        "",
        f"Top-10 agreement with bm25s: {r['top10_agreement']} of Shoal's hits are in bm25s's top 10; "
        f"{r['top10_agreement_ties_counted']} when a hit whose bm25s score ties bm25s's 10th counts as agreeing.",
        "Shoal's numbers include the gRPC round trip through pymilvus; bm25s runs inside the calling process.", "",
    ])


if __name__ == "__main__":
    raise SystemExit(main())
