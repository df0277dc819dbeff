"""Image similarity search over scikit-learn's bundled handwritten digits.

The image set is ``sklearn.datasets.load_digits()``: 1,797 real 8x8 greyscale scans of
handwritten digits (the UCI "optdigits" test set) that ship inside the scikit-learn wheel, so
nothing is downloaded. The other image sets scikit-learn offers (Olivetti faces, LFW) are
fetched from the network on first use, and its two sample photos are too few to search.

Embeddings come from a model fitted here on the gallery's labels in a few seconds, with no
download: RBF kernel features (scikit-learn's Nystroem) projected by linear discriminant
analysis onto 9 dimensions. No pretrained image model (ResNet, CLIP, ViT) loads without
fetching its weights from a hub, and a small CNN trained here with PyTorch took minutes on a
busy 2-core machine and did no better than raw pixels on this slice. ``Embedder`` is the one
place to swap in a pretrained backbone where its weights are at hand.

The collection holds two vectors per image, the raw pixels and the learned embedding, so the demo
can compare them (precision@5 over held-out query images) and fuse them (hybrid search), and
it shows grouping by class, a scalar filter and a range search for near-duplicates.

    python examples/image_search/digits_search.py --uri http://127.0.0.1:19530
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

import numpy as np
from pymilvus import AnnSearchRequest, DataType, MilvusClient, WeightedRanker

COLLECTION = "digits"
DIM = 64  # 8x8 pixels
LEARNED_DIM = 9  # discriminant directions of ten classes
SHADES = " .:-=+*#%@"


@dataclass
class Digits:
    images: np.ndarray  # (n, 8, 8) float32 in [0, 16]
    labels: np.ndarray  # (n,) int64


def load(gallery: int = 1000, queries: int = 797) -> tuple[Digits, Digits]:
    """The gallery (indexed, and the embedding's training set) and the held-out query images."""
    from sklearn.datasets import load_digits

    data = load_digits()
    images = data.images.astype(np.float32)
    labels = data.target.astype(np.int64)
    if gallery + queries > len(labels):
        raise SystemExit(f"the digits set has {len(labels)} images; asked for {gallery} + {queries}")
    return (Digits(images[:gallery], labels[:gallery]),
            Digits(images[gallery:gallery + queries], labels[gallery:gallery + queries]))


def normalize(x: np.ndarray) -> np.ndarray:
    x = x.reshape(len(x), -1).astype(np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class Embedder:
    """A kernel discriminant embedding fitted on the labelled gallery: RBF kernel features
    (Nystroem, 300 landmarks) projected by linear discriminant analysis onto the 9 directions
    that best separate the ten digits."""

    def __init__(self, train: Digits, seed: int = 0) -> None:
        from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
        from sklearn.kernel_approximation import Nystroem
        from sklearn.pipeline import make_pipeline

        self.model = make_pipeline(Nystroem(gamma=0.32, n_components=300, random_state=seed),
                                   LinearDiscriminantAnalysis())
        self.model.fit(self._flat(train.images), train.labels)

    @staticmethod
    def _flat(images: np.ndarray) -> np.ndarray:
        return images.reshape(len(images), -1) / 16.0

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return normalize(self.model.transform(self._flat(images)))


def create_collection(client: MilvusClient, name: str = COLLECTION) -> None:
    if client.has_collection(name):
        client.drop_collection(name)
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("label", DataType.INT64)
    schema.add_field("ink", DataType.INT64)  # sum of the pixel values: how heavy the strokes are
    schema.add_field("pixels", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("learned", DataType.FLOAT_VECTOR, dim=LEARNED_DIM)
    index = client.prepare_index_params()
    # exact search: precision@5 then measures the embeddings, not an index's recall
    index.add_index("pixels", index_type="FLAT", metric_type="COSINE")
    index.add_index("learned", index_type="FLAT", metric_type="COSINE")
    client.create_collection(name, schema=schema, index_params=index)


def ingest(client: MilvusClient, gallery: Digits, embed: Embedder, name: str = COLLECTION) -> None:
    pixels, learned = normalize(gallery.images), embed(gallery.images)
    ink = gallery.images.reshape(len(gallery.labels), -1).sum(axis=1)
    client.insert(name, [
        {"id": i, "label": int(gallery.labels[i]), "ink": int(ink[i]), "pixels": pixels[i].tolist(),
         "learned": learned[i].tolist()}
        for i in range(len(gallery.labels))
    ])
    client.flush(name)
    client.load_collection(name)


Hits = list[dict[str, Any]]


def search(client: MilvusClient, field: str, vectors: np.ndarray, limit: int = 5, name: str = COLLECTION,
           **kwargs: Any) -> list[Hits]:
    out: list[Hits] = []
    for start in range(0, len(vectors), 100):
        out.extend(client.search(name, data=vectors[start:start + 100].tolist(), anns_field=field, limit=limit,
                                 output_fields=["label", "ink"], **kwargs))
    return out


def hybrid(client: MilvusClient, pixels: np.ndarray, learned: np.ndarray, weights: tuple[float, float],
           limit: int = 5, name: str = COLLECTION) -> list[Hits]:
    out: list[Hits] = []
    for p, c in zip(pixels, learned, strict=True):
        requests = [AnnSearchRequest([p.tolist()], "pixels", {}, limit=20),
                    AnnSearchRequest([c.tolist()], "learned", {}, limit=20)]
        out.extend(client.hybrid_search(name, requests, WeightedRanker(*weights), limit=limit,
                                        output_fields=["label", "ink"]))
    return out


def precision_at(results: list[Hits], labels: np.ndarray) -> float:
    """Share of returned neighbours that show the query's digit."""
    right = sum(hit["entity"]["label"] == label for hits, label in zip(results, labels, strict=True) for hit in hits)
    return right / sum(len(hits) for hits in results)


def ascii_row(images: list[np.ndarray], captions: list[str]) -> str:
    """8x8 images side by side in characters, one caption under each."""
    lines = []
    for r in range(8):
        lines.append("   ".join("".join(SHADES[min(int(v) * len(SHADES) // 17, 9)] * 2 for v in img[r])
                                for img in images))
    lines.append("   ".join(c[:16].ljust(16) for c in captions))
    return "\n".join(line.rstrip() for line in lines)


def demo(client: MilvusClient, gallery: Digits, queries: Digits, embed: Embedder,
         name: str = COLLECTION) -> dict[str, Any]:
    """The searches the README shows, returned for the tests as well as printed."""
    q_pixels, q_learned = normalize(queries.images), embed(queries.images)
    by_pixels = search(client, "pixels", q_pixels, name=name)
    by_learned = search(client, "learned", q_learned, name=name)
    fused = hybrid(client, q_pixels, q_learned, (0.3, 0.7), name=name)
    scores = {"pixels": precision_at(by_pixels, queries.labels), "learned": precision_at(by_learned, queries.labels),
              "hybrid": precision_at(fused, queries.labels)}
    print(f"precision@5 over {len(queries.labels)} held-out query images, {len(gallery.labels)} indexed:")
    for key, value in scores.items():
        print(f"  {key:7s} {value:.3f}")

    def right(results: list[Hits]) -> np.ndarray:
        return np.array([sum(h["entity"]["label"] == lab for h in hits)
                         for hits, lab in zip(results, queries.labels, strict=True)])

    q = int(np.argmax(right(by_learned) - right(by_pixels)))  # where the learned embedding helps most
    for title, hits in (("raw pixels", by_pixels[q]), ("learned embedding", by_learned[q])):
        print(f"\n## query {q} (a {queries.labels[q]}) and its 5 nearest by {title}")
        print(ascii_row([queries.images[q]] + [gallery.images[h["id"]] for h in hits],
                        ["query"] + [f"{h['entity']['label']} ({h['distance']:.2f})" for h in hits]))

    grouped = search(client, "learned", q_learned[q:q + 1], limit=3, group_by_field="label", name=name)[0]
    print("\n## the best match of each of the 3 nearest classes (group_by label)")
    print(", ".join(f"digit {h['entity']['label']}: id {h['id']} ({h['distance']:.3f})" for h in grouped))

    heavy_ink = int(np.median(gallery.images.reshape(len(gallery.labels), -1).sum(axis=1)))
    heavy = search(client, "learned", q_learned[q:q + 1], filter=f"ink >= {heavy_ink}", name=name)[0]
    print(f"\n## the same query among heavy strokes only (filter ink >= {heavy_ink})")
    print(", ".join(f"{h['entity']['label']} (ink {h['entity']['ink']})" for h in heavy))

    twins = search(client, "learned", q_learned[q:q + 1], limit=1000, name=name,
                   search_params={"params": {"radius": 0.8, "range_filter": 1.0}})[0]
    print(f"\n## range search: every gallery image within cosine 0.8 of the query: {len(twins)}, digits "
          f"{sorted({h['entity']['label'] for h in twins})}")
    return {"precision": scores, "by_pixels": by_pixels, "by_learned": by_learned, "query": q, "grouped": grouped,
            "heavy": heavy, "heavy_ink": heavy_ink, "twins": twins, "q_learned": q_learned}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", default="http://127.0.0.1:19530")
    parser.add_argument("--gallery", type=int, default=1000, help="images indexed (and used to fit the embedding)")
    parser.add_argument("--queries", type=int, default=797, help="held-out query images")
    args = parser.parse_args(argv)
    gallery, queries = load(args.gallery, args.queries)
    embed = Embedder(gallery)
    client = MilvusClient(uri=args.uri)
    create_collection(client)
    ingest(client, gallery, embed)
    demo(client, gallery, queries, embed)
    client.close()


if __name__ == "__main__":
    main()
