"""The supervisor's parts without a cluster: kept ports, children that die with their parent,
restart with back-off, and the command line's refusals."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from shoal.cluster.deps import PortBook, Service, port_is_free
from shoal.cluster.supervisor import ClusterLayout, Supervisor, _role_ready, _Watch

SERVE = "import sys, time; print('Shoal query listening on 127.0.0.1:1 (http 127.0.0.1:2)', flush=True); time.sleep(600)"


def _wait(pred, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_ports_are_kept_per_name_and_stay_below_the_ephemeral_range(tmp_path: Path) -> None:
    book = PortBook(tmp_path / "ports.json")
    a, b = book.get("etcd-client"), book.get("kafka-1")
    assert a != b and a < 32768 and b < 32768
    again = PortBook(tmp_path / "ports.json")
    assert again.get("etcd-client") == a and again.get("kafka-1") == b
    assert port_is_free(a)


def test_a_kept_port_taken_by_someone_else_is_replaced(tmp_path: Path) -> None:
    import socket

    book = PortBook(tmp_path / "ports.json")
    port = book.get("proxy-1-grpc")
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        assert PortBook(tmp_path / "ports.json").get("proxy-1-grpc") != port


def test_children_die_with_a_sigkilled_parent(tmp_path: Path) -> None:
    node = Path(__file__).resolve().parents[2] / "node"
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(node)!r})
        from pathlib import Path
        from shoal.cluster.deps import Service
        child = Service("sleeper", [sys.executable, "-c", "import time; time.sleep(600)"],
                        Path({str(tmp_path / 'child.log')!r}), lambda s: True)
        child.spawn()
        print(child.pid, flush=True)
        time.sleep(600)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        child_pid = int(parent.stdout.readline())  # type: ignore[union-attr]
        os.kill(child_pid, 0)
    finally:
        parent.kill()
        parent.wait()

    def gone() -> bool:
        try:
            os.kill(child_pid, 0)
        except ProcessLookupError:
            return True
        stat = Path(f"/proc/{child_pid}/stat")
        return stat.exists() and stat.read_text().split(") ", 1)[1].startswith("Z")

    _wait(gone)


def test_a_dead_role_is_restarted_with_its_arguments_and_announced(tmp_path: Path) -> None:
    out = io.StringIO()
    sup = Supervisor(tmp_path, ClusterLayout(), out=out)
    role = Service("query-1", [sys.executable, "-c", SERVE], tmp_path / "query-1.log", _role_ready,
                   ports={"grpc": 1, "http": 2})
    role.spawn()
    sup.roles = [role]
    sup._watches = [_Watch(role)]
    _wait(lambda: (sup.check(), not sup._watches[0].starting)[1])
    assert "shoal cluster: query-1 pid" in out.getvalue() and "(ready in" in out.getvalue()
    first = role.pid
    os.kill(first, signal.SIGKILL)
    _wait(lambda: (sup.check(), role.pid != first and not sup._watches[0].starting)[1])
    text = out.getvalue()
    assert "query-1 exited (-9); restarting" in text and f"query-1 pid {role.pid} grpc=1 http=2 (restarted)" in text
    assert role.args[-1] == SERVE
    sup.stop()
    assert not role.alive()


def test_the_back_off_grows_while_a_role_keeps_dying(tmp_path: Path) -> None:
    out = io.StringIO()
    sup = Supervisor(tmp_path, ClusterLayout(), out=out)
    role = Service("index-1", [sys.executable, "-c", "raise SystemExit(3)"], tmp_path / "index-1.log", _role_ready)
    role.spawn()
    sup._watches = [watch := _Watch(role)]
    role.process.wait()  # type: ignore[union-attr]
    sup.check(now=100.0)
    assert watch.failures == 1 and watch.next_start == 100.5
    sup.check(now=100.6)  # starts it again; it dies at once
    role.process.wait()  # type: ignore[union-attr]
    sup.check(now=101.0)
    assert watch.failures == 2 and watch.next_start == 102.0
    watch.failures = 20
    watch.next_start = 0.0
    sup.check(now=200.0)
    assert watch.next_start == 210.0  # capped at 10 s


def test_cluster_run_refuses_zero_processes(tmp_path: Path) -> None:
    from shoal.cli import main

    assert main(["cluster", "run", "--data", str(tmp_path), "--query-nodes", "0"]) == 2


def test_kafka_cluster_ids_never_start_with_a_dash() -> None:
    from shoal.cluster.deps import kafka_cluster_id

    ids = [kafka_cluster_id() for _ in range(2000)]  # a dash comes first in 1 of 64 raw draws
    assert len(set(ids)) == 2000
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)


def test_coords_adds_standby_coordinators_with_their_own_ports(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from shoal.cluster.deps import Endpoints

    sup = Supervisor(tmp_path, ClusterLayout(coords=2, query_nodes=2), role_command=["role"])
    sup.deps = SimpleNamespace(endpoints=Endpoints(["127.0.0.1:1"], "127.0.0.1:2", "http://127.0.0.1:3"))  # type: ignore[assignment]
    services = sup._role_services(PortBook(tmp_path / "ports.json"))
    names = [s.name for s in services]
    assert names == ["coord-1", "coord-2", "streaming-1", "query-1", "query-2", "index-1", "proxy-1"]
    coords = [s for s in services if s.name.startswith("coord-")]
    assert coords[0].ports != coords[1].ports
    assert all(s.args[s.args.index("--role") + 1] == "coord" for s in coords)


def test_scale_and_restart_at_run_time_through_the_admin_port(tmp_path: Path) -> None:
    import threading
    from types import SimpleNamespace

    from shoal.cli import main
    from shoal.cluster.deps import Endpoints
    from shoal.cluster.supervisor import admin_call

    out = io.StringIO()
    sup = Supervisor(tmp_path, ClusterLayout(port=0, http_port=0), out=out, role_command=[sys.executable, "-c", SERVE])
    sup.deps = SimpleNamespace(endpoints=Endpoints(["127.0.0.1:1"], "127.0.0.1:2", "http://127.0.0.1:3"),  # type: ignore[assignment]
                               services=lambda: [], stop=lambda: None)
    ports = sup._ports = PortBook(tmp_path / "ports.json")
    stop = threading.Event()
    serving = threading.Thread(target=lambda: (sup._start_roles(ports), sup.serve(stop, poll_s=0.05)))
    serving.start()  # the children's parent thread (PDEATHSIG), as `shoal cluster run`'s main thread
    try:
        _wait(lambda: sup._admin is not None and all(not w.starting for w in sup._watches) and len(sup._watches) == 5)
        assert main(["cluster", "scale", "--data", str(tmp_path), "--query-nodes", "3"]) == 0
        assert [s.name for s in sup._of("query")] == ["query-1", "query-2", "query-3"]
        proxy_ports = dict(sup._of("proxy")[0].ports)
        answer = admin_call(tmp_path, "POST", "/restart?name=proxy-1")
        assert answer["restarted"] == "proxy-1" and answer["by"] == "proxy-2"
        assert sup._of("proxy")[0].ports == proxy_ports  # the replacement binds the same ports
        steps = admin_call(tmp_path, "POST", "/scale?role=query&count=1")["steps"]
        assert [s["removed"] for s in steps] == ["query-3", "query-2"]  # newest first
        assert [s.name for s in sup._of("query")] == ["query-1"]
        names = {p["name"] for p in admin_call(tmp_path, "GET", "/status")["processes"]}
        assert names == {"coord-1", "streaming-1", "query-1", "index-1", "proxy-2"}
        assert "query-3 stopped (drained in" in out.getvalue()
        assert main(["cluster", "restart", "--data", str(tmp_path), "nobody-1"]) == 1  # unknown name: refused
    finally:
        stop.set()
        serving.join(60)
        sup.stop()


def test_cluster_run_refuses_a_bad_config_at_once(tmp_path: Path) -> None:
    from shoal.cli import main

    bad = tmp_path / "shoal.yaml"
    bad.write_text("tls_mode: 7\n")
    assert main(["cluster", "run", "--data", str(tmp_path / "d"), "--config", str(bad)]) == 2
    assert not (tmp_path / "d").exists()  # nothing was started


def test_config_and_auth_reach_every_role(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from shoal.cluster.deps import Endpoints

    extra = ["--config", str(tmp_path / "shoal.yaml"), "--auth"]
    sup = Supervisor(tmp_path, ClusterLayout(proxies=2, extra_args=extra), role_command=["role"])
    sup.deps = SimpleNamespace(endpoints=Endpoints(["127.0.0.1:1"], "127.0.0.1:2", "http://127.0.0.1:3"))  # type: ignore[assignment]
    services = sup._role_services(PortBook(tmp_path / "ports.json"))
    assert [s.name for s in services][-2:] == ["proxy-1", "proxy-2"]
    assert all(s.args[-3:] == extra for s in services)
