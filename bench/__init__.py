"""Shoal's benchmark and conformance harness.

Run as ``python -m bench`` from the repository root. It compares, in one run on one
machine, real server processes driven by the same pymilvus code (Shoal, milvus-lite),
in-process faiss (the ceiling) and a bare gRPC echo round trip (the protocol floor).
Nothing here imports the ``shoal`` package: servers are black boxes behind gRPC.
"""
