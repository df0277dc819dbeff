"""A real Kubernetes control plane for the e2e tests: the session fixture `k8s_cluster`.

Binaries come from e2e/controlplane/build.sh (built once, cached outside the repo), the
cluster from up.sh (kwokctl, binary runtime: etcd, kube-apiserver, controller-manager,
scheduler and kwok as local processes, with simulated CPU and GPU nodes) and is removed by
down.sh at session end. Every test under tests/e2e/ gets the `e2e` marker.

Set SHOAL_E2E_KUBECONFIG to the kubeconfig of a cluster that is already up (e.g. from
`e2e/controlplane/up.sh`) to skip start-up and teardown while iterating locally.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
from kubernetes import client, config

from shoal_operator.kube import Kube
from shoal_operator.testing import OperatorProcess, install_crds

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "e2e" / "controlplane"
CACHE = Path(os.environ.get("SHOAL_E2E_CACHE", Path.home() / ".cache" / "shoal" / "e2e"))
BUILD_TIMEOUT_S = 90 * 60
UP_TIMEOUT_S = 6 * 60

T = TypeVar("T")


class CommandFailed(subprocess.CalledProcessError):
    """A CalledProcessError whose message carries the command's output."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


_built: Path | None = None
_build_error: str | None = None


def _ensure_binaries() -> Path:
    """Run build.sh once per session; return the bin dir or fail with its log tail."""
    global _built, _build_error
    if _built is not None:
        return _built
    if _build_error is not None:
        pytest.fail(_build_error, pytrace=False)
    CACHE.mkdir(parents=True, exist_ok=True)
    log = CACHE / "build.log"
    with log.open("w") as err:
        proc = subprocess.run(
            [str(SCRIPTS / "build.sh")], stdout=subprocess.PIPE, stderr=err, text=True,
            timeout=BUILD_TIMEOUT_S, check=False,
        )
    if proc.returncode != 0:
        _build_error = f"e2e/controlplane/build.sh failed (exit {proc.returncode}), log {log}:\n{_tail(log)}"
        pytest.fail(_build_error, pytrace=False)
    _built = Path(proc.stdout.strip().splitlines()[-1])
    return _built


@dataclass
class K8sCluster:
    """Handle on the running cluster that the e2e tests talk to."""

    kubeconfig: Path
    bin_dir: Path

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """Run the built kubectl against this cluster; raise CommandFailed if check and rc != 0."""
        cmd = [str(self.bin_dir / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args]
        proc = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise CommandFailed(proc.returncode, cmd, proc.stdout, proc.stderr)
        return proc

    def api_client(self) -> client.ApiClient:
        """A fresh kubernetes.client.ApiClient for this cluster (close it, or use `with`)."""
        return config.new_client_from_config(config_file=str(self.kubeconfig))

    @staticmethod
    def wait_for(fn: Callable[[], T], timeout: float = 60, interval: float = 0.5, what: str = "") -> T:
        """Call fn until it returns something truthy and return that; exceptions count as
        "not yet". On timeout raise TimeoutError naming the last value or exception."""
        deadline = time.monotonic() + timeout
        last: object = None
        while True:
            try:
                value = fn()
                if value:
                    return value
                last = value
            except Exception as exc:  # e.g. a 404 before the object exists
                last = exc
            if time.monotonic() >= deadline:
                label = what or getattr(fn, "__name__", "condition")
                raise TimeoutError(f"{label} not met within {timeout}s; last result: {last!r}")
            time.sleep(interval)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: needs a real Kubernetes control plane (tests/e2e, k8s_cluster)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.e2e)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build the binaries before any test starts, so the (cold: tens of minutes) build
    does not count against the first test's timeout."""
    if os.environ.get("SHOAL_E2E_KUBECONFIG") or session.config.option.collectonly:
        return
    if not any(item.get_closest_marker("e2e") for item in session.items):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"e2e: building control-plane binaries (cache {CACHE}; log {CACHE / 'build.log'})")
    start = time.monotonic()
    try:
        bin_dir = _ensure_binaries()
    except pytest.fail.Exception:
        return  # reported by the fixture in each test that needs it
    if reporter is not None:
        reporter.write_line(f"e2e: binaries ready in {time.monotonic() - start:.0f}s: {bin_dir}")


@pytest.fixture(scope="session")
def k8s_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[K8sCluster]:
    """A running cluster: 2 CPU + 2 GPU kwok nodes, default StorageClass `standard`."""
    bin_dir = _ensure_binaries()
    reuse = os.environ.get("SHOAL_E2E_KUBECONFIG")
    if reuse:
        yield K8sCluster(kubeconfig=Path(reuse), bin_dir=bin_dir)
        return

    run_dir = tmp_path_factory.mktemp("k8s")
    env = {**os.environ, "SHOAL_E2E_BIN": str(bin_dir), "SHOAL_E2E_KEEP_LOGS": "1"}
    log = run_dir / "up.log"
    with log.open("w") as err:
        try:
            proc = subprocess.run(
                [str(SCRIPTS / "up.sh"), str(run_dir)], stdout=subprocess.PIPE, stderr=err,
                text=True, env=env, timeout=UP_TIMEOUT_S, check=False,
            )
            failed = proc.returncode != 0
        except subprocess.TimeoutExpired:
            failed = True
    if failed:
        subprocess.run([str(SCRIPTS / "down.sh"), str(run_dir)], env=env, capture_output=True, check=False)
        pytest.fail(f"e2e/controlplane/up.sh failed, log {log}:\n{_tail(log)}", pytrace=False)
    cluster = K8sCluster(kubeconfig=Path(proc.stdout.strip().splitlines()[-1]), bin_dir=bin_dir)
    try:
        yield cluster
    finally:
        subprocess.run([str(SCRIPTS / "down.sh"), str(run_dir)], env=env, capture_output=True, check=False)


@pytest.fixture(scope="module")
def kube(k8s_cluster: K8sCluster) -> Iterator[Kube]:
    """The operator's own API wrapper over the session cluster, one per test module."""
    api = k8s_cluster.api_client()
    yield Kube(api)
    api.close()


@pytest.fixture(scope="module")
def operator(k8s_cluster: K8sCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    """The real operator as a subprocess for one test module, resyncing every 2 s."""
    install_crds(k8s_cluster.kubectl)
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    op = OperatorProcess(k8s_cluster.kubeconfig, log, env={"SHOAL_OPERATOR_RESYNC_SECONDS": "2"})
    op.start()
    yield op
    op.stop()
