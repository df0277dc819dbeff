"""The user's three applications (``examples/``) run on small slices against one real `shoal run`.

`examples_uri` (session): one server on a free port with a fresh data dir, shared by the three
example modules (each makes and drops its own collections). `load_example(path)` imports an
example script by its path under ``examples/``, as a user would run it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `bench` is a top-level package run from the repo root

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the examples' models ship in wheels: never go online
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def examples_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from bench.systems.servers import ServerProcess

    server = ServerProcess("shoal", str(tmp_path_factory.mktemp("examples-server")))
    server.start()
    try:
        yield server.uri
    finally:
        server.stop()


def _load(relative: str) -> ModuleType:
    path = ROOT / "examples" / relative
    name = "example_" + path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def load_example() -> Callable[[str], ModuleType]:
    return _load
