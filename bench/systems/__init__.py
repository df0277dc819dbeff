"""The systems under test, all behind one small interface (:class:`bench.systems.base.System`).

``shoal`` and ``milvus-lite`` are real server processes driven by the same pymilvus code
(:mod:`bench.systems.milvus`); ``faiss`` is the in-process ceiling (:mod:`bench.systems.faiss_local`).
"""

from __future__ import annotations

from bench.systems.base import System


def make_system(name: str, workdir: str) -> System:
    """A fresh, not yet started, system called ``name``."""
    if name == "faiss":
        from bench.systems.faiss_local import FaissSystem

        return FaissSystem()
    from bench.systems.milvus import MilvusSystem
    from bench.systems.servers import server_for

    return MilvusSystem(server_for(name, workdir))
