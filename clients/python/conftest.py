"""One `shoal run` for the framework scenarios, started from the project's own venv.

These tests run in their own venv (`scripts/clients.sh`: LangChain and LlamaIndex pin a
pymilvus of their own), so the server binary comes from `SHOAL_BIN` (the project's
`.venv/bin/shoal`), on free ports, with a fresh data dir. With `SHOAL_URI` set
(`scripts/clients.sh --address`), the scenarios use that server instead.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_LISTEN = re.compile(r"Shoal listening on ([\d.]+):(\d+) \(http [\d.]+:(\d+)\)")


@pytest.fixture(scope="session")
def uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if os.environ.get("SHOAL_URI"):
        yield os.environ["SHOAL_URI"]
        return
    base = tmp_path_factory.mktemp("shoal")
    log_path = base / "server.log"
    shoal = os.environ.get("SHOAL_BIN", str(ROOT / ".venv" / "bin" / "shoal"))
    cmd = [shoal, "run", "--data", str(base / "data"), "--host", "127.0.0.1", "--port", "0", "--http-port", "0"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        while not (found := _LISTEN.findall(log_path.read_text(errors="replace"))):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"shoal did not start:\n{log_path.read_text(errors='replace')[-4000:]}")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{found[0][1]}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
