"""A real Kubernetes control plane for the e2e tests: the session fixture `k8s_cluster`.

Binaries come from e2e/controlplane/build.sh (built once, cached outside the repo), the
cluster from up.sh (kwokctl, binary runtime: etcd, kube-apiserver, controller-manager,
scheduler and kwok as local processes, with simulated CPU and GPU nodes) and is removed by
down.sh at session end. Every test under tests/e2e/ gets the `e2e` marker.

Set SHOAL_E2E_KUBECONFIG to the kubeconfig of a cluster that is already up (e.g. from
`e2e/controlplane/up.sh`) to skip start-up and teardown while iterating locally.

Tests marked `pods` (the second tier) also get `real_node`: a real kubelet, kube-proxy,
containerd, CoreDNS and metrics-server joined to that control plane (e2e/node/up.sh, as root), with the
node and operator images built from the Dockerfiles (e2e/node/images.sh). A missing
prerequisite fails them; only SHOAL_PODS=0 skips them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

import pytest
from kubernetes import client, config

from shoal_operator.kube import Kube
from shoal_operator.testing import OperatorProcess, install_crds

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "e2e" / "controlplane"
NODE_SCRIPTS = REPO / "e2e" / "node"
PODS = os.environ.get("SHOAL_PODS", "1") != "0"
CACHE = Path(os.environ.get("SHOAL_E2E_CACHE", Path.home() / ".cache" / "shoal" / "e2e"))
BUILD_TIMEOUT_S = 90 * 60
# The builds yield the CPU to the tests running beside them (the scripts' own `nice -n 10`
# plus this: the lowest priority).
BUILD_NICE = ["nice", "-n", "9"]
UP_TIMEOUT_S = 6 * 60
NODE_UP_TIMEOUT_S = 15 * 60  # imports about 2 GB of image archives: minutes on a loaded machine

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


_build_procs: set[subprocess.Popen[str]] = set()


def _run_build_command(cmd: list[str], stdout: int, stderr: IO[str]) -> subprocess.CompletedProcess[str]:
    """A build script at the lowest priority in a process group of its own, which a timeout
    or the end of the session (pytest_sessionfinish) stops whole: no orphaned compiler keeps
    the cache's lock."""
    with subprocess.Popen([*BUILD_NICE, *cmd], stdout=stdout, stderr=stderr, text=True,
                          start_new_session=True) as proc:
        _build_procs.add(proc)
        try:
            out, _ = proc.communicate(timeout=BUILD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            _stop_group(proc)
            raise
        finally:
            _build_procs.discard(proc)
    return subprocess.CompletedProcess(cmd, proc.returncode, out or "", None)


def _stop_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Builds still running when the session ends early (e.g. -x) stop with it."""
    for proc in list(_build_procs):
        _stop_group(proc)


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
        proc = _run_build_command([str(SCRIPTS / "build.sh")], stdout=subprocess.PIPE, stderr=err)
    if proc.returncode != 0:
        _build_error = f"e2e/controlplane/build.sh failed (exit {proc.returncode}), log {log}:\n{_tail(log)}"
        pytest.fail(_build_error, pytrace=False)
    _built = Path(proc.stdout.strip().splitlines()[-1])
    return _built


_node_artifacts: tuple[Path, Path] | None = None
_node_error: str | None = None


def _ensure_node_artifacts() -> tuple[Path, Path]:
    """Build kubelet, kube-proxy, CoreDNS and metrics-server, then the images; return (bin dir, images dir)."""
    global _node_artifacts, _node_error
    if _node_artifacts is not None:
        return _node_artifacts
    if _node_error is not None:
        pytest.fail(_node_error, pytrace=False)
    CACHE.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []
    for script, args, log in (
        (SCRIPTS / "build.sh", ["--node"], CACHE / "build-node.log"),
        (NODE_SCRIPTS / "images.sh", [], CACHE / "images.log"),
    ):
        with log.open("w") as err:
            proc = _run_build_command([str(script), *args], stdout=subprocess.PIPE, stderr=err)
        if proc.returncode != 0:
            _node_error = (f"{script.relative_to(REPO)} failed (exit {proc.returncode}); the pods tier needs "
                           f"root and scripts/setup.sh --pods (SHOAL_PODS=0 skips it). Log {log}:\n{_tail(log)}")
            pytest.fail(_node_error, pytrace=False)
        out.append(Path(proc.stdout.strip().splitlines()[-1]))
    _node_artifacts = (out[0], out[1])
    return _node_artifacts


def _ensure_argocd() -> None:
    """Build Argo CD (e2e/argocd/build.sh); test_argocd.py runs it again, warm, and reports a failure."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / "argocd-build.log").open("w") as err:
        proc = _run_build_command(["bash", str(REPO / "e2e" / "argocd" / "build.sh")], stdout=subprocess.DEVNULL,
                                  stderr=err)
    if proc.returncode != 0:
        pytest.fail(f"e2e/argocd/build.sh failed (exit {proc.returncode})", pytrace=False)


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
    config.addinivalue_line(
        "markers", "pods: runs real pods on a real kubelet (tests/e2e, real_node; root; SHOAL_PODS=0 skips)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.e2e)
        if not PODS and item.get_closest_marker("pods"):
            item.add_marker(pytest.mark.skip(reason="SHOAL_PODS=0: the real-pods tier is switched off"))
    # The e2e tests run after the others, so the builds started at collection have those
    # tests' time to finish (tests/cluster still moves its fault tests behind everything).
    items[:] = [item for item in items if here not in Path(str(item.path)).parents] + [
        item for item in items if here in Path(str(item.path)).parents
    ]


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the builds in the background as soon as collection is done: on a cold cache they
    take tens of minutes of mostly CPU, which the tests before the e2e ones (they wait on
    servers) leave idle. The first e2e test waits for them before its timeout starts
    (pytest_runtest_protocol below)."""
    global _prebuild
    if session.config.option.collectonly:
        return
    pods = PODS and any(item.get_closest_marker("pods") for item in session.items)
    if pods:
        # Pods reach kube-apiserver at the node's address: the cluster must listen there.
        os.environ["SHOAL_E2E_BIND_ALL"] = "1"
    argocd = any(Path(str(item.path)).name == "test_argocd.py" for item in session.items)
    control_plane = not os.environ.get("SHOAL_E2E_KUBECONFIG") and any(
        item.get_closest_marker("e2e") for item in session.items
    )
    if not (pods or argocd or control_plane):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"e2e: building in the background while the other tests run (logs in {CACHE})")
    _prebuild = threading.Thread(target=_build_all, args=(control_plane, pods, argocd), name="e2e-build", daemon=True)
    _prebuild.start()


_prebuild: threading.Thread | None = None
_prebuild_lines: list[str] = []


def _build_all(control_plane: bool, pods: bool, argocd: bool) -> None:
    """The builds the selected e2e tests need, control plane first (every e2e test needs it).
    The images (mostly Debian's and PyPI's downloads) build beside the Go compiles; images.sh
    waits for the control plane's etcd through build.sh's lock."""
    CACHE.mkdir(parents=True, exist_ok=True)
    images = None
    if pods:
        images = threading.Thread(target=_run_build, args=(NODE_SCRIPTS / "images.sh", [], "images-prebuild.log"),
                                  name="e2e-images", daemon=True)
        images.start()
    steps: list[tuple[str, Callable[[], object]]] = []
    if control_plane:
        steps.append(("control-plane binaries", _ensure_binaries))
    if pods:
        steps.append(("kubelet, kube-proxy, CoreDNS and metrics-server",
                      lambda: _run_build(SCRIPTS / "build.sh", ["--node"], "build-node-prebuild.log")))
    if argocd:
        steps.append(("Argo CD", _ensure_argocd))
    if images is not None:
        steps.append(("images.sh (beside the above)", images.join))
        steps.append(("the node's artifacts", _ensure_node_artifacts))
    for name, build in steps:
        start = time.monotonic()
        try:
            build()
            outcome = "ready"
        except (pytest.fail.Exception, Exception):  # noqa: BLE001 - reported by the tests that need it
            outcome = "FAILED (the tests that need it report why)"
        _prebuild_lines.append(f"e2e: {name} {outcome} in {time.monotonic() - start:.0f}s")


def _run_build(script: Path, args: list[str], log: str) -> None:
    """One background build; a failure shows again when _ensure_node_artifacts reruns it."""
    with (CACHE / log).open("w") as err:
        _run_build_command([str(script), *args], stdout=subprocess.DEVNULL, stderr=err)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """The first e2e test waits for the background builds outside its own timeout."""
    global _prebuild
    if _prebuild is not None and item.get_closest_marker("e2e"):
        reporter = item.config.pluginmanager.get_plugin("terminalreporter")
        start = time.monotonic()
        _prebuild.join()
        _prebuild = None
        if reporter is not None:
            reporter.write_line(f"e2e: waited {time.monotonic() - start:.0f}s for the background builds")
            for line in _prebuild_lines:
                reporter.write_line(line)
    yield


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


@dataclass
class RealNode:
    """The real node of the pods tier: where its pods reach kube-apiserver, and its logs."""

    name: str
    run_dir: Path
    api_host: str
    api_port: int

    def pod_logs(self, lines: int = 40) -> str:
        """The tail of every container log on the node (for failure messages)."""
        parts = []
        for path in sorted((self.run_dir / "pod-logs").rglob("*.log")):
            parts.append(f"--- {path.relative_to(self.run_dir)}\n{_tail(path, lines)}")
        return "\n".join(parts) or "(no container logs)"


def _leftovers(run_dir: Path) -> list[str]:
    """What down.sh must have removed: our processes, KUBE-/CNI- iptables chains, the bridge."""
    found = []
    for pid_file in run_dir.glob("*.pid"):
        try:
            os.kill(int(pid_file.read_text()), 0)
            found.append(f"{pid_file.stem} still running")
        except (OSError, ValueError):
            pass
    for tool in ("iptables-save", "ip6tables-save"):
        if shutil.which(tool) is None:
            continue
        dump = subprocess.run([tool], capture_output=True, text=True, check=False).stdout
        chains = [line for line in dump.splitlines() if line.startswith((":KUBE-", ":CNI-"))]
        if chains:
            found.append(f"{tool}: {chains[:5]}")
    if subprocess.run(["ip", "link", "show", "shoal0"], capture_output=True, check=False).returncode == 0:
        found.append("bridge shoal0")
    return found


@pytest.fixture(scope="session")
def real_node(k8s_cluster: K8sCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealNode]:
    """A real kubelet + containerd node joined to the session cluster, removed at session end
    (the teardown fails if a process, an iptables chain or the bridge is left behind)."""
    bin_dir, images = _ensure_node_artifacts()
    run_dir = tmp_path_factory.mktemp("node")
    env = {**os.environ, "SHOAL_E2E_BIN": str(bin_dir), "SHOAL_E2E_IMAGES": str(images)}
    log = run_dir / "up.log"
    down = [str(NODE_SCRIPTS / "down.sh"), str(run_dir), str(k8s_cluster.kubeconfig)]
    with log.open("w") as err:
        try:
            proc = subprocess.run(
                [str(NODE_SCRIPTS / "up.sh"), str(run_dir), str(k8s_cluster.kubeconfig)],
                stdout=subprocess.PIPE, stderr=err, text=True, env=env, timeout=NODE_UP_TIMEOUT_S, check=False,
            )
            failed = proc.returncode != 0
        except subprocess.TimeoutExpired:
            failed = True
    if failed:
        subprocess.run(down, env=env, capture_output=True, check=False, timeout=300)
        pytest.fail(f"e2e/node/up.sh failed, log {log}:\n{_tail(log)}", pytrace=False)
    slices = json.loads(k8s_cluster.kubectl(
        "get", "endpointslices", "-n", "default", "-l", "kubernetes.io/service-name=kubernetes", "-o", "json",
    ).stdout)["items"]
    api_host = slices[0]["endpoints"][0]["addresses"][0]
    api_port = slices[0]["ports"][0]["port"]
    try:
        yield RealNode(name=proc.stdout.strip().splitlines()[-1], run_dir=run_dir, api_host=api_host,
                       api_port=api_port)
    finally:
        subprocess.run(down, env=env, capture_output=True, check=False, timeout=300)
        left = _leftovers(run_dir)
        assert not left, f"e2e/node/down.sh left behind: {left}"
