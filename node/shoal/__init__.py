"""Shoal: a Milvus-compatible vector database in Python.

`default_server` runs the standalone server inside the current process, the way the
Milvus guide shows Milvus Lite::

    from shoal import default_server
    default_server.start()
    client = MilvusClient(f"http://127.0.0.1:{default_server.listen_port}")
    default_server.stop()
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

def __getattr__(name: str) -> Any:
    if name == "default_server":
        from shoal.server import default_server

        return default_server
    raise AttributeError(name)
