"""Building and loading indexes: picks the index family for a spec or a saved directory.

Neighbours: `params` (IndexSpec), `registry` (which family builds a kind), the families `dense`, `diskann`, `binary`, `sparse`,
and `base` (meta.json). The engine calls `build_index` / `load_index` through the package.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from shoal.errors import invalid
from shoal.index.base import VectorIndex, read_meta
from shoal.index.binary import BinaryIndex
from shoal.index.dense import DenseIndex
from shoal.index.diskann import DiskAnnIndex
from shoal.index.minhash import MinHashLSHIndex
from shoal.index.params import IndexSpec
from shoal.index.registry import index_type
from shoal.index.sparse import SparseIndex

FAMILIES: dict[str, type[VectorIndex]] = {
    cls.family: cls for cls in (DenseIndex, DiskAnnIndex, BinaryIndex, SparseIndex, MinHashLSHIndex)
}


def family_of(spec: IndexSpec) -> type[VectorIndex]:
    return FAMILIES[index_type(spec.kind).family]


def build_index(
    spec: IndexSpec, vectors: Any, progress: Callable[[float], None] | None = None
) -> VectorIndex:
    """Build the index `spec` describes over `vectors` (rows in the field's column layout)."""
    cls = family_of(spec)
    return cls.build(spec, vectors, progress)  # type: ignore[attr-defined]


def load_index(directory: Path | str, mmap: bool = True) -> VectorIndex:
    """Reload an index written by `VectorIndex.save`, without rebuilding it."""
    path = Path(directory)
    meta = read_meta(path)
    cls = FAMILIES.get(meta.get("family", ""))
    if cls is None:
        raise invalid(f"unknown index family {meta.get('family')!r} in {path}")
    spec = IndexSpec.from_dict(meta["spec"])
    return cls._load(path, spec, int(meta["num_rows"]), dict(meta.get("extra") or {}), mmap)
