"""Runs the real operator as a subprocess against any kubeconfig, for e2e tests and demos.

`OperatorProcess` starts `python -m shoal_operator` with the given kubeconfig, waits for
its liveness endpoint, and stops it (SIGTERM, then SIGKILL). `install_crds` applies the
generated CRDs and the peering object with a kubectl-like callable. No test framework
imports here, so it can serve any harness.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from shoal_operator import crdgen

Kubectl = Callable[..., Any]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OperatorProcess:
    def __init__(
        self,
        kubeconfig: Path,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        args: tuple[str, ...] = ("--all-namespaces",),
    ) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.port = free_port()
        self.env = dict(env or {})
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90) -> OperatorProcess:
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "SHOAL_OPERATOR_LIVENESS": f"http://127.0.0.1:{self.port}/healthz",
            "SHOAL_OPERATOR_METRICS_PORT": "0",
            **self.env,
        }
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shoal_operator", "--verbose", *self.args],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"operator exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"operator not live within {timeout}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log_tail(self, lines: int = 80) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> OperatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


PEERING = """apiVersion: kopf.dev/v1
kind: ClusterKopfPeering
metadata:
  name: shoal-operator
"""


def install_crds(kubectl: Kubectl) -> None:
    """Apply the generated CRDs (server-side: they exceed the last-applied annotation
    limit) and the cluster-wide peering object, and wait until they are served."""
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=crdgen.render())
    kubectl("wait", "--for=condition=Established", "--timeout=60s",
            *(f"crd/{d['metadata']['name']}" for d in crdgen.all_crds()))
    kubectl("apply", "--server-side", "-f", "-", input=PEERING)
