"""A real `shoal run` process for the server tests, driven by real pymilvus.

`shoal` (session): one server on free ports with a fresh data dir; tests use its `uri`
(or `SHOAL_SERVER_URI`, e.g. a cluster's proxy).
`--server-target shoal,cluster` (`SHOAL_SERVER_TARGET`; default `shoal`) runs every test that
talks through `uri` once per target: `test_x[shoal]`, `test_x[cluster]` (the session cluster of
tests/fixtures_cluster.py, its proxy). A test that also inspects the standalone process itself
(it asks for `shoal` or `shoal_process`: its data dir, its /metrics, a restart) or is marked
`standalone_only(reason)` runs on standalone only; docs/cluster-parity.md lists them.
`shoal_process` (function): a private server a test may SIGKILL and restart on the
same data dir (durability tests). Server output goes to a log file printed on failure.
`security_cluster` (session, `cluster` target only): the one cluster the test_security_*
modules share, authorization on; `cluster_proxy` adds a proxy of it with a module's own
flags (quotas, TLS). A test marked `cluster_only(reason)` runs on the cluster target only.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
# the installed console script, as users run it; the module when the venv has none
_SCRIPT = Path(sys.executable).parent / "shoal"
SHOAL = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "shoal.cli"]
_LISTEN = re.compile(r"Shoal (?:proxy )?listening on ([\d.]+):(\d+) \(http [\d.]+:(\d+)\)")  # a proxy: `--role proxy`


SERVER_TARGETS = ("shoal", "cluster")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--server-target", default=os.environ.get("SHOAL_SERVER_TARGET", "shoal"),
                     help="servers tests/server runs against: shoal, cluster (comma-separated)")


def pytest_configure(config: pytest.Config) -> None:
    # the ORM API is what many Milvus users still write; its deprecation notice is noise here
    config.addinivalue_line("filterwarnings", "ignore::pymilvus.decorators.PyMilvusDeprecationWarning")
    config.addinivalue_line("markers", "standalone_only(reason): the test runs against standalone only")
    config.addinivalue_line("markers", "cluster_only(reason): the test runs against the cluster target only")


def _server_targets(config: pytest.Config) -> list[str]:
    names = [t.strip() for t in str(config.getoption("--server-target")).split(",") if t.strip()]
    for t in names:
        if t not in SERVER_TARGETS:
            raise pytest.UsageError(f"--server-target {t!r}: choose from {', '.join(SERVER_TARGETS)}")
    return names


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    targets = _server_targets(metafunc.config)
    cluster_only = metafunc.definition.get_closest_marker("cluster_only") is not None
    if (targets == ["shoal"] and not cluster_only) or "server_target" not in metafunc.fixturenames:
        return  # the default: test ids as they always were
    standalone = (
        "shoal" in metafunc.fixturenames or "shoal_process" in metafunc.fixturenames
        or metafunc.definition.get_closest_marker("standalone_only") is not None
    )
    if standalone:
        targets = [t for t in targets if t == "shoal"]
    only_cluster = metafunc.definition.get_closest_marker("cluster_only")
    if only_cluster is not None:
        why = only_cluster.args[0] if only_cluster.args else "cluster only"
        skip = pytest.mark.skip(reason=f"{why}: runs with --server-target cluster")
        params = [t if t == "cluster" else pytest.param(t, marks=skip) for t in targets]
        metafunc.parametrize("server_target", params, scope="session", indirect=True)
        return
    if targets:
        metafunc.parametrize("server_target", targets, scope="session", indirect=True)


@pytest.fixture(scope="session")
def server_target(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "shoal"))


class ShoalProcess:
    """One `shoal run --port 0` subprocess; `restart()` reuses the data dir."""

    def __init__(self, data_dir: Path, log_path: Path, extra_args: list[str] | None = None) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.http_port = 0

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout: float = 180.0) -> None:
        cmd = [
            *SHOAL, "run", "--data", str(self.data_dir), "--host", "127.0.0.1",
            "--port", "0", "--http-port", "0", *self.extra_args,
        ]
        env = {**os.environ, "PYTHONPATH": str(ROOT / "node"), "PYTHONUNBUFFERED": "1"}
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = _LISTEN.findall(self.log_path.read_text(errors="replace"))
            if self.proc.poll() is not None:
                raise RuntimeError(f"shoal exited with {self.proc.returncode}:\n{self.tail()}")
            if len(found) > self._starts:
                _, port, http = found[-1]
                self.port, self.http_port = int(port), int(http)
                self._starts += 1
                return
            time.sleep(0.05)
        self.kill()  # never leave a half-started server behind
        raise RuntimeError(f"shoal did not start within {timeout}s:\n{self.tail()}")

    _starts = 0

    def kill(self) -> None:
        """SIGKILL: no chance to flush or close anything."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait for a clean exit; returns the exit status."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return int(self.proc.returncode)

    def restart(self) -> None:
        self.kill()
        self.start()

    def tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


@pytest.fixture(scope="session")
def shoal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShoalProcess]:
    base = tmp_path_factory.mktemp("shoal-server")
    server = ShoalProcess(base / "data", base / "server.log")
    server.start()
    yield server
    code = server.stop()
    assert code == 0, f"shoal did not exit cleanly ({code}):\n{server.tail()}"


@pytest.fixture()
def shoal_process(tmp_path: Path) -> Iterator[ShoalProcess]:
    server = ShoalProcess(tmp_path / "data", tmp_path / "server.log")
    server.start()
    yield server
    server.kill()


@dataclass(frozen=True)
class Target:
    """Where a test's requests go: the Milvus gRPC `uri` (and its `port`), the HTTP API `http`;
    `cluster`: the session's `ClusterProcess` when the target is its proxy."""

    uri: str
    http: str
    cluster: Any = None

    def metrics_endpoints(self) -> dict[str, str]:
        """Every HTTP endpoint whose /metrics make up the target, by process name: the server's,
        or the proxy's and each cluster role's (Prometheus scrapes each; dashboards read the union)."""
        if self.cluster is None:
            return {"server": self.http}
        return dict(self.cluster.http_endpoints())

    @property
    def port(self) -> int:
        return int(self.uri.rsplit(":", 1)[1])


@pytest.fixture(scope="session")
def target_server(request: pytest.FixtureRequest, server_target: str) -> Target:
    """This test's target: the standalone `shoal`, or the session cluster's proxy
    (`SHOAL_CLUSTER_URI` / `SHOAL_CLUSTER_HTTP`: a cluster already running, started by hand)."""
    if server_target == "cluster":
        if os.environ.get("SHOAL_CLUSTER_URI"):
            return Target(os.environ["SHOAL_CLUSTER_URI"], os.environ.get("SHOAL_CLUSTER_HTTP", ""))
        cluster = request.getfixturevalue("shoal_cluster")
        return Target(str(cluster.uri), str(cluster.http), cluster)
    server = request.getfixturevalue("shoal")
    return Target(server.uri, server.http)


@pytest.fixture()
def uri(target_server: Target) -> str:
    """The target's gRPC URI; `SHOAL_SERVER_URI` points the suite at a running server instead
    (tests that use `shoal` itself still get the standalone server)."""
    return os.environ.get("SHOAL_SERVER_URI") or target_server.uri


@pytest.fixture()
def name() -> str:
    """A fresh collection name per test, so tests share one server without clashing."""
    return f"c_{uuid.uuid4().hex[:12]}"


@pytest.fixture()
def client(uri: str) -> Iterator[object]:
    from pymilvus import MilvusClient

    c = MilvusClient(uri=uri)
    yield c
    c.close()


@pytest.fixture()
def made(client: Any, name: str) -> Iterator[str]:
    """A 4-dimensional quick-setup collection named `name`, dropped afterwards."""
    client.create_collection(name, dimension=4)
    yield name
    client.drop_collection(name)


# ---------------------------------------------------------------- the security cluster

# Authorization on at both proxies (`shoal cluster run --config`) and the coordinator's limit
# test_security_quotas checks; the auth module makes its 3 collections in `default`, the others
# make theirs in databases of their own.
SECURITY_CLUSTER_CONFIG = "authorization_enabled: true\nmax_collections_per_db: 3\n"


@pytest.fixture(scope="session")
def security_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The cluster test_security_{auth,quotas,tls} share under the `cluster` target: one broker,
    one streaming node, two proxies; started on first use, so never under the default target."""
    from fixtures_cluster import missing_tools, start_cluster

    why = missing_tools()
    if why:
        pytest.skip(why)
    base = tmp_path_factory.mktemp("security-cluster")
    config = base / "shoal.yaml"
    config.write_text(SECURITY_CLUSTER_CONFIG)
    cluster = start_cluster(base / "data", proxies=2, extra_args=["--config", str(config)])
    try:
        yield cluster
    finally:
        cluster.stop()


def cluster_proxy(cluster: Any, base: Path, args: list[str]) -> ShoalProcess:
    """One more proxy of `cluster` with its own flags (`shoal run --role proxy`), serving."""
    proc = ShoalProcess(base / "data", base / "proxy.log", [
        "--role", "proxy", "--etcd", cluster.etcd_endpoint, "--kafka", cluster.kafka_bootstrap, *args,
    ])
    proc.start()
    return proc
