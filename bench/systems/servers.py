"""Server processes under test: start on a free loopback port, wait until ready, measure, stop.

Each server runs as its own OS process with a fresh temporary data directory, so its
memory (VmHWM/VmRSS from /proc) and on-disk size belong to one collection and one index.
Neighbours: :mod:`bench.systems.milvus` drives a started server through pymilvus.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import grpc

READY_TIMEOUT_S = 120.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_status_mb(pid: int) -> dict[str, float]:
    """VmHWM (peak resident), VmRSS and its anonymous and file-backed parts of a live process, in MB."""
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
            out[key] = int(value.split()[0]) / 1024.0
    return out


def dir_size_mb(path: Path) -> float:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += (Path(root) / f).lstat().st_size
            except OSError:
                pass  # a file removed while we walk (compaction) just does not count
    return total / 1e6


def shoal_argv(data: Path, port: int, http_port: int) -> list[str]:
    exe = os.environ.get("SHOAL_BENCH_SHOAL") or shutil.which("shoal", path=str(Path(sys.executable).parent))
    if not exe:
        exe = shutil.which("shoal")
    if not exe:
        raise RuntimeError("the 'shoal' command is not installed (pip install -e . in the repo)")
    return [exe, "run", "--data", str(data), "--port", str(port), "--http-port", str(http_port)]


def milvus_lite_argv(data: Path, port: int, http_port: int) -> list[str]:
    del http_port  # milvus-lite has no management port
    python = os.environ.get("SHOAL_BENCH_SERVER_PYTHON") or sys.executable
    return [python, "-m", "milvus_lite", "server", "--data-dir", str(data),
            "--host", "127.0.0.1", "--port", str(port)]


ARGV: dict[str, Callable[[Path, int, int], list[str]]] = {
    "shoal": shoal_argv,
    "milvus-lite": milvus_lite_argv,
}


class ServerProcess:
    """One server process with its own temp data dir; ``start`` blocks until it serves."""

    def __init__(self, name: str, workdir: str) -> None:
        if name not in ARGV:
            raise ValueError(f"unknown server system {name!r}; known: {', '.join(ARGV)}")
        self.name = name
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.root: Path | None = None
        self.port = 0
        self.start_s = 0.0
        self._argv: list[str] = []

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        assert self.root is not None
        return self.root / "server.log"

    def start(self, port: int = 0, http_port: int = 0) -> None:
        """Start on a fresh data dir; ports 0 pick free ones."""
        Path(self.workdir).mkdir(parents=True, exist_ok=True)
        self.root = Path(tempfile.mkdtemp(prefix=f"{self.name}-", dir=self.workdir))
        self.port = port or free_port()
        self._argv = ARGV[self.name](self.data_dir, self.port, http_port or free_port())
        self._launch()

    def _launch(self) -> None:
        t0 = time.perf_counter()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self._argv, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        self._wait_ready()
        self.start_s = time.perf_counter() - t0

    def restart(self, sig: int = signal.SIGKILL) -> float:
        """End the process with ``sig`` and start it again on the same data dir and ports;
        returns the seconds from the new process's start until it answers."""
        assert self.proc is not None and self.root is not None
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)
        self._launch()
        return self.start_s

    def _wait_ready(self) -> None:
        from pymilvus import MilvusClient

        deadline = time.monotonic() + READY_TIMEOUT_S
        last: Exception | None = None
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                with grpc.insecure_channel(f"127.0.0.1:{self.port}") as ch:
                    grpc.channel_ready_future(ch).result(timeout=1.0)
                client = MilvusClient(uri=self.uri, timeout=5)
                client.list_collections()
                client.close()
                return
            except Exception as exc:  # not up yet: keep polling until the deadline
                last = exc
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} did not serve within {READY_TIMEOUT_S:.0f}s ({last}): {self.log_tail()}")

    def log_tail(self, n: int = 600) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:].strip()
        except OSError:
            return ""

    def resources(self) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.proc is not None and self.proc.poll() is None:
            status = proc_status_mb(self.proc.pid)
            out["vmhwm_mb"] = status.get("VmHWM", float("nan"))
            out["rss_mb"] = status.get("VmRSS", float("nan"))
            # memory-mapped segment and index files count in RSS while the page cache holds them
            out["rss_anon_mb"] = status.get("RssAnon", float("nan"))
            out["rss_file_mb"] = status.get("RssFile", float("nan"))
        if self.root is not None and self.data_dir.exists():
            out["disk_mb"] = dir_size_mb(self.data_dir)
        return out

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self.proc = None
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None


def server_for(name: str, workdir: str) -> ServerProcess:
    return ServerProcess(name, workdir)
