"""Builders: a MilvusCluster spec in, the Kubernetes objects a user would see out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shoal_operator.builders.cluster import desired_objects, stale_objects
from shoal_operator.builders.meta import ClusterRef
from shoal_operator.specs.cluster import MilvusClusterSpec

REF = ClusterRef(name="demo", namespace="vectors", uid="1234-uid")


def build(spec: dict[str, Any], images: dict[str, str] | None = None, gpu_active: bool = True) -> dict:
    parsed = MilvusClusterSpec.model_validate(spec)
    desired = desired_objects(REF, parsed, images or {}, gpu_active)
    return {(o["kind"], o["metadata"]["name"]): o for o in desired.objects}


def container(deploy: dict) -> dict:
    return deploy["spec"]["template"]["spec"]["containers"][0]


def test_standalone_builds_one_deployment_service_config_and_data_claim() -> None:
    objs = build({})
    assert sorted(objs) == [
        ("ConfigMap", "demo-config"),
        ("Deployment", "demo-standalone"),
        ("PersistentVolumeClaim", "demo-standalone-data"),
        ("Service", "demo-milvus"),
    ]
    deploy = objs[("Deployment", "demo-standalone")]
    assert container(deploy)["image"] == "shoal/shoal-node:0.1.0"
    assert container(deploy)["command"] == ["shoal"]
    assert container(deploy)["args"] == ["run", "--role", "standalone", "--config", "/etc/shoal/shoal.yaml"]
    assert deploy["spec"]["strategy"] == {"type": "Recreate"}
    assert deploy["spec"]["replicas"] == 1


def test_cluster_mode_builds_every_role_with_pdbs_and_a_proxy_service() -> None:
    objs = build({"mode": "cluster"})
    deployments = sorted(name for kind, name in objs if kind == "Deployment")
    assert deployments == [f"demo-{r}" for r in ("coord", "index", "proxy", "query", "streaming")]
    pdbs = sorted(name for kind, name in objs if kind == "PodDisruptionBudget")
    assert pdbs == deployments
    service = objs[("Service", "demo-milvus")]
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "proxy"
    assert {p["port"] for p in service["spec"]["ports"]} == {19530, 9091}
    # cluster mode defaults both dependencies to small in-cluster StatefulSets
    assert ("StatefulSet", "demo-etcd") in objs and ("StatefulSet", "demo-minio") in objs


def test_every_child_is_owned_and_labelled() -> None:
    for obj in build({"mode": "cluster"}).values():
        meta = obj["metadata"]
        assert meta["namespace"] == "vectors"
        assert meta["ownerReferences"] == [
            {
                "apiVersion": "shoal.dev/v1alpha1",
                "kind": "MilvusCluster",
                "name": "demo",
                "uid": "1234-uid",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        labels = meta["labels"]
        assert labels["app.kubernetes.io/name"] == "shoal"
        assert labels["app.kubernetes.io/instance"] == "demo"
        assert labels["app.kubernetes.io/managed-by"] == "shoal-operator"
        assert labels["app.kubernetes.io/component"]


def test_autoscaled_component_gets_an_hpa_and_no_replicas() -> None:
    spec = {
        "mode": "cluster",
        "components": {
            "query": {"replicas": 5, "autoscaling": {"minReplicas": 2, "maxReplicas": 8,
                                                    "targetCPUUtilization": 60,
                                                    "targetMemoryUtilization": 70}},
            "proxy": {"replicas": 3},
        },
    }
    objs = build(spec)
    assert "replicas" not in objs[("Deployment", "demo-query")]["spec"]
    assert objs[("Deployment", "demo-proxy")]["spec"]["replicas"] == 3
    hpa = objs[("HorizontalPodAutoscaler", "demo-query")]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo-query"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 8)
    targets = {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in hpa["spec"]["metrics"]}
    assert targets == {"cpu": 60, "memory": 70}
    assert [k for k in objs if k[0] == "HorizontalPodAutoscaler"] == [("HorizontalPodAutoscaler", "demo-query")]


def test_hpa_takes_the_users_scaling_behavior_as_given() -> None:
    behavior = {"scaleUp": {"stabilizationWindowSeconds": 0},
                "scaleDown": {"stabilizationWindowSeconds": 30,
                              "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}}
    objs = build({"mode": "cluster", "components": {"query": {"autoscaling": {"maxReplicas": 2, "behavior": behavior}}}})
    hpa = objs[("HorizontalPodAutoscaler", "demo-query")]["spec"]
    assert hpa["behavior"] == behavior
    assert hpa["metrics"][0]["resource"]["target"]["averageUtilization"] == 80  # no target given: CPU 80 %
    plain = build({"mode": "cluster", "components": {"query": {"autoscaling": {"maxReplicas": 2}}}})
    assert "behavior" not in plain[("HorizontalPodAutoscaler", "demo-query")]["spec"]


def test_gpu_index_pool_requests_gpus_and_lands_on_the_gpu_pool() -> None:
    spec = {
        "mode": "cluster",
        "components": {"index": {
            "resources": {"limits": {"cpu": "4"}},
            "nodeSelector": {"team": "search"},
            "gpu": {"count": 2, "nodeSelector": {"shoal.dev/pool": "gpu"},
                    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu",
                                     "effect": "NoSchedule"}]},
        }},
    }
    deploy = build(spec)[("Deployment", "demo-index")]
    pod = deploy["spec"]["template"]["spec"]
    assert container(deploy)["resources"]["limits"] == {"cpu": "4", "nvidia.com/gpu": 2}
    assert pod["nodeSelector"] == {"shoal.dev/pool": "gpu", "team": "search"}
    keys = {t["key"] for t in pod["tolerations"]}
    assert keys == {"nvidia.com/gpu", "dedicated"}
    assert {"name": "SHOAL_INDEX_DEVICE", "value": "gpu"} in container(deploy)["env"]
    # other components never get GPUs
    query = build(spec)[("Deployment", "demo-query")]
    assert "resources" not in container(query)
    assert "tolerations" not in query["spec"]["template"]["spec"]


def test_gpu_fallback_builds_the_index_pool_for_cpu() -> None:
    spec = {"mode": "cluster", "components": {"index": {"gpu": {"count": 1, "fallbackToCPU": True,
                                                                "nodeSelector": {"shoal.dev/pool": "gpu"}}}}}
    deploy = build(spec, gpu_active=False)[("Deployment", "demo-index")]
    pod = deploy["spec"]["template"]["spec"]
    assert "nodeSelector" not in pod and "tolerations" not in pod
    assert "resources" not in container(deploy)
    assert {"name": "SHOAL_INDEX_DEVICE", "value": "cpu"} in container(deploy)["env"]


def checksums(spec: dict[str, Any]) -> dict[str, str]:
    objs = build(spec)
    return {
        name.removeprefix("demo-"): o["spec"]["template"]["metadata"]["annotations"]["shoal.dev/config-checksum"]
        for (kind, name), o in objs.items()
        if kind == "Deployment"
    }


def test_config_change_of_one_component_changes_only_its_checksum() -> None:
    base = {"mode": "cluster", "config": {"wal_fsync": "always"}}
    changed = {**base, "components": {"query": {"config": {"grpc_workers": 32}}}}
    before, after = checksums(base), checksums(changed)
    assert before["query"] != after["query"]
    assert {k: v for k, v in before.items() if k != "query"} == {k: v for k, v in after.items() if k != "query"}


def test_global_config_change_restarts_every_component() -> None:
    before = checksums({"mode": "cluster", "config": {"wal_fsync": "always"}})
    after = checksums({"mode": "cluster", "config": {"wal_fsync": "never"}})
    assert all(before[k] != after[k] for k in before)


def test_node_config_carries_role_ports_dependencies_and_user_keys() -> None:
    import yaml

    spec = {
        "mode": "cluster",
        "config": {"wal_fsync": "batch", "s3": {"region": "eu-1"}},
        "dependencies": {
            "etcd": {"external": {"endpoints": ["http://etcd-0:2379"], "secretRef": "etcd-creds"}},
            "storage": {"external": {"endpoint": "http://s3:8333", "bucket": "vec", "secretRef": "s3-creds"}},
            "kafka": {"external": {"bootstrapServers": ["kafka-0:9092"]}},
        },
    }
    objs = build(spec)
    doc = yaml.safe_load(objs[("ConfigMap", "demo-config")]["data"]["query.yaml"])
    assert doc == {
        "role": "query", "port": 19530, "http_port": 9091, "data_dir": "/var/lib/shoal",
        "etcd": {"endpoints": ["http://etcd-0:2379"]}, "s3": {"endpoint": "http://s3:8333", "bucket": "vec", "region": "eu-1"},
        "wal_fsync": "batch", "kafka_bootstrap": "kafka-0:9092",
    }
    env = {e["name"]: e for e in container(objs[("Deployment", "demo-query")])["env"]}
    assert env["SHOAL_S3_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "s3-creds", "key": "accessKey"}
    assert env["SHOAL_ETCD_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "etcd-creds"
    assert not any(kind == "StatefulSet" for kind, _ in objs)


def test_rendered_config_is_accepted_by_the_node(tmp_path: Path) -> None:
    from shoal.config import load_config

    objs = build({"mode": "cluster", "config": {"wal_fsync": "always"}})
    for key, text in objs[("ConfigMap", "demo-config")]["data"].items():
        path = tmp_path / key
        path.write_text(text)
        cfg = load_config(path, env={"SHOAL_S3_ACCESS_KEY": "k"})
        assert cfg.role == key.removesuffix(".yaml")
        assert cfg.port == 19530 and cfg.http_port == 9091 and cfg.wal_fsync == "always"
        assert cfg.etcd_endpoints == ["http://demo-etcd.vectors.svc:2379"]
        assert cfg.s3.endpoint == "http://demo-minio.vectors.svc:9000" and cfg.s3.access_key == "k"
        assert cfg.kafka_bootstrap == "demo-kafka.vectors.svc:9092"


def test_deletion_policy_decides_who_owns_the_data() -> None:
    retain = build({"mode": "standalone"})
    delete = build({"mode": "standalone", "deletionPolicy": "Delete"})
    assert "ownerReferences" not in retain[("PersistentVolumeClaim", "demo-standalone-data")]["metadata"]
    assert delete[("PersistentVolumeClaim", "demo-standalone-data")]["metadata"]["ownerReferences"][0]["uid"] == "1234-uid"
    sts_retain = build({"mode": "cluster"})[("StatefulSet", "demo-etcd")]
    sts_delete = build({"mode": "cluster", "deletionPolicy": "Delete"})[("StatefulSet", "demo-etcd")]
    assert sts_retain["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Retain"
    assert sts_delete["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete"


def test_builders_are_deterministic() -> None:
    spec = {
        "mode": "cluster",
        "config": {"b": 1, "a": 2},
        "components": {"index": {"gpu": {"count": 1}}, "query": {"autoscaling": {"maxReplicas": 4}}},
    }
    first = json.dumps(list(build(spec, {"coord": "x:1"}).values()), sort_keys=True)
    second = json.dumps(list(build(spec, {"coord": "x:1"}).values()), sort_keys=True)
    assert first == second
    assert "Time" not in first and "timestamp" not in first.lower()


def test_images_per_component_come_from_the_upgrade_plan() -> None:
    objs = build({"mode": "cluster", "version": "0.2.0"}, {"coord": "shoal/shoal-node:0.2.0",
                                                           "proxy": "shoal/shoal-node:0.1.0"})
    assert container(objs[("Deployment", "demo-coord")])["image"] == "shoal/shoal-node:0.2.0"
    assert container(objs[("Deployment", "demo-proxy")])["image"] == "shoal/shoal-node:0.1.0"
    assert container(objs[("Deployment", "demo-query")])["image"] == "shoal/shoal-node:0.2.0"


def test_probe_overrides_replace_the_defaults() -> None:
    probe = {"tcpSocket": {"port": 19530}, "periodSeconds": 3}
    deploy = build({"components": {"standalone": {"probes": {"readiness": probe}}}})[("Deployment", "demo-standalone")]
    assert container(deploy)["readinessProbe"] == probe
    assert container(deploy)["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_switching_mode_prunes_the_other_modes_children_but_never_data() -> None:
    standalone = list(build({}).values())
    cluster = list(build({"mode": "cluster"}).values())
    stale = {(o["kind"], o["metadata"]["name"]) for o in stale_objects(cluster, standalone)}
    assert stale == {("Deployment", "demo-standalone")}


def test_a_standalone_canary_is_a_dry_run_outside_the_service_and_the_data() -> None:
    spec = MilvusClusterSpec.model_validate({"dependencies": {"etcd": {"external": {"endpoints": ["http://e:2379"]}}}})
    desired = desired_objects(REF, spec, {}, canaries={"standalone": "shoal/shoal-node:0.2.0"})
    objs = {(o["kind"], o["metadata"]["name"]): o for o in desired.objects}
    canary = objs[("Deployment", "demo-standalone-canary")]
    pod = canary["spec"]["template"]
    assert container(canary)["image"] == "shoal/shoal-node:0.2.0"
    assert canary["spec"]["replicas"] == 1
    assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "standalone-canary"
    assert pod["metadata"]["labels"]["shoal.dev/canary"] == "true"
    assert canary["spec"]["selector"]["matchLabels"]["shoal.dev/canary"] == "true"
    service = objs[("Service", "demo-milvus")]
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "standalone"
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["data"] == {"name": "data", "emptyDir": {}}
    assert volumes["config"]["configMap"]["items"] == [{"key": "standalone-canary.yaml", "path": "shoal.yaml"}]
    data = objs[("ConfigMap", "demo-config")]["data"]
    assert "etcd" in data["standalone.yaml"] and "etcd" not in data["standalone-canary.yaml"]
    # The main Deployment is what it was without a canary.
    plain = build({"dependencies": {"etcd": {"external": {"endpoints": ["http://e:2379"]}}}})
    assert objs[("Deployment", "demo-standalone")] == plain[("Deployment", "demo-standalone")]


def test_a_cluster_canary_joins_its_role_with_a_canary_label() -> None:
    spec = MilvusClusterSpec.model_validate({"mode": "cluster"})
    desired = desired_objects(REF, spec, {}, canaries={"proxy": "shoal/shoal-node:0.2.0"})
    objs = {(o["kind"], o["metadata"]["name"]): o for o in desired.objects}
    canary = objs[("Deployment", "demo-proxy-canary")]
    labels = canary["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "proxy" and labels["shoal.dev/canary"] == "true"
    assert container(canary)["args"][:3] == ["run", "--role", "proxy"]
    assert ("Deployment", "demo-coord-canary") not in objs
    # Once the upgrade no longer asks for it, the canary is pruned.
    assert stale_objects(list(build({"mode": "cluster"}).values()), [canary]) == [canary]


def test_in_cluster_stores_take_a_node_selector_and_tolerations() -> None:
    place = {"nodeSelector": {"pool": "dev"}, "tolerations": [{"key": "dev", "operator": "Exists"}]}
    objs = build({"mode": "cluster", "dependencies": {
        "etcd": {"inCluster": place}, "storage": {"inCluster": place}, "kafka": {"inCluster": place}}})
    for name in ("demo-etcd", "demo-minio", "demo-kafka"):
        pod = objs[("StatefulSet", name)]["spec"]["template"]["spec"]
        assert pod["nodeSelector"] == {"pool": "dev"} and pod["tolerations"] == place["tolerations"]
    assert "nodeSelector" not in build({"mode": "cluster"})[("StatefulSet", "demo-etcd")]["spec"]["template"]["spec"]


def test_the_in_cluster_object_store_can_be_seaweedfs_behind_the_same_service() -> None:
    objs = build({"mode": "cluster", "dependencies": {"storage": {"inCluster": {"server": "seaweedfs"}}}})
    c = objs[("StatefulSet", "demo-minio")]["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "chrislusf/seaweedfs:4.48" and c["command"] == ["weed"]
    assert c["args"][:2] == ["server", "-dir=/data"] and "-s3.port=9000" in c["args"]
    keys = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"]}
    assert keys == {"AWS_ACCESS_KEY_ID": {"name": "demo-minio", "key": "accessKey"},
                    "AWS_SECRET_ACCESS_KEY": {"name": "demo-minio", "key": "secretKey"}}
    assert c["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": 9000}
    assert ("Secret", "demo-minio") not in objs  # created once by the handler, as for MinIO
    minio = build({"mode": "cluster"})[("StatefulSet", "demo-minio")]["spec"]["template"]["spec"]["containers"][0]
    assert minio["args"] == ["server", "/data"] and "command" not in minio


def test_only_the_proxy_drains_before_its_sigterm() -> None:
    objs = build({"mode": "cluster"})
    hooks = {name: container(objs[("Deployment", f"demo-{name}")]).get("lifecycle")
             for name in ("coord", "streaming", "query", "index", "proxy")}
    assert hooks.pop("proxy") == {"preStop": {"exec": {"command": ["sleep", "10"]}}}
    assert objs[("Deployment", "demo-proxy")]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 40
    assert "terminationGracePeriodSeconds" not in objs[("Deployment", "demo-query")]["spec"]["template"]["spec"]
    assert set(hooks.values()) == {None}
    assert "lifecycle" not in container(build({})[("Deployment", "demo-standalone")])


def test_cluster_roles_advertise_their_pod_ip() -> None:
    objs = build({"mode": "cluster"})
    for role in ("coord", "streaming", "query", "index", "proxy"):
        env = {e["name"]: e for e in container(objs[("Deployment", f"demo-{role}")])["env"]}
        assert env["SHOAL_ADVERTISE_HOST"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert all(e["name"] != "SHOAL_ADVERTISE_HOST" for e in container(build({})[("Deployment", "demo-standalone")])["env"])


def test_a_slow_first_start_is_covered_by_the_startup_probe() -> None:
    c = container(build({"mode": "cluster"})[("Deployment", "demo-proxy")])
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert c["startupProbe"]["periodSeconds"] * c["startupProbe"]["failureThreshold"] == 600
