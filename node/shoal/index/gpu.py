"""Whether faiss can use a GPU here, and moving a CPU-built faiss index through one.

Neighbours: `params` asks `gpu_available()` to label `built_as`; `dense` calls
`train_and_add_on_gpu()` for GPU_* index types. With faiss-cpu both are no-ops.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

import faiss
import numpy as np


@cache
def gpu_available() -> bool:
    get = getattr(faiss, "get_num_gpus", None)
    return bool(get is not None and get() > 0 and hasattr(faiss, "StandardGpuResources"))


def train_and_add_on_gpu(index: Any, train: np.ndarray | None, chunks: Iterable[np.ndarray]) -> Any:
    """Train and fill `index` on GPU 0 and return the CPU copy (searched on CPU)."""
    res = faiss.StandardGpuResources()
    gpu_index = faiss.index_cpu_to_gpu(res, 0, index)
    if not gpu_index.is_trained and train is not None:
        gpu_index.train(train)
    for chunk in chunks:
        gpu_index.add(chunk)
    return faiss.index_gpu_to_cpu(gpu_index)
