"""The chart's Grafana dashboard and alert rules read only metrics that exist: Shoal's own and
Milvus-named families of a node's `/metrics`, or the usual Kubernetes ones (cAdvisor,
kube-state-metrics, Prometheus's `up`). Also checks the exposition parses as Prometheus text."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from shoal.api.metrics import Metrics
from shoal.engine import open_engine

FILES = Path(__file__).resolve().parents[2] / "charts" / "shoal-operator" / "files"
FROM_KUBERNETES = {"up", "container_memory_working_set_bytes", "kube_pod_container_resource_limits"}
_TOKEN = re.compile(r"\b[a-zA-Z_][a-zA-Z0-9_]*\b(?!\s*\()")


def metric_names(expr: str) -> set[str]:
    """The series an expression reads: what is left once matchers, groupings and ranges go."""
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    return set(_TOKEN.findall(expr))


def _exported(tmp_path: Path) -> set[str]:
    engine = open_engine(tmp_path)
    try:
        m = Metrics(engine)
        m.milvus.observe("Search", _Req(), _Resp(), 0, 0.003)  # one of each histogram-free family is enough
        text = m.render().decode()
    finally:
        engine.close()
    list(text_string_to_metric_families(text))  # valid Prometheus text
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            names.add(name)
            if kind == "histogram":
                names |= {name + "_bucket", name + "_sum", name + "_count"}
    return names


class _Req:
    collection_name = "c"
    db_name = ""
    nq = 2


class _Resp:
    def ByteSize(self) -> int:  # noqa: N802 (protobuf's name)
        return 10


def _expressions() -> list[str]:
    dash = json.loads((FILES / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    rules = yaml.safe_load((FILES / "prometheus-rules.yaml").read_text())
    return exprs + [r["expr"] for g in rules["groups"] for r in g["rules"]]


def test_every_metric_the_dashboard_and_alerts_read_is_exported(tmp_path: Path) -> None:
    exported = _exported(tmp_path) | FROM_KUBERNETES
    used = {n for e in _expressions() for n in metric_names(e)}
    assert used and used <= exported, sorted(used - exported)


def test_the_alerts_cover_down_errors_latency_wal_disk_and_memory() -> None:
    rules = yaml.safe_load((FILES / "prometheus-rules.yaml").read_text())["groups"][0]["rules"]
    assert {r["alert"] for r in rules} == {
        "ShoalRoleDown", "ShoalHighErrorRate", "ShoalHighSearchLatency", "ShoalWALLag",
        "ShoalDataDiskAlmostFull", "ShoalMemoryNearLimit",
    }
    assert all(r["labels"]["severity"] in ("warning", "critical") and r["for"] for r in rules)
