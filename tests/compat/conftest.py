"""Conformance suite plumbing: which server to test, a client per test, feature tags.

Target: ``--uri`` / ``SHOAL_COMPAT_URI`` (an already running server), else a fresh
server process started here: ``--target shoal`` (default), ``--target cluster`` (a whole
local cluster, `shoal cluster run`, through its proxy) or ``--target milvus-lite`` (also
``SHOAL_COMPAT_TARGET``). Every test carries ``@pytest.mark.feature("name")``;
with ``SHOAL_COMPAT_REPORT=path`` each outcome is written there as JSON lines for
``python -m bench.compat_table``. Features listed in ``known_gaps.txt`` are expected
to fail on Shoal (non-strict xfail) so the team's test run stays green while the gap
is open; ``--runxfail`` shows the truth.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymilvus import MilvusClient

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `bench` is a top-level package run from the repo root

_names = itertools.count()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("compat", "Milvus conformance suite")
    group.addoption("--uri", default=os.environ.get("SHOAL_COMPAT_URI", ""),
                    help="URI of a running Milvus-compatible server (default: start one)")
    group.addoption("--target", default=os.environ.get("SHOAL_COMPAT_TARGET", "shoal"),
                    choices=("shoal", "cluster", "milvus-lite"), help="server to start when no --uri is given")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "feature(name): the Milvus feature a conformance test exercises")


def _known_gaps() -> set[str]:
    path = Path(__file__).with_name("known_gaps.txt")
    if not path.exists():
        return set()
    return {line.split("#")[0].strip() for line in path.read_text().splitlines() if line.split("#")[0].strip()}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--uri") or config.getoption("--target") not in ("shoal", "cluster"):
        return
    gaps = _known_gaps()
    for item in items:
        marker = item.get_closest_marker("feature")
        if marker and marker.args[0] in gaps:
            item.add_marker(pytest.mark.xfail(reason="known Shoal gap (tests/compat/known_gaps.txt)", strict=False))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    path = os.environ.get("SHOAL_COMPAT_REPORT")
    if not path:
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        feature = dict(report.user_properties).get("feature", "untagged")
        outcome = "skipped" if report.skipped and not hasattr(report, "wasxfail") else report.outcome
        if hasattr(report, "wasxfail"):
            outcome = "failed" if report.skipped else "passed"
        message = ""
        if report.longrepr is not None and outcome != "passed":
            crash = getattr(report.longrepr, "reprcrash", None)
            message = crash.message if crash is not None else str(report.longrepr)
        with open(path, "a") as f:
            f.write(json.dumps({"test": report.nodeid, "feature": feature, "outcome": outcome,
                                "message": " ".join(message.split())[:300]}) + "\n")


@pytest.fixture(autouse=True)
def _record_feature(request: pytest.FixtureRequest) -> None:
    marker = request.node.get_closest_marker("feature")
    request.node.user_properties.append(("feature", marker.args[0] if marker else "untagged"))


@pytest.fixture(scope="session")
def target(pytestconfig: pytest.Config) -> str:
    return "external" if pytestconfig.getoption("--uri") else str(pytestconfig.getoption("--target"))


@pytest.fixture(scope="session")
def uri(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = pytestconfig.getoption("--uri")
    if given:
        yield given
        return
    if pytestconfig.getoption("--target") == "cluster":
        sys.path.insert(0, str(ROOT / "tests"))
        from fixtures_cluster import missing_tools, start_cluster

        why = missing_tools()
        if why:
            pytest.skip(why)
        cluster = start_cluster(tmp_path_factory.mktemp("cluster") / "data")
        try:
            yield cluster.uri
        finally:
            cluster.stop()
        return
    from bench.systems.servers import ServerProcess

    server = ServerProcess(pytestconfig.getoption("--target"), str(tmp_path_factory.mktemp("server")))
    server.start()
    try:
        yield server.uri
    finally:
        server.stop()


@pytest.fixture()
def client(uri: str) -> Iterator[MilvusClient]:
    c = MilvusClient(uri=uri)
    yield c
    c.close()


@pytest.fixture()
def name(client: MilvusClient) -> Iterator[str]:
    """A fresh collection name, dropped after the test."""
    n = f"compat_{os.getpid()}_{next(_names)}"
    yield n
    try:
        if client.has_collection(n):
            client.drop_collection(n)
    except Exception:
        pass  # the server may be the thing under test; cleanup must not mask its failure


@pytest.fixture()
def orm(uri: str) -> Iterator[str]:
    """An ORM connection alias (``connections.connect``) to the server under test."""
    from pymilvus import connections

    alias = f"compat{next(_names)}"
    connections.connect(alias=alias, uri=uri)
    yield alias
    connections.disconnect(alias)
